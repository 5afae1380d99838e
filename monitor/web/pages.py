"""HTML pages and CSV exports."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from monitor import advocates, csvsafe, inbox
from monitor.store import accounts
from monitor.store.programme import ProgrammeError
from monitor.textutil import mention_text
from monitor.web import security
from monitor.web.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    RowId,
    current_user,
    render,
    require_form,
    require_permission,
    require_user,
    row_id,
    safe_next,
    set_session_cookie,
    writer,
)

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

ADVOCATE_FILTERS = ("brand", "source", "flag", "q", "mark")
MENTION_FILTERS = ("q", "brand", "source", "advocacy", "sentiment", "kind", "relevance")
RELEVANCE = ("relevant", "off_topic", "all")  # the relevance filter's values (monitor.relevance); default relevant
BRAND_COOKIE = "monitor_brand"  # the brand chosen last: quoted name, or ALL_BRANDS
ALL_BRANDS = "*"
CHOOSE = {"advocacy": "Choose the stance (promoter, passive or detractor) before saving: nothing was recorded.",
          "sentiment": "Choose the sentiment (negative, neutral or positive) before saving: nothing was recorded.",
          "relevance": "Say whether the mention is about the brand before saving: nothing was recorded."}


def _params(request: Request, names) -> dict:
    return {n: v.strip()[:200] for n in names if (v := request.query_params.get(n)) and v.strip()}


def _mention_filters(request: Request) -> dict:
    """The Mentions page's filters; ``since``/``until`` (an alert's window, ISO 8601) as stored
    times, left out when they are not times."""
    from monitor.store import iso, parse_iso

    filters = _params(request, (*MENTION_FILTERS, "since", "until"))
    if filters.get("relevance") not in RELEVANCE:
        filters.pop("relevance", None)  # relevant, as by default
    for name in ("since", "until"):
        if name in filters:
            try:
                filters[name] = iso(parse_iso(filters[name]))
            except (ValueError, OverflowError):
                del filters[name]
    return filters


def _int(request: Request, name: str, default: int, lo: int = 1, hi: int = 10_000) -> int:
    try:
        return min(max(int(request.query_params.get(name, default)), lo), hi)
    except ValueError:
        return default


# ------------------------------------------------------------------------- login


@router.get("/login")
def login_page(request: Request, next: str = "/"):
    if current_user(request):
        return RedirectResponse(safe_next(next), status_code=303)
    token = security.new_token()
    resp = render(request, "login.html", {"next": safe_next(next), "login_csrf": token, "error": None})
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                    secure=request.app.state.settings.web.secure_cookies, max_age=3600, path="/login")
    return resp


def _login_throttle(request: Request) -> security.LoginThrottle:
    state = request.app.state
    throttle = getattr(state, "login_throttle", None)
    if throttle is None:  # one per app, made on the event loop on first use
        web = state.settings.web
        throttle = state.login_throttle = security.LoginThrottle(
            max_per_name=web.login_max_failures_per_name, max_per_address=web.login_max_failures_per_address,
            window=web.login_failure_window, now=state.now)
    return throttle


@router.post("/login")
async def login(request: Request):
    form = await request.form()
    username, password = str(form.get("username", ""))[:200], str(form.get("password", ""))[:1000]
    target = safe_next(str(form.get("next", "/")))
    if not security.same(str(form.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE)):
        raise HTTPException(403, "the login form expired: reload the page and try again")
    address = request.client.host if request.client else "unknown"
    throttle = _login_throttle(request)
    attempt = throttle.begin(username, address)
    if isinstance(attempt, security.LoginBlock):
        logger.info("login refused without a password check: too many failed logins %s (address %s); "
                    "allowed again in %d min", "for this user name" if attempt.scope == "account"
                    else "from this address", address, attempt.minutes)
        resp = render(request, "login.html", {"next": target, "login_csrf": form.get("csrf"), "error": attempt.message},
                      status=429)
        resp.headers["retry-after"] = str(max(1, int(attempt.retry_after.total_seconds())))
        return resp
    user = request.app.state.reader.accounts.get_user(username)
    # scrypt is CPU-bound (~0.1 s): in a worker thread, so other requests are served meanwhile
    ok = await run_in_threadpool(security.check_login, password, user["password_hash"] if user else None)
    if not ok or user is None:
        logger.info("failed login for a user name of %d characters from %s", len(username), address)
        for scope in throttle.reached(username, address):
            logger.warning("login limit reached: %d failed logins %s within %d min (address %s); further attempts "
                           "get 429 until they leave that window", throttle.limits[scope],
                           "for one user name" if scope == "account" else "from this address",
                           throttle.window // timedelta(minutes=1), address)
        resp = render(request, "login.html", {"next": target, "login_csrf": form.get("csrf"),
                                              "error": "Wrong user name or password."}, status=401)
        return resp
    throttle.succeeded(username, address, attempt)
    token = security.new_token()
    settings = request.app.state.settings
    writer(request).accounts.create_session(security.token_hash(token), user["id"], security.new_token(),
                                            request.app.state.now() + settings.web.session_lifetime)
    # a login is in the audit log; a failed one is not (what was typed as the name may be a password)
    writer(request).audit.record(user["username"], "login", "user", user["username"])
    redirect = RedirectResponse(target, status_code=303)
    set_session_cookie(redirect, token, settings)
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return redirect


@router.post("/logout")
async def logout(request: Request):
    user = require_user(request)
    await require_form(request, user)
    writer(request).accounts.delete_session(user["token_hash"])
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/healthz")
def healthz(request: Request):
    """Up or not, for a load balancer or systemd; served without login, so it names no versions."""
    return {"ok": True}


# ----------------------------------------------------------------------- pages


def _chosen_brand(request: Request) -> str | None:
    """The brand to show when the URL names none: the one chosen last (cookie), else the only
    brand with data; None for all brands."""
    views = request.app.state.views
    saved = request.cookies.get(BRAND_COOKIE)
    if saved == ALL_BRANDS:
        return None
    if saved and (name := unquote(saved)) in views.brands():
        return name
    return views.brand_with_data()


def _remember_brand(request: Request, response: Response) -> Response:
    """A brand chosen in the URL (``brand=``, empty for all brands) is where the page opens next time."""
    if "brand" in request.query_params:
        brand = request.query_params["brand"].strip()
        if not brand or brand in request.app.state.views.brands():
            response.set_cookie(BRAND_COOKIE, quote(brand, safe="") if brand else ALL_BRANDS, max_age=365 * 86400,
                                httponly=True, samesite="lax", secure=request.app.state.settings.web.secure_cookies,
                                path="/")
    return response


@router.get("/")
def home(request: Request):
    require_user(request)
    brand = _chosen_brand(request)
    return RedirectResponse("/overview" + (f"?{urlencode({'brand': brand})}" if brand else ""), status_code=303)


@router.get("/overview")
def overview(request: Request):
    require_user(request)
    if "brand" in request.query_params:
        brand = request.query_params["brand"].strip()[:200] or None
    else:
        brand = _chosen_brand(request)
    weeks = _int(request, "weeks", 26, 1, 520)
    data = request.app.state.views.overview(brand, weeks)
    speed = inbox.overview_speed(request.app.state.reader, brand, weeks, request.app.state.now())
    return _remember_brand(request, render(request, "overview.html", {"o": data, "brand": brand, "speed": speed}))


def _authors_page(request: Request, kind: str):
    require_user(request)
    filters = _params(request, ADVOCATE_FILTERS)
    sort = request.query_params.get("sort", "score")
    desc = request.query_params.get("dir", "desc") != "asc"
    page = _int(request, "page", 1)
    flipped = request.query_params.get("flipped") == "1"
    min_score = request.query_params.get("min_score")
    try:
        min_score_f = float(min_score) if min_score else None
    except ValueError:
        min_score_f = None
    rows = request.app.state.views.authors(kind, page=page, sort=sort, desc=desc, flipped=flipped,
                                            min_score=min_score_f, **filters)
    query = {**filters, **({"flipped": "1"} if flipped else {}), **({"min_score": min_score} if min_score_f else {})}
    return _remember_brand(request, render(request, "authors.html", {
        "kind": kind, "rows": rows, "filters": filters, "sort": sort, "desc": desc, "page": page,
        "flipped": flipped, "min_score": min_score or "", "query": query, "urlencode": urlencode,
        "export": f"/export/{kind}s.csv?" + urlencode({**query, "sort": sort, "dir": "desc" if desc else "asc"}),
        "marks": accounts.MARKS, "cfg": request.app.state.settings.advocates}))


@router.get("/advocates")
def advocates_page(request: Request):
    return _authors_page(request, "advocate")


@router.get("/detractors")
def detractors_page(request: Request):
    return _authors_page(request, "detractor")


@router.get("/authors/{person_id}")
def author_page(request: Request, person_id: RowId):
    require_user(request)
    brand = request.query_params.get("brand") or None
    data = request.app.state.views.author(person_id, brand)
    if data is None:
        raise HTTPException(404, "no such author")
    from monitor.web.programme_view import author_programme

    return render(request, "author.html", {"a": data, "brand": brand, "marks": accounts.MARKS,
                                           "fields": accounts.FIELDS,
                                           "prog": author_programme(request, data["person_id"],
                                                                    [s["brand"] for s in data["stats"]])})


@router.post("/authors/{person_id}/marks")
async def mark_author(request: Request, person_id: RowId):
    user = require_permission(request, "mark")
    form = await require_form(request, user)
    mark, brand = form.get("mark", ""), form.get("brand", "")
    if mark not in accounts.MARKS or not brand:
        raise HTTPException(400, "unknown mark or brand")
    try:
        writer(request).accounts.set_mark(person_id, brand, mark, user["username"], on=form.get("on") == "1",
                                          note=(form.get("note") or "")[:500] or None)
    except ValueError:
        raise HTTPException(404, "no such author") from None
    except ProgrammeError as exc:  # marked do not contact: lifted first, on purpose
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse(f"/authors/{person_id}?" + urlencode({"brand": brand}), status_code=303)


@router.post("/authors/{person_id}/links")
async def link_author(request: Request, person_id: RowId):
    user = require_permission(request, "link")
    form = await require_form(request, user)
    store = writer(request)
    other = store.accounts.find_author(form.get("source", ""), form.get("handle", ""))
    if other is None:
        raise HTTPException(400, "no author with that source and handle")
    try:
        store.accounts.link_authors(person_id, other, user["username"])
    except ValueError:
        raise HTTPException(404, "no such author") from None
    advocates.recompute_persons(store, request.app.state.settings.advocates, [person_id, other])
    return RedirectResponse(f"/authors/{person_id}", status_code=303)


@router.post("/authors/{person_id}/unlink")
async def unlink_author(request: Request, person_id: RowId):
    user = require_permission(request, "link")
    form = await require_form(request, user)
    store = writer(request)
    author_id = row_id(form.get("author_id", ""))
    if author_id is None:
        raise HTTPException(400, "author_id must be a number")
    old = store.accounts.unlink_author(author_id, actor=user["username"])
    advocates.recompute_persons(store, request.app.state.settings.advocates, [author_id, *([old] if old else [])])
    return RedirectResponse(f"/authors/{old or author_id}", status_code=303)


@router.get("/mentions")
def mentions_page(request: Request):
    require_user(request)
    filters = _mention_filters(request)
    page = _int(request, "page", 1)
    rows = request.app.state.views.mentions(page=page, **filters)
    return _remember_brand(request, render(request, "mentions.html", {
        "rows": rows, "filters": filters, "page": page, "urlencode": urlencode, "fields": accounts.FIELDS,
        "export": "/export/mentions.csv?" + urlencode(filters)}))


TOPIC_PERIODS = ((7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days"), (182, "Last 6 months"),
                 (365, "Last year"))


@router.get("/topics")
def topics_page(request: Request):
    """Themes of one brand's mentions (monitor.topics): the brand chosen, else the one chosen
    last; all brands at once have no themes (each brand is clustered on its own). Read only:
    themes are stored by ``monitor topics`` and the daemon's themes job, never by a GET."""
    require_user(request)
    if "brand" in request.query_params:
        brand = request.query_params["brand"].strip()[:200] or None
    else:
        brand = _chosen_brand(request)
    days = _int(request, "days", 30, 1, 3650)
    stance = request.query_params.get("stance")
    stance = stance if stance in ("detractor", "promoter") else None
    views = request.app.state.views
    data = views.topics(brand, days, stance) if brand in views.brands() else None
    return _remember_brand(request, render(request, "topics.html", {
        "t": data, "brand": brand, "days": days, "stance": stance, "periods": TOPIC_PERIODS}))


