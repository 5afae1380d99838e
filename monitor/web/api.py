"""The JSON API: the same data as the pages, described at /api/openapi.json.

Authenticated by the session cookie (log in at /login) or an API token (``Authorization:
Bearer <token>``, ``monitor tokens create`` or the /tokens page). GET endpoints read; the
few that change data (POST) need a read-write token, or the session with its CSRF token in
``X-CSRF-Token``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from monitor import inbox as desk
from monitor.handoff import Handoff
from monitor.store.inbox import VIEWS, InboxConflictError, InboxError
from monitor.web.deps import ID_MAX, PageNumber, RowId, require_api_write, require_user, writer

router = APIRouter(prefix="/api", tags=["data"])


class Component(BaseModel):
    name: str
    value: float
    points: float
    fact: str
    meaning: str


class AuthorRow(BaseModel):
    person_id: int
    brand: str
    source: str
    handle: str
    sources: str
    flag: str | None
    score: float
    advocate_score: float
    detractor_score: float
    stance: str
    mentions: int
    promoters: int
    passives: int
    detractors: int
    reach: int | None
    weeks_active: int
    flips: int
    last_flip: str | None
    last_flip_at: str | None
    first_at: str
    last_at: str
    marks: list[str]
    reasons: list[Component]


def _authors(request: Request, kind: str, brand, source, flag, q, mark, sort, desc, limit, page) -> list[dict]:
    require_user(request)
    return request.app.state.views.authors(kind, brand=brand, source=source, flag=flag, q=q, mark=mark, sort=sort,
                                           desc=desc, limit=limit, page=page)


Sort = Literal["score", "mentions", "promoters", "detractors", "reach", "last", "handle", "flips"]


@router.get("/brands")
def brands(request: Request) -> list[str]:
    """Brand names: configured ones first, then any others found in the data."""
    require_user(request)
    return request.app.state.views.brands()


@router.get("/advocates", response_model=list[AuthorRow])
def advocates(request: Request, brand: str | None = None, source: str | None = None,
              flag: Literal["advocate", "detractor"] | None = None, q: str | None = Query(None, max_length=200),
              mark: Literal["contacted", "rewarded", "do_not_contact", "none"] | None = None, sort: Sort = "score",
              desc: bool = True, limit: int = Query(50, ge=1, le=1000), page: PageNumber = 1):
    """Authors by advocate score, with each score component (reasons) and marks."""
    return _authors(request, "advocate", brand, source, flag, q, mark, sort, desc, limit, page)


@router.get("/detractors", response_model=list[AuthorRow])
def detractors(request: Request, brand: str | None = None, source: str | None = None,
               flag: Literal["advocate", "detractor"] | None = None, q: str | None = Query(None, max_length=200),
               mark: Literal["contacted", "rewarded", "do_not_contact", "none"] | None = None, sort: Sort = "score",
               desc: bool = True, limit: int = Query(50, ge=1, le=1000), page: PageNumber = 1):
    """Authors by detractor score."""
    return _authors(request, "detractor", brand, source, flag, q, mark, sort, desc, limit, page)


@router.get("/authors/{person_id}")
def author(request: Request, person_id: RowId, brand: str | None = None) -> dict:
    """One person: identities (linked handles), stats per brand with score components, marks, and the
    timeline of mentions (newest first) with each mention's stance and its basis (text, stars, survey, corrected)."""
    require_user(request)
    data = request.app.state.views.author(person_id, brand)
    if data is None:
        raise HTTPException(404, "no such author")
    data.pop("mark_set")
    for s in data["stats"]:
        s.pop("explain", None)
    return data


@router.get("/overview")
def overview(request: Request, brand: str | None = None, weeks: int = Query(26, ge=1, le=520)) -> dict:
    """Weekly mentions, sentiment and advocacy index (per signal and basis: 'text' is the model, 'stars' the
    review ratings; value null below the minimum sample), top sources, recent alerts."""
    require_user(request)
    return request.app.state.views.overview(brand, weeks)


@router.get("/mentions")
def mentions(request: Request, q: str | None = Query(None, max_length=200), brand: str | None = None,
             source: str | None = None, advocacy: Literal["promoter", "detractor", "none"] | None = None,
             sentiment: Literal["negative", "neutral", "positive"] | None = None, kind: str | None = None,
             limit: int = Query(50, ge=1, le=1000), page: PageNumber = 1,
             relevance: Literal["relevant", "off_topic", "all"] = "relevant") -> list[dict]:
    """Mentions, newest first, with the effective labels (a user's correction wins over the model);
    ``relevance``: off-topic ones (monitor.relevance) are left out unless asked for."""
    require_user(request)
    return request.app.state.views.mentions(q=q, brand=brand, source=source, advocacy=advocacy, sentiment=sentiment,
                                            kind=kind, limit=limit, page=page, relevance=relevance)


@router.get("/corrections")
def corrections(request: Request, field: Literal["advocacy", "sentiment", "relevance"] | None = None) -> list[dict]:
    """Label corrections by users (the newest per mention and field)."""
    require_user(request)
    return request.app.state.views.corrections(field)


# ------------------------------------------------------------------------ the inbox

INBOX_FIELDS = ("id", "mention_id", "brand", "priority", "state", "assignee", "rule", "entered_at", "entered_by",
                "mention_at", "due_at", "first_response_at", "responded_by", "closed_at", "dismiss_reason",
                "breach_alerted_at", "updated_at", "version", "source", "kind", "title", "text", "url", "author",
                "advocacy", "sentiment", "notes")


def _inbox_json(item) -> dict:
    return {k: item[k] for k in INBOX_FIELDS}


class InboxChange(BaseModel):
    action: Literal["assign", "unassign", "respond", "close", "dismiss", "reopen"]
    assignee: str | None = Field(None, max_length=200)  # assign: a user name
    reason: str | None = Field(None, max_length=500)  # dismiss: why no response is needed
    version: int | None = Field(None, ge=1, le=ID_MAX)  # the version you saw: 409 when it changed since


@router.get("/inbox")
def inbox_items(request: Request, view: Literal["open", "responded", "closed", "dismissed", "all"] = "open",
                brand: str | None = None, assignee: str | None = Query(None, max_length=200),
                limit: int = Query(100, ge=1, le=1000), page: PageNumber = 1) -> list[dict]:
    """Response-desk items, most urgent first (``assignee`` "-": unassigned ones)."""
    require_user(request)
    items = request.app.state.reader.inbox.items(states=VIEWS[view], brand=brand, assignee=assignee, limit=limit,
                                                 offset=(page - 1) * limit)
    return [_inbox_json(i) for i in items]


@router.post("/inbox/{item_id}/change")
def change_inbox_item(request: Request, item_id: RowId, change: InboxChange) -> dict:
    """One change of an inbox item (as on its page); answers the item after it. 409: the item
    changed since ``version``; 400: the change is not possible from its state."""
    user = require_api_write(request, "inbox.change")
    try:
        item = desk.change(writer(request), item_id, change.action, user["username"], version=change.version,
                           assignee=(change.assignee or "").strip() or None, reason=change.reason,
                           handoff=Handoff.of(request.app.state.settings))
    except InboxConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except InboxError as exc:
        if request.app.state.reader.inbox.get(item_id) is None:
            raise HTTPException(404, "no such inbox item") from None
        raise HTTPException(400, str(exc)) from None
    return _inbox_json(item)
