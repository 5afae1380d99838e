"""The response desk's pages: the inbox (the community manager's main screen), one item with
its reply draft, notes and history, and the response-speed figures the overview shows.

Every form carries the session's CSRF token; every change names the item's version as the
page showed it, so of two people changing an item at once the second is told what happened
(store.inbox.InboxConflictError) and nothing is overwritten. Nothing is ever posted to a
platform: the draft is copied, or the platform's page is opened, by the person."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from monitor import inbox as desk
from monitor.handoff import Handoff
from monitor.settings_inbox import PRIORITIES
from monitor.store import parse_iso
from monitor.store.inbox import ACTIONS, VIEWS, InboxConflictError, InboxError
from monitor.web import security
from monitor.web.deps import RowId, render, require_permission, require_user, row_id, writer

router = APIRouter(include_in_schema=False)
FILTERS = ("brand", "assignee", "priority")
PAGE = 100


async def _form(request: Request, user: dict) -> tuple[dict[str, str], list[str]]:
    """The posted form (CSRF checked) and its repeated ``item`` values (bulk actions)."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    if not security.same(data.get("csrf"), user["csrf"]):
        raise HTTPException(403, "the form expired or did not come from this site: reload the page and try again")
    return data, [v for v in form.getlist("item") if isinstance(v, str)][:PAGE]


def _chosen_brand(request: Request) -> str | None:
    from monitor.web.pages import _chosen_brand as chosen

    if "brand" in request.query_params:
        return request.query_params["brand"].strip()[:200] or None
    return chosen(request)


def _decorate(items: list[Any], now: datetime) -> list[dict[str, Any]]:
    out = []
    for it in items:
        late = desk.overdue_by(it, now)
        due_in = parse_iso(it["due_at"]) - now if it["state"] in ("new", "assigned") and not late else None
        out.append({**it, "overdue": desk.human(late) if late else None,
                    "due_in": desk.human(due_in) if due_in is not None and not it["first_response_at"] else None})
    return out


@router.get("/inbox")
def inbox_page(request: Request):
    from monitor.web.pages import _remember_brand

    require_user(request)
    view = request.query_params.get("state", "open")
    view = view if view in VIEWS else "open"
    brand = _chosen_brand(request)
    assignee = (request.query_params.get("assignee") or "").strip()[:200] or None
    priority = request.query_params.get("priority")
    priority = priority if priority in PRIORITIES else None
    reader = request.app.state.reader
    now = request.app.state.now()
    rows = _decorate(reader.inbox.items(states=VIEWS[view], brand=brand, assignee=assignee, priority=priority,
                                        limit=PAGE), now)
    filters = {k: v for k, v in (("state", view), ("brand", brand), ("assignee", assignee),
                                 ("priority", priority)) if v}
    return _remember_brand(request, render(request, "inbox.html", {
        "rows": rows, "view": view, "views": list(VIEWS), "brand": brand, "filters": filters,
        "counts": reader.inbox.counts(brand), "users": reader.inbox.assignable(), "priorities": PRIORITIES,
        "message": request.query_params.get("done", "")[:500], "back": "/inbox?" + urlencode(filters)}))


@router.get("/inbox/{item_id}")
def item_page(request: Request, item_id: RowId):
    require_user(request)
    return _item(request, item_id)


def _item(request: Request, item_id: int, error: str | None = None, status: int = 200):
    reader = request.app.state.reader
    item = reader.inbox.get(item_id)
    if item is None:
        raise HTTPException(404, "no such inbox item")
    settings = request.app.state.settings.inbox
    chosen = request.query_params.get("template")
    draft = desk.draft_for(reader, settings, item, chosen)
    now = request.app.state.now()
    times = {
        "from_mention": desk.human(parse_iso(item["first_response_at"]) - parse_iso(item["mention_at"]))
        if item["first_response_at"] else None,
        "from_entry": desk.human(parse_iso(item["first_response_at"]) - parse_iso(item["entered_at"]))
        if item["first_response_at"] else None,
    }
    return render(request, "inbox_item.html", {
        "it": _decorate([item], now)[0], "target": desk.item_reply_target(item), "draft": draft,
        "templates": [t.name for t in settings.templates], "notes": reader.inbox.notes(item_id),
        "events": reader.inbox.events(item_id), "users": reader.inbox.assignable(), "times": times,
        "actions": ACTIONS, "error": error, "brand": item["brand"],
        "message": request.query_params.get("done", "")[:500]}, status=status)


