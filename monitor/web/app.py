"""The web app: FastAPI, Jinja2 templates (autoescaped), sessions in the database.

Pages and the API read through a read-only store; the few writes (logins, marks, label
corrections, author links) go through the writer store in short transactions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.config import Settings
from monitor.records import utcnow
from monitor.store import Store
from monitor.topics import clean_label
from monitor.web import admin, api, handoff, inbox, metrics, pages, programme, security
from monitor.web.deps import LoginRequired, render
from monitor.web.views import Views, format_when

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent


def templates_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["href"] = security.safe_href
    env.filters["when"] = format_when
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:+.0f}"
    env.filters["num"] = lambda v: "-" if v is None else f"{int(v):,}"
    env.filters["share_pct"] = lambda v: "-" if v is None else f"{v * 100:.0f}%"  # a share 0..1
    env.filters["clean"] = clean_label  # scraped text: no control or bidi characters, bounded
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
        return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail,
                                              "back": _back_to(request)}, status=exc.status_code)

    app.include_router(pages.router)
    app.include_router(inbox.router)
    app.include_router(programme.router)
    app.include_router(admin.router)
    app.include_router(handoff.router)
    app.include_router(api.router)
    app.include_router(metrics.router)
    # outermost last: the host check runs first, every response gets the headers
    app.add_middleware(security.HostAllowList, allowed_hosts=list(web.allowed_hosts))
    app.add_middleware(security.SecurityHeaders, secure=web.secure_cookies)
    return app


_FORM_PAGES = re.compile(r"/(authors|inbox)/(\d{1,19})/[a-z/]+")


def _back_to(request: Request) -> str:
    """Where a refused form returns to: the page that has the form (an author's programme part,
    an inbox item, the tokens, users or programme page), the overview for anything else."""
    path = request.url.path
    if request.method in ("GET", "HEAD"):
        return "/"
    if m := _FORM_PAGES.fullmatch(path):
        return f"/{m[1]}/{m[2]}" + ("#programme" if "/programme/" in path else "")
    first = path.split("/")[1] if path.count("/") >= 1 else ""
    return {"tokens": "/tokens", "admin": "/admin/users", "programme": "/programme", "inbox": "/inbox"}.get(first, "/")