@router.get("/compare")
def compare_page(request: Request):
    """Share of voice: every brand (competitors last) side by side and week by week (monitor.share); read only."""
    require_user(request)
    days = _int(request, "days", 30, 1, 3650)
    data = request.app.state.views.compare(days)
    return render(request, "compare.html", {"c": data, "days": days, "periods": TOPIC_PERIODS,
                                            "brand": _chosen_brand(request)})


@router.get("/report")
def report_page(request: Request):
    """The weekly report of a brand (monitor.report), printable: ``brand`` (default: the one
    chosen last, else the first) and ``week`` (YYYY-Www; default: the last whole week). Read
    only: the themes are found, not stored."""
    from monitor import report

    require_user(request)
    views = request.app.state.views
    brands = views.brands()
    brand = (request.query_params.get("brand") or "").strip()[:200] or _chosen_brand(request) or \
        (brands[0] if brands else None)
    if brand is None or brand not in brands:
        raise HTTPException(404, "no such brand")
    week = request.query_params.get("week")
    try:
        monday = report.parse_week(week) if week else report.last_week(request.app.state.now())
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    data = report.build(request.app.state.reader, request.app.state.settings, brand, monday)
    return render(request, "report.html", {"r": data, "brand": brand, "one_day": timedelta(days=1),
                                           "with_link": False})


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: RowId):
    """An alert and the mention(s) it was raised for, each with its correction forms."""
    require_user(request)
    data = request.app.state.views.alert(alert_id)
    if data is None:
        raise HTTPException(404, "no such alert")
    return render(request, "mentions.html", {"alert": data, "rows": data["mentions"], "filters": {}, "page": 1,
                                             "fields": accounts.FIELDS, "brand": data["brand"]})


