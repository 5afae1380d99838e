"""The web app: FastAPI, Jinja2 templates (autoescaped), sessions in the database.

Pages and the API read through a read-only store; the few writes (logins, marks, label
corrections, author links) go through the writer store in short transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import jinja2
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from monitor.config import Settings
from monitor.records import utcnow
from monitor.store import Store, accounts
from monitor.web import security
from monitor.web.views import Views, format_when

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "monitor_session"
LOGIN_CSRF_COOKIE = "monitor_login_csrf"


class LoginRequired(Exception):
    pass


def templates_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["href"] = security.safe_href
    env.filters["when"] = format_when
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:+.0f}"
    env.filters["num"] = lambda v: "-" if v is None else f"{int(v):,}"
    env.globals["qs"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    env.globals["dict"] = dict
    return env


def create_app(settings: Settings, reader: Store, writer: Store | Callable[[], Store], *,
               now: Callable[[], datetime] = utcnow) -> FastAPI:
    """``reader``: a Store opened readonly=True; ``writer``: the writer store (or a factory)."""
    web = settings.web
    app = FastAPI(title="monitor", version="1", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  description="Advocates, detractors, the advocacy index and mentions, as JSON. "
                              "Authenticate with the session cookie set by /login.")
    app.state.settings = settings
    app.state.reader = reader
    app.state.writer_source = writer
    app.state.views = Views(reader, settings, now=now)
    app.state.templates = templates_env()
    app.state.now = now
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "login required"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail}, status=exc.status_code)

    from monitor.web import api, pages

    app.include_router(pages.router)
    app.include_router(api.router)
    # outermost last: the host check runs first, every response gets the headers
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(web.allowed_hosts))
    app.add_middleware(security.SecurityHeaders, secure=web.secure_cookies)
    return app


# ------------------------------------------------------------------ helpers for routes


def writer(request: Request) -> Store:
    source = request.app.state.writer_source
    if callable(source) and not isinstance(source, Store):
        source = source()
        request.app.state.writer_source = source
    return source


def current_user(request: Request) -> dict | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    return accounts.get_session(request.app.state.reader, security.token_hash(token), request.app.state.now())


def require_user(request: Request) -> dict:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    request.state.user = user
    return user


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
           "refreshed_at": views.refreshed_at(), "path": request.url.path, "ago": views.ago, **context}
    html = request.app.state.templates.get_template(name).render(ctx)
    return HTMLResponse(html, status_code=status)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.web.session_lifetime.total_seconds()),
                        httponly=True, samesite="strict", secure=settings.web.secure_cookies, path="/")


def safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 2000:
        return value
    return "/"
