"""The JSON API: the same data as the pages, described at /api/openapi.json.

Authenticated by the session cookie (log in at /login). Read-only.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from monitor.web.deps import PageNumber, RowId, require_user

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
