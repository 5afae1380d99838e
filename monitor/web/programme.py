"""The advocate programme's pages: the Programme page (members per brand with their status,
rewards, referrals and link; totals and referrals over time), and the forms of the programme
part of an author page (``programme_view.author_programme``): status change, reward, referral link, referral
import. Every form is CSRF-checked and needs the ``programme`` permission (members and
admins); every change lands in the status history and the audit log (store.programme)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from monitor import programme as prog
from monitor.store.programme import STATUSES, ProgrammeError
from monitor.web import security
from monitor.web.deps import RowId, render, require_form, require_permission, require_user, writer
from monitor.web.programme_view import programmes as _programmes

router = APIRouter(include_in_schema=False)
UPLOAD_MAX = prog.MAX_FILE_BYTES


def _back(person_id: int, brand: str, message: str = "", error: str = "") -> RedirectResponse:
    query = {"brand": brand, **({"done": message} if message else {}), **({"error": error} if error else {})}
    return RedirectResponse(f"/authors/{person_id}?{urlencode(query)}#programme", status_code=303)


def _refused(exc: ProgrammeError, status: int = 409) -> HTTPException:
    """A refused programme change as an answer: 404 for a person that is not there, else
    ``status`` with the store's words."""
    if str(exc).startswith("no person"):
        return HTTPException(404, "no such author")
    return HTTPException(status, str(exc))


def _brand(request: Request, form: dict) -> str:
    brand = (form.get("brand") or "").strip()
    if brand not in request.app.state.views.brands() and brand not in _programmes(request):
        raise HTTPException(400, "unknown brand")
    return brand


@router.post("/authors/{person_id}/programme/status")
async def change_status(request: Request, person_id: RowId):
    user = require_permission(request, "programme")
    form = await require_form(request, user)
    brand = _brand(request, form)
    status = form.get("status", "")
    if status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    expected = form.get("expected") or None
    try:
        writer(request).programme.set_status(person_id, brand, status, user["username"], form.get("note"),
                                             expected=expected if expected in STATUSES else None)
    except ProgrammeError as exc:  # a conflict too: 409, saying what the status became
        raise _refused(exc) from None
    return _back(person_id, brand, f"status {prog.status_label(status)} saved")


@router.post("/authors/{person_id}/programme/rewards")
async def add_reward(request: Request, person_id: RowId):
    user = require_permission(request, "programme")
    form = await require_form(request, user)
    brand = _brand(request, form)
    try:
        value = float((form.get("value") or "").strip())
    except ValueError:
        raise HTTPException(400, "the value must be a number such as 25 or 25.50") from None
    at = None
    if (when := (form.get("at") or "").strip()):
        try:
            at = prog.parse_date(when)
        except (ValueError, OverflowError):
            raise HTTPException(400, "the date must be like 2026-03-01") from None
    p = _programmes(request).get(brand)
    try:
        writer(request).programme.add_reward(person_id, brand, form.get("what", ""), value, user["username"],
                                             currency=p.currency if p else None, at=at, note=form.get("note"))
    except ProgrammeError as exc:
        raise _refused(exc, 409 if "do not contact" in str(exc) else 400) from None
    return _back(person_id, brand, "reward recorded")


@router.post("/authors/{person_id}/programme/link")
async def make_link(request: Request, person_id: RowId):
    """Make the person's referral code (a GET never writes): the link then shows on the page."""
    user = require_permission(request, "programme")
    form = await require_form(request, user)
    brand = _brand(request, form)
    try:
        prog.personal_link(writer(request), _programmes(request).get(brand), person_id, brand, user["username"])
    except ProgrammeError as exc:
        raise _refused(exc) from None
    return _back(person_id, brand, "referral link made")


@router.get("/programme")
def programme_page(request: Request):
    from monitor.web.pages import _chosen_brand, _remember_brand

    require_user(request)
    brand = (request.query_params["brand"].strip()[:200] or None) if "brand" in request.query_params \
        else _chosen_brand(request)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    reader = request.app.state.reader
    programmes = _programmes(request)
    rows = prog.export_rows(reader, programmes, brand=brand, status=status)[:1000]
    weekly = reader.programme.referrals_by_week(brand)
    weeks = sorted({w for _b, w, _n, _v in weekly})
    series = {"weeks": weeks, "brands": [
        {"brand": b, "counts": [next((n for bb, w, n, _v in weekly if bb == b and w == wk), 0) for wk in weeks],
         "values": [round(next((v for bb, w, _n, v in weekly if bb == b and w == wk), 0.0), 2) for wk in weeks]}
        for b in sorted({b for b, *_ in weekly})]}
    totals = [{**t, "currency": programmes[t["brand"]].currency if programmes.get(t["brand"]) else ""}
              for t in reader.programme.totals(brand)]
    filters = {k: v for k, v in (("brand", brand), ("status", status)) if v}
    return _remember_brand(request, render(request, "programme.html", {
        "rows": rows, "totals": totals, "series": series, "brand": brand, "status": status, "statuses": STATUSES,
        "unmatched": reader.programme.unmatched(50), "unmatched_count": reader.programme.unmatched_count(),
        "export": "/export/programme.csv?" + urlencode(filters), "filters": filters,
        "message": request.query_params.get("done", "")[:500]}))


@router.post("/programme/import")
async def import_referrals(request: Request):
    """A referral CSV uploaded from the Programme page (the same import as the command line)."""
    user = require_permission(request, "programme")
    if int(request.headers.get("content-length") or 0) > UPLOAD_MAX + 100_000:
        raise HTTPException(413, "the file is too large")
    async with request.form() as form:  # closes the uploaded file's spool, whatever happens
        csrf = form.get("csrf")
        if not security.same(csrf if isinstance(csrf, str) else None, user["csrf"]):
            raise HTTPException(403, "the form expired or did not come from this site: reload the page and try again")
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "choose a CSV file")
        data = await upload.read(UPLOAD_MAX + 1)
        name = (upload.filename or "upload.csv")[:200]
    try:
        summary = prog.import_referrals(writer(request), _programmes(request), data, file_name=name,
                                        actor=user["username"])
    except prog.ReferralFileError as exc:
        raise HTTPException(400, str(exc)) from None
    text = prog.summary_text(summary)
    if summary.problems:
        text += "; unmatched: " + "; ".join(f"line {ln}: {p}" for ln, p in summary.problems[:5])
    return RedirectResponse("/programme?" + urlencode({"done": text[:500]}), status_code=303)


@router.get("/export/programme.csv")
def export_programme(request: Request):
    """The members as CSV (monitor.csvsafe), recorded in the audit log like the other exports."""
    from monitor.web.pages import _csv

    user = require_permission(request, "export")
    brand = (request.query_params.get("brand") or "").strip()[:200] or None
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    rows = prog.export_rows(request.app.state.reader, _programmes(request), brand=brand, status=status)
    writer(request).audit.record(user["username"], "export.programme", None, None,
                                 {"rows": len(rows), **({"brand": brand} if brand else {}),
                                  **({"status": status} if status else {})})
    return _csv(rows, prog.EXPORT_COLUMNS, "programme.csv")

