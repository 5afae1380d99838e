"""The hand-off's pages: API tokens (/tokens: one's own; an admin sees and revokes everyone's)
and the CRM-ready exports of advocates and detractors (/export/crm/<kind>s.csv).

A new token is shown once, in the answer to the form that created it (never in a URL, a
redirect or a log line; the answer is not cached); only its hash is stored. Every form
carries the session's CSRF token; creating and revoking a token and every export write an
audit row in the same transaction."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from monitor import crm, roles, tokens
from monitor.store import iso
from monitor.store.handoff import SCOPES
from monitor.web.deps import RowId, can, render, require_form, require_permission, writer

router = APIRouter(include_in_schema=False)
EXPIRIES = {"30d": "30 days", "90d": "90 days", "365d": "a year", "never": "never"}


def _tokens_page(request: Request, user: dict, *, new: tokens.NewToken | None = None, error: str | None = None,
                 status: int = 200) -> Response:
    every = can(user, "token.any")
    rows = request.app.state.reader.handoff.tokens(None if every else user["username"])
    response = render(request, "tokens.html", {
        "tokens": rows, "every": every, "new": new, "error": error, "expiries": EXPIRIES,
        "scopes": [s for s in SCOPES if s == "read" or can(user, "token.write")], "now": iso(request.app.state.now()),
        "token_state": lambda row: tokens.state(row, request.app.state.now()),
        "message": request.query_params.get("done", "")[:300]}, status=status)
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/tokens")
def tokens_page(request: Request):
    user = require_permission(request, "token.own")
    return _tokens_page(request, user)


@router.post("/tokens")
async def create_token(request: Request):
    user = require_permission(request, "token.own")
    form = await require_form(request, user)
    scope = form.get("scope", "read")
    store = writer(request)
    try:
        if scope == "read-write" and not roles.can(user.get("role"), "token.write"):
            raise tokens.TokenError(roles.refusal(user.get("role"), "token.write"))
        expires = tokens.parse_expiry(form.get("expires", "90d"))
        with store.transaction():
            new = tokens.create(store, user["username"], scope, name=form.get("name", ""), expires=expires,
                                by=user["username"])
            store.audit.record(user["username"], "token.create", "token", new.id, _detail(new, form.get("name", "")))
    except tokens.TokenError as exc:
        return _tokens_page(request, user, error=str(exc), status=400)
    return _tokens_page(request, user, new=new)


def _detail(new: tokens.NewToken, name: str) -> dict[str, Any]:
    return {"user": new.username, "scope": new.scope, "name": name.strip()[:100],
            "expires_at": new.expires_at.isoformat() if new.expires_at else None}


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: RowId):
    user = require_permission(request, "token.own")
    await require_form(request, user)
    store = writer(request)
    row = store.handoff.token(token_id)
    if row is None or (row["username"] != user["username"] and not can(user, "token.any")):
        raise HTTPException(404, "no such token")
    with store.transaction():
        done = tokens.revoke(store, token_id, user["username"])
        if done:
            store.audit.record(user["username"], "token.revoke", "token", token_id, {"user": row["username"]})
    label = row["name"] or row["prefix"] + "…"
    message = f"token {token_id} ({label}) " + ("revoked" if done else "was revoked already")
    return RedirectResponse("/tokens?" + urlencode({"done": message}), status_code=303)


# ------------------------------------------------------------------ CRM exports


@router.get("/export/crm/{kinds}.csv")
def export_crm(request: Request, kinds: str):
    from monitor.web.pages import ADVOCATE_FILTERS, _csv, _int, _params

    user = require_permission(request, "export")
    kind = {"advocates": "advocate", "detractors": "detractor"}.get(kinds)
    if kind is None:
        raise HTTPException(404, "export advocates or detractors")
    fmt = request.query_params.get("format", "hubspot")
    if fmt not in crm.FORMATS:
        raise HTTPException(400, f"format must be one of {', '.join(crm.FORMATS)}")
    filters = _params(request, ADVOCATE_FILTERS)
    listed = request.app.state.views.authors(kind, limit=_int(request, "limit", 10_000, 1, 100_000),
                                             sort=request.query_params.get("sort", "score"),
                                             desc=request.query_params.get("dir", "desc") != "asc",
                                             flipped=request.query_params.get("flipped") == "1", **filters)
    reader = request.app.state.reader
    profiles = reader.handoff.profiles([r["person_id"] for r in listed])
    rows, columns, left_out = crm.rows(listed, kind, fmt, profiles, crm.programme_status(reader))
    writer(request).audit.record(user["username"], f"export.crm-{kinds}", None, None,
                                 {"rows": len(rows), "left_out_do_not_contact": left_out, "format": fmt, **filters})
    return _csv(rows, columns, f"{kinds}-{fmt}.csv")
