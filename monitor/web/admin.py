"""The admins' pages: users and their roles (/admin/users) and the audit log (/audit).

Only admins reach them (``roles``: ``user.manage``, ``audit.read``); every form carries the
session's CSRF token; every change is the store's (``store.accounts``), which writes its audit
row in the same transaction and refuses to leave no enabled admin. A disabled user keeps their
inbox assignments: the users page counts their open items and links to them, to reassign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from monitor.roles import PERMISSIONS, ROLES
from monitor.store.accounts import AccountError
from monitor.web.deps import PAGE_MAX, render, require_form, require_permission, writer

router = APIRouter(include_in_schema=False)
PAGE = 100


def _users(request: Request, error: str | None = None, status: int = 200):
    reader = request.app.state.reader
    return render(request, "admin_users.html", {
        "users": reader.accounts.list_users(), "roles": ROLES, "permissions": PERMISSIONS, "error": error,
        "message": request.query_params.get("done", "")[:300]}, status=status)


@router.get("/admin/users")
def users_page(request: Request):
    require_permission(request, "user.manage")
    return _users(request)


@router.post("/admin/users/{what}")
async def change_user(request: Request, what: str):
    """``role`` (with ``role``), ``disable`` or ``enable`` the user named in the form."""
    user = require_permission(request, "user.manage")
    form = await require_form(request, user)
    if what not in ("role", "disable", "enable"):
        raise HTTPException(404, "no such user change")
    name = (form.get("username") or "")[:100]
    accounts = writer(request).accounts
    try:
        if what == "role":
            role = form.get("role", "")
            old = accounts.set_role(name, role, actor=user["username"])
            done = f"{name}: {old} → {role}" if old != role else f"{name} is already {role}"
        elif what == "disable":
            if not accounts.disable_user(name, actor=user["username"]):
                raise AccountError(f"no user {name!r}")
            done = f"{name} disabled (logged out; their inbox items stay assigned until reassigned)"
        else:
            if not accounts.enable_user(name, actor=user["username"]):
                raise AccountError(f"no user {name!r}")
            done = f"{name} enabled"
    except AccountError as exc:
        return _users(request, str(exc), status=400)
    if what == "disable" and name == user["username"]:
        return RedirectResponse("/login", status_code=303)  # their own session just ended
    return RedirectResponse("/admin/users?" + urlencode({"done": done}), status_code=303)


def _day(request: Request, name: str) -> datetime | None:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        return None
    try:
        return datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise HTTPException(400, f"{name} must be a date, YYYY-MM-DD") from None


@router.get("/audit")
def audit_page(request: Request):
    """The audit log, newest first: filter by actor, action (a prefix: ``inbox``, ``user.role``)
    and days (from ``since`` to ``until``, both included, UTC)."""
    require_permission(request, "audit.read")
    q = request.query_params
    actor = (q.get("actor") or "").strip()[:200] or None
    action = (q.get("action") or "").strip()[:100] or None
    since, until = _day(request, "since"), _day(request, "until")
    try:
        page = min(max(int(q.get("page", "1")), 1), PAGE_MAX)
    except ValueError:
        page = 1
    audit = request.app.state.reader.audit
    filters = {k: v for k, v in (("actor", actor), ("action", action), ("since", q.get("since", "")[:10]),
                                 ("until", q.get("until", "")[:10])) if v}
    rows = audit.list(actor=actor, action=action, since=since, until=until and until + timedelta(days=1),
                      limit=PAGE, offset=(page - 1) * PAGE)
    return render(request, "audit.html", {"rows": rows, "filters": filters, "page": page, "per": PAGE,
                                          "actors": audit.actors()})