def _apply(request: Request, item_id: int, data: dict[str, str], user: dict) -> str:
    """One change from a form; the outcome in words. Raises InboxError."""
    action = data.get("action", "")
    if action not in ACTIONS:
        raise InboxError(f"unknown action {action[:40]!r}")
    try:
        version = int(data["version"]) if data.get("version") else None
    except ValueError:
        version = None
    item = desk.change(writer(request), item_id, action, user["username"], version=version,
                       assignee=(data.get("assignee") or "").strip()[:200] or None, reason=data.get("reason"),
                       handoff=Handoff.of(request.app.state.settings))
    return f"#{item_id}: {item['state']}" + (f", assigned to {item['assignee']}" if item["assignee"] else "")


@router.post("/inbox/{item_id}/change")
async def change_item(request: Request, item_id: RowId):
    user = require_permission(request, "inbox.change")
    data, _ = await _form(request, user)
    try:
        done = _apply(request, item_id, data, user)
    except InboxConflictError as exc:
        return _item(request, item_id, str(exc), status=409)
    except InboxError as exc:
        if request.app.state.reader.inbox.get(item_id) is None:
            raise HTTPException(404, "no such inbox item") from None
        return _item(request, item_id, str(exc), status=400)
    return RedirectResponse(f"/inbox/{item_id}?" + urlencode({"done": done}), status_code=303)


@router.post("/inbox/{item_id}/notes")
async def add_note(request: Request, item_id: RowId):
    user = require_permission(request, "inbox.note")
    data, _ = await _form(request, user)
    try:
        writer(request).inbox.add_note(item_id, user["username"], data.get("text", ""))
    except InboxError as exc:
        if request.app.state.reader.inbox.get(item_id) is None:
            raise HTTPException(404, "no such inbox item") from None
        return _item(request, item_id, str(exc), status=400)
    return RedirectResponse(f"/inbox/{item_id}#notes", status_code=303)


@router.post("/inbox/bulk")
async def bulk(request: Request):
    """One action on every ticked item (``item`` = "id:version"); each outcome is said."""
    user = require_permission(request, "inbox.change")
    data, picked = await _form(request, user)
    done, refused = 0, []
    for value in picked:
        id_part, _, version = value.partition(":")
        item_id = row_id(id_part)
        if item_id is None:
            continue
        try:
            _apply(request, item_id, {**data, "version": version}, user)
            done += 1
        except InboxError as exc:
            refused.append(str(exc))
    message = f"{done} item(s) changed" + (f"; {len(refused)} not: " + " | ".join(refused) if refused else "")
    back = data.get("back") or "/inbox"
    back = back if back.startswith("/inbox") and "\\" not in back and not back.startswith("//") else "/inbox"
    return RedirectResponse(back + ("&" if "?" in back else "?") + urlencode({"done": message[:500]}),
                            status_code=303)


@router.post("/inbox/add")
async def add_mention(request: Request):
    """A mention into the inbox by hand (from the mentions page)."""
    user = require_permission(request, "inbox.change")
    data, _ = await _form(request, user)
    mention_id = row_id(data.get("mention_id", ""))
    if mention_id is None:
        raise HTTPException(400, "mention_id must be a number")
    priority = data.get("priority") or "normal"
    priority = priority if priority in PRIORITIES else "normal"
    store = writer(request)
    item = desk.route_to_inbox(store, request.app.state.settings.inbox, mention_id, priority, by=user["username"],
                               now=request.app.state.now())
    if item is None:
        item = store.inbox.item_for_mention(mention_id)
        if item is None:
            raise HTTPException(404, "no such mention")
    return RedirectResponse(f"/inbox/{item}", status_code=303)
