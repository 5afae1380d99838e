"""What the routes of pages.py and api.py depend on, FastAPI style (each takes the request):
the writer store, the logged-in user and what their role lets them do (``require_permission``,
the table is ``monitor.roles``), the CSRF-checked form, rendering a template, the session
cookie. The objects themselves live on ``app.state``, set by ``app.create_app``."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from monitor import roles
from monitor.config import Settings
from monitor.store import Store
from monitor.web import security
from monitor.web.views import Views

SESSION_COOKIE = "monitor_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOGIN_CSRF_COOKIE = "monitor_login_csrf"

# Every id and page number from a request is bounded where it enters, so that a number
# SQLite cannot hold answers 422 (or 404), never a 500 from deep in the store.
ID_MAX = 2**63 - 1  # SQLite's largest integer
PAGE_MAX = 100_000  # of at most 1,000 rows each
RowId = Annotated[int, Path(ge=1, le=ID_MAX)]
PageNumber = Annotated[int, Query(ge=1, le=PAGE_MAX)]


def row_id(value: object) -> int | None:
    """A form field as a row id, or None when it is no number a row can have."""
    try:
        n = int(str(value))
    except ValueError:
        return None
    return n if 1 <= n <= ID_MAX else None


class LoginRequired(Exception):
    """No valid session: pages redirect to /login, the API answers 401 (handled in app.py)."""


def writer(request: Request) -> Store:
    """The writer store (opened on first use where create_app was given a factory)."""
    source = request.app.state.writer_source
    if callable(source) and not isinstance(source, Store):
        source = source()
        request.app.state.writer_source = source
    return source


def current_user(request: Request) -> dict | None:
    """The session's user; on the JSON API, an ``Authorization: Bearer`` token's user instead
    (``via`` "token", with its ``scope``; it needs no CSRF token: another site's page cannot
    send that header). A read token on a request that changes state is refused here (403)."""
    auth = request.headers.get("authorization")
    if auth is not None and request.url.path.startswith("/api/"):
        return _token_user(request, auth)
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    return request.app.state.reader.accounts.get_session(security.token_hash(token), request.app.state.now())


def _token_user(request: Request, header: str) -> dict:
    from monitor import tokens

    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authorization must be: Bearer <API token>", headers={"WWW-Authenticate": "Bearer"})
    found = tokens.authenticate(request.app.state.reader, token.strip(), request.app.state.now(),
                                touch=writer(request))
    if found is None:  # never the token itself in the answer or a log line
        raise HTTPException(401, "the API token is unknown, revoked or expired, or its user is disabled",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if request.method not in SAFE_METHODS and found["scope"] != "read-write":
        raise HTTPException(403, "this API token is read-only (scope read): create a read-write token to change data")
    # never above its user; a read token at most a viewer, whatever its user may do
    role = found["role"] if found["scope"] == "read-write" or roles.rank(found["role"]) < 0 else "viewer"
    return {**found, "role": role, "csrf": "", "via": "token"}


def require_api_write(request: Request, permission: str) -> dict:
    """The user of a state-changing JSON API request, if their role has ``permission``: a
    read-write token's (scope checked in ``current_user``), or the session's, which must send
    its CSRF token (the one the page's forms carry) in ``X-CSRF-Token``: the session cookie
    alone never changes data."""
    user = require_permission(request, permission)
    if user.get("via") != "token" and not security.same(request.headers.get("x-csrf-token"), user["csrf"]):
        raise HTTPException(403, "send the session's CSRF token in the X-CSRF-Token header, or use an API token")
    return user


def require_user(request: Request) -> dict:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    request.state.user = user
    return user


def require_permission(request: Request, permission: str) -> dict:
    """The logged-in user, if their role has ``permission`` (``monitor.roles.PERMISSIONS``);
    otherwise 403 saying which role it needs (an HTML page, or JSON under /api/). Not logged
    in: LoginRequired, as ``require_user``."""
    user = require_user(request)
    if not roles.can(user.get("role"), permission):
        raise HTTPException(403, roles.refusal(user.get("role"), permission))
    return user


def require_role(request: Request, role: str) -> dict:
    """The logged-in user, if their role is ``role`` or above; otherwise 403 naming it."""
    user = require_user(request)
    if not roles.at_least(user.get("role"), role):
        raise HTTPException(403, f"this needs the {role} role (you are a {user.get('role')}); "
                                 "an admin can change roles")
    return user


def can(user: dict | None, permission: str) -> bool:
    """Whether this user (a session row, or None) has ``permission``: for templates and routes
    that show or hide an action."""
    return bool(user) and roles.can(user.get("role") if user else None, permission)


async def require_form(request: Request, user: dict) -> dict:
    """The posted form, after checking its CSRF token against the session's."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    if not security.same(data.get("csrf"), user["csrf"]):
        raise HTTPException(403, "the form expired or did not come from this site: reload the page and try again")
    return data


def render(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    user = getattr(request.state, "user", None) or current_user(request)
    views: Views = request.app.state.views
    ctx = {"request": request, "user": user, "csrf": user["csrf"] if user else "", "brands": views.brands(),
           "brand": None, "adv_cfg": request.app.state.settings.advocates,
           "refreshed_at": views.refreshed_at(), "path": request.url.path, "ago": views.ago,
           "can": lambda permission: can(user, permission), **context}
    html = request.app.state.templates.get_template(name).render(ctx)
    return HTMLResponse(html, status_code=status)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.web.session_lifetime.total_seconds()),
                        httponly=True, samesite="strict", secure=settings.web.secure_cookies, path="/")


def safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 2000:
        return value
    return "/"
