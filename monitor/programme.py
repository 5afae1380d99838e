"""The advocate programme: personal referral links and reading referral CSV files.

A person's programme status, reward log and referral code live in ``store.programme``; here
is what needs the configuration or a file: the link (the brand's ``programme.url`` with its UTM
parameters and the code, ``referral_link``) and the reading of a referral export
(``read_referrals``: columns code, date, value; every line comes back, the unreadable ones with
their problem, so that nothing is lost) and its import (``import_referrals``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.errors import MonitorError
from monitor.settings_programme import ProgrammeSettings
from monitor.store import Store
from monitor.store.programme import CONTACTING, STATUSES, ImportSummary, ProgrammeError, ReferralLine

__all__ = ["CONTACTING", "STATUSES", "EXPORT_COLUMNS", "ProgrammeError", "ReferralFileError", "import_referrals",
           "read_referrals", "referral_link"]

COLUMNS = ("code", "date", "value")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_LINES = 200_000
EXPORT_COLUMNS = ["person_id", "brand", "handle", "source", "status", "changed_by", "changed_at", "code", "link",
                  "rewards", "reward_value", "referrals", "referral_value", "currency"]


class ReferralFileError(MonitorError):
    """A referral file that cannot be read at all (no header with code, date and value; not
    text; too large). Lines that cannot be read are no such error: they are kept as unmatched."""


def referral_link(settings: ProgrammeSettings, code: str) -> str:
    """The brand's programme URL with ``utm_source``, ``utm_medium``, ``utm_campaign`` (when
    set) and the code parameter added; the URL's own query parameters and fragment stay (ours
    replace any of the same name)."""
    parts = urlsplit(settings.url)
    ours = {"utm_source": settings.utm.source, "utm_medium": settings.utm.medium,
            **({"utm_campaign": settings.utm.campaign} if settings.utm.campaign else {}),
            settings.code_param: code}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    return urlunsplit(parts._replace(query=urlencode([*kept, *ours.items()])))


def parse_date(text: str) -> datetime:
    """An ISO 8601 date (2026-03-01) or time (2026-03-01T10:00:00Z, 2026-03-01 10:00); UTC when
    no offset is given."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(), UTC)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", value):
        raise ValueError
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _value(text: str) -> float:
    """A plain number from 0 up (25, 25.50); no thousands separators, no currency sign."""
    value = text.strip()
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError from None
    if not number.is_finite() or number < 0 or number > Decimal("1e12") or not re.fullmatch(r"\d+(\.\d+)?", value):
        raise ValueError
    return float(number)


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def read_referrals(data: bytes) -> list[ReferralLine]:
    """The lines of a referral CSV (header naming code, date and value in any order and case;
    other columns ignored; UTF-8 with or without BOM; blank lines skipped). A line with an
    empty code, a date that is not ISO 8601 or a value that is not a plain number comes back
    with its ``problem``. Each line's key is its code, time and value (or, unreadable, its
    text) and how many such lines came before it in the file: importing the same lines again,
    alone or inside a longer export, adds nothing."""
    if len(data) > MAX_FILE_BYTES:
        raise ReferralFileError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReferralFileError(f"the file is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise ReferralFileError("the file is not a text file (it contains NUL bytes)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    header: dict[str, int] | None = None
    seen: Counter[str] = Counter()
    out: list[ReferralLine] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                names = [c.strip().lstrip("\ufeff").casefold() for c in cells]
                missing = [c for c in COLUMNS if c not in names]
                if missing:
                    raise ReferralFileError(
                        f"line {line}: the first line must be a header naming the columns code, date and value "
                        f"(missing: {', '.join(missing)})")
                header = {c: names.index(c) for c in COLUMNS}
                continue
            if len(out) >= MAX_LINES:
                raise ReferralFileError(f"more than {MAX_LINES} lines: split the file")
            code, date, value = (cells[header[c]].strip() if header[c] < len(cells) else "" for c in COLUMNS)
            # kept with an unmatched line: the three columns read, never the others (a shop's file
            # may carry the referred customer's name or e-mail; those are ignored, so not stored)
            raw = ",".join((code, date, value))[:1000]
            problems = []
            when = amount = None
            if not code:
                problems.append("no code")
            try:
                when = parse_date(date)
            except (ValueError, OverflowError):
                problems.append(f"date {date[:40]!r} is not a date like 2026-03-01")
            try:
                amount = _value(value)
            except ValueError:
                problems.append(f"value {value[:40]!r} is not a number like 25 or 25.50")
            if problems:  # known by the whole line (hashed), as before
                content = "bad\x1f" + ",".join(cells)[:1000]
            else:
                assert when is not None and amount is not None
                content = f"{code.casefold()}\x1f{when.isoformat()}\x1f{Decimal(value).normalize()}"
            seen[content] += 1
            out.append(ReferralLine(line=line, key=_key(content, str(seen[content])), code=code.casefold() or None,
                                    referred_at=when, value=amount if amount is None or math.isfinite(amount) else None,
                                    problem="; ".join(problems) or None, raw=raw))
    except csv.Error as exc:
        raise ReferralFileError(f"line {reader.line_num}: not readable as CSV ({exc})") from None
    if header is None:
        raise ReferralFileError("the file is empty: the first line must be a header naming code, date and value")
    return out


def import_referrals(store: Store, programmes: Mapping[str, ProgrammeSettings | None], data: bytes, *,
                     file_name: str, actor: str) -> ImportSummary:
    """Read a referral file and store its lines (``store.programme.import_referrals``); each
    matched referral takes its brand's configured currency."""
    lines = read_referrals(data)
    return store.programme.import_referrals(
        lines, file_name=file_name, file_hash=hashlib.sha256(data).hexdigest(), actor=actor,
        currency_of=lambda brand: (p.currency if (p := programmes.get(brand)) else None))


def summary_text(s: ImportSummary) -> str:
    """One line: what the import added."""
    again = f" (this file was imported before, on {s.same_file_at})" if s.same_file_at else ""
    return (f"import #{s.import_id}: {s.rows} line(s): {s.matched} new referral(s), {s.unmatched} unmatched, "
            f"{s.already} already imported" + (f", {s.rematched} matched now" if s.rematched else "") + again)


def status_label(status: str) -> str:
    return status.replace("_", " ")


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ProgrammeError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
    return status


def programmes_of(brands) -> dict[str, ProgrammeSettings | None]:
    """Brand name -> its programme settings (None: no ``programme:`` section)."""
    return {b.name: b.programme for b in brands}


def personal_link(store: Store, programme: ProgrammeSettings | None, author_id: int, brand: str,
                  actor: str) -> str:
    """The person's referral link for ``brand`` (their code is made the first time, status
    identified). Refused for a person marked do not contact, and for a brand without a
    programme URL."""
    if programme is None:
        raise ProgrammeError(f"{brand} has no programme section (programme: url: ...) in config.yaml")
    person = store.programme.person(author_id)
    current = store.programme.member(person, brand)
    if current and current["status"] == "do_not_contact":
        raise ProgrammeError(f"person {person} is marked do not contact for {brand}: no referral link is given out")
    member = current or store.programme.ensure(person, brand, actor)
    return referral_link(programme, member["code"])


def export_rows(store: Store, programmes: Mapping[str, ProgrammeSettings | None], *, brand: str | None = None,
                status: str | None = None) -> list[dict]:
    """The programme's members as rows of ``EXPORT_COLUMNS`` (the link left empty for a person
    marked do not contact or a brand without a programme URL)."""
    out = []
    for r in store.programme.listing(brand=brand, status=status, limit=1_000_000):
        p = programmes.get(r["brand"])
        link = referral_link(p, r["code"]) if p and r["status"] != "do_not_contact" else ""
        out.append({**r, "link": link, "currency": p.currency if p else "",
                    "reward_value": round(r["reward_value"], 2), "referral_value": round(r["referral_value"], 2)})
    return out