@router.post("/mentions/{mention_id}/correct")
async def correct_mention(request: Request, mention_id: RowId):
    """One label of a mention, as a user says it is. The form starts on no label: a missing
    label is refused, never guessed. 'passive' is the stance of the model's label 'none'."""
    user = require_permission(request, "correct")
    form = await require_form(request, user)
    field, label = form.get("field") or "advocacy", (form.get("label") or "").strip()
    if field not in accounts.FIELDS:
        raise HTTPException(400, "field must be advocacy, sentiment or relevance")
    if not label:
        raise HTTPException(400, CHOOSE[field])
    if field == "advocacy" and label == "passive":
        label = "none"
    try:
        writer(request).accounts.add_correction(mention_id, field, label, user["username"])
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    advocates.refresh_mention(writer(request), request.app.state.settings.advocates, mention_id)
    return RedirectResponse(safe_next(form.get("next")), status_code=303)


@router.get("/corrections")
def corrections_page(request: Request):
    require_user(request)
    return render(request, "corrections.html", {"rows": request.app.state.views.corrections(limit=500)})


# ---------------------------------------------------------------------- exports

def _exported(request: Request, what: str, rows: int) -> None:
    """An export needs the export permission (members and admins) and is recorded in the audit
    log: who took which list of people, with which filters."""
    user = require_permission(request, "export")
    query = {k: v[:100] for k, v in request.query_params.items() if k != "csrf"}
    writer(request).audit.record(user["username"], f"export.{what}", None, None, {"rows": rows, **query})


def _csv(rows: list[dict], columns: list[str], filename: str) -> Response:
    """A CSV download, its formula-like cells neutralised (monitor.csvsafe)."""
    return Response(csvsafe.to_text(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


AUTHOR_COLUMNS = ["person_id", "brand", "source", "handle", "flag", "score", "advocate_score", "detractor_score",
                  "stance", "mentions", "promoters", "passives", "detractors", "reach", "weeks_active", "flips",
                  "last_flip", "last_flip_at", "first_at", "last_at", "sources", "marks"]


def _export_authors(request: Request, kind: str) -> Response:
    require_permission(request, "export")
    filters = _params(request, ADVOCATE_FILTERS)
    rows = request.app.state.views.authors(kind, limit=_int(request, "limit", 10_000, 1, 100_000),
                                           sort=request.query_params.get("sort", "score"),
                                           desc=request.query_params.get("dir", "desc") != "asc",
                                           flipped=request.query_params.get("flipped") == "1", **filters)
    for r in rows:
        r["marks"] = " ".join(r["marks"])
    _exported(request, f"{kind}s", len(rows))
    return _csv(rows, AUTHOR_COLUMNS, f"{kind}s.csv")


@router.get("/export/advocates.csv")
def export_advocates(request: Request):
    return _export_authors(request, "advocate")


@router.get("/export/detractors.csv")
def export_detractors(request: Request):
    return _export_authors(request, "detractor")


@router.get("/export/mentions.csv")
def export_mentions(request: Request):
    require_permission(request, "export")
    rows = request.app.state.views.mentions(limit=_int(request, "limit", 10_000, 1, 100_000),
                                            **_mention_filters(request))
    _exported(request, "mentions", len(rows))
    return _csv(rows, ["id", "created_at", "brand", "source", "kind", "author", "rating", "score", "stance", "basis",
                       "advocacy", "sentiment", "relevance", "off_topic", "url", "title", "text"],
                "mentions.csv")  # score: a survey's 0-10; relevance: P(about the brand)


@router.get("/export/corrections.csv")
def export_corrections(request: Request):
    """Evaluation data: text,label (+ context columns), as the model sees the text (formula-like
    texts neutralised; the evaluation reader restores them)."""
    require_permission(request, "export")
    field = request.query_params.get("field", "advocacy")
    if field not in accounts.FIELDS:
        raise HTTPException(400, "field must be advocacy, sentiment or relevance")
    rows = [{**r, "text": mention_text(r)} for r in request.app.state.views.corrections(field)]
    _exported(request, f"corrections-{field}", len(rows))
    return _csv(rows, ["text", "brand", "label", "field", "mention_id", "model_label", "model", "set_by", "created_at"],
                f"corrections-{field}.csv")

