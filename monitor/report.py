"""The weekly per-brand report (``monitor report``, the daemon's ``report`` job, the
printable ``/report`` page): one ISO week of one brand, put together from the modules that
compute each figure, never derived again here:

* volume, sentiment, advocacy index with its interval and share of voice: ``monitor.share``
  over that week (the weekly aggregates the overview and the Compare page read);
* top themes and their change against the week before: ``monitor.topics``;
* top advocates and detractors with the reasons of their scores: ``advocates.reasons``,
  as the Advocates page explains them;
* the week's most notable mentions: the strongest stances (model probability, weighted by
  the author's reach).

A brand with too few mentions gets "not enough data" for each part that needs more. The
report is sent through the alert channels as an alert with the key ``report:<brand>:<week>``
(the alerts table's unique key): queued once per brand and week, whatever the restarts,
and delivered with the outbox's retries. The e-mail channel sends ``data["html"]`` as the
HTML part; chat channels the short text with a link to the page.

Every scraped text (mentions, author names, theme labels) reaches HTML only through the
autoescaped templates in ``monitor/web/templates`` and plain text only through
``topics.clean_label`` (no control or bidi characters).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from monitor import advocates, share, topics
from monitor.records import Alert

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.store import Store

RULE = "weekly-report"
MIN_SENTIMENT = 10  # classified mentions under which the sentiment mix says "not enough data"
NOTABLE_READ = 2_000  # mentions of the week read to pick the notable ones
TEMPLATES = Path(__file__).parent / "web" / "templates"
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_week(value: str) -> date:
    """'2026-W48' -> the Monday of that ISO week. ValueError for anything else."""
    m = _WEEK.match(value.strip())
    if not m:
        raise ValueError(f"{value[:40]!r} is not an ISO week (YYYY-Www, e.g. 2026-W48)")
    try:
        return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ValueError(f"{value[:40]!r}: no such ISO week") from None


def week_name(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def last_week(now: datetime) -> date:
    """The Monday of the last whole ISO week before ``now`` (UTC)."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday() + 7)


@dataclass(frozen=True)
class Notable:
    id: int
    created_at: str
    source: str
    author: str | None
    text: str
    url: str | None
    sentiment: str | None
    advocacy: str | None
    reach: int | None


@dataclass(frozen=True)
class Person:
    person_id: int
    handle: str
    source: str
    score: float
    reasons: tuple[dict[str, Any], ...]  # advocates.reasons, components that add points


@dataclass(frozen=True)
class WeeklyReport:
    brand: str
    week: str  # YYYY-Www
    start: datetime
    end: datetime
    voice: share.BrandShare | None  # this brand's row of the share of voice (None: brand unknown there)
    share_of_voice: share.ShareReport
    themes: topics.TopicsReport
    advocates: tuple[Person, ...] = ()
    detractors: tuple[Person, ...] = ()
    notable: tuple[Notable, ...] = ()
    min_sentiment: int = MIN_SENTIMENT
    link: str | None = None  # the printable page, when web_base_url is set
    notes: dict[str, str] = field(default_factory=dict)  # part -> "not enough data: ..."

    @property
    def mentions(self) -> int:
        return self.voice.mentions if self.voice else 0


def build(store: Store, settings: Settings, brand: str, monday: date, *, model: str | None = None,
          save_to: Store | None = None, top: int | None = None) -> WeeklyReport:
    """The report of ``brand`` for the ISO week starting ``monday``. ``model``: whose
    classifications and vectors to read (default: the vectors of the configured classifier
    where it kept some, the labels of the model the figures count, as advocates.refresh);
    ``save_to``: where themes are stored so that they keep their ids (None: not stored)."""
    from monitor.classify import current_model_name

    top = top or settings.report.top
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    end = start + timedelta(days=7)
    current = model or current_model_name(settings.classifier, settings.base_dir)
    vectors_model = topics.pick_model(store, brand, current)
    own = [b.name for b in settings.brands]
    names = own + [b for b in store.advocacy.brands_in_data() if b not in own]
    if brand not in names:
        names.append(brand)

    def themes_of(name: str) -> topics.TopicsReport | None:  # the other brands' themes are not shown
        return brand_themes if name == brand else None

    brand_themes = topics.find_themes(store, brand, since=start, until=end, model=vectors_model, save_to=save_to)
    sov = share.share_of_voice(store, names, settings.advocates, since=start, until=end,
                               rivals=share.competitors(settings.brands), themes=themes_of)
    voice = next((b for b in sov.brands if b.brand == brand), None)
    notes: dict[str, str] = {}
    mentions = voice.mentions if voice else 0
    if mentions == 0:
        notes["volume"] = f"not enough data: no mentions of {brand} in {week_name(monday)}"
    if voice is None or voice.classified < MIN_SENTIMENT:
        n = voice.classified if voice else 0
        notes["sentiment"] = (f"not enough data: {n} classified mention(s) this week (the sentiment mix needs "
                              f"at least {MIN_SENTIMENT})")
    if voice is None or voice.index.get("value") is None:
        n = voice.index.get("n", 0) if voice else 0
        notes["index"] = (f"not enough data: {n} social mention(s) with a stance this week (the index needs at "
                          f"least {settings.advocates.index_min_sample})")
    if not brand_themes.themes:
        notes["themes"] = brand_themes.note or "not enough data"
    if sov.total == 0 or mentions == 0:
        notes["share"] = sov.note or f"not enough data: no mentions of {brand} this week"
    people = {kind: _people(store, settings, brand, kind, top) for kind in ("advocate", "detractor")}
    for kind, found in people.items():
        if not found:
            notes[kind] = f"none yet: no {kind} of {brand} scored"
    # the labels the figures count (as advocates.refresh reads them), not necessarily the vectors' model
    labels_model = (model or settings.advocates.model or store.advocacy.get_state("model")
                    or store.advocacy.newest_model())
    notable = _notable(store, brand, labels_model, start, end, top)
    if not notable:
        notes["notable"] = f"not enough data: no mentions of {brand} in {week_name(monday)}"
    base = settings.alerts.web_base_url
    link = (str(base).rstrip("/") + "/report?" + urlencode({"brand": brand, "week": week_name(monday)})
            if base else None)
    return WeeklyReport(brand=brand, week=week_name(monday), start=start, end=end, voice=voice, share_of_voice=sov,
                        themes=brand_themes, advocates=people["advocate"], detractors=people["detractor"],
                        notable=notable, link=link, notes=notes)


def _people(store: Store, settings: Settings, brand: str, kind: str, top: int) -> tuple[Person, ...]:
    rows = store.advocacy.list_authors(kind=kind, brand=brand, limit=top)
    out = []
    for r in rows:
        row: Any = r
        reasons = tuple(c for c in advocates.reasons(row, kind, settings.advocates) if c["points"] > 0)
        score = row["advocate_score"] if kind == "advocate" else row["detractor_score"]
        out.append(Person(person_id=int(row["person_id"]), handle=str(row.get("handle") or ""),
                          source=str(row.get("source") or ""), score=float(score or 0.0), reasons=reasons))
    return tuple(out)


def _notable(store: Store, brand: str, model: str | None, start: datetime, end: datetime, top: int
             ) -> tuple[Notable, ...]:
    """The mentions of the week with the strongest stance or sentiment, weighted by reach."""
    from monitor.store import iso

    rows = store.advocacy.search_mentions(model, brand=brand, since=iso(start),
                                          until=iso(end - timedelta(microseconds=1)), limit=NOTABLE_READ)
    reach = store.advocacy.authors_info([r["author_id"] for r in rows if r["author_id"] is not None])

    def weight(r: Any) -> float:
        stance = (r["advocacy_p"] or 0.0) if r["advocacy"] in ("promoter", "detractor") else 0.0
        tone = (r["sentiment_p"] or 0.0) if r["sentiment"] in ("positive", "negative") else 0.0
        info: Any = reach.get(r["author_id"] or 0) or {}
        return max(stance, tone) * (1.0 + math.log10(1 + (info.get("reach") or 0)))

    picked = sorted(rows, key=lambda r: (-weight(r), r["id"]))[:top]
    out = []
    for r in picked:
        info: Any = reach.get(r["author_id"] or 0) or {}
        out.append(Notable(id=r["id"], created_at=r["created_at"], source=r["source"], author=r["author"],
                           text=(r["title"] + "\n" if r["title"] else "") + (r["text"] or ""), url=r["url"],
                           sentiment=r["sentiment"], advocacy=r["advocacy"], reach=info.get("reach")))
    return tuple(out)


# ----------------------------------------------------------------------------- rendering


def _env() -> Any:
    import jinja2

    from monitor.web.security import safe_href

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["href"] = safe_href
    env.filters["clean"] = topics.clean_label
    env.filters["num"] = lambda v: "-" if v is None else f"{int(v):,}"
    env.filters["share_pct"] = lambda v: "-" if v is None else f"{v * 100:.0f}%"
    return env


def render_html(report: WeeklyReport) -> str:
    """The report as one HTML document with its styles inline (the e-mail)."""
    return str(_env().get_template("report_email.html").render(r=report, one_day=timedelta(days=1), with_link=True))


def index_text(index: dict[str, Any]) -> str:
    """'+23.5 [+12.0, +34.1] n=120' (the interval of advocates.nps)."""
    if index.get("value") is None:
        return f"n={index.get('n', 0)}, under {index.get('min_sample')}"
    return f"{index['value']:+.1f} [{index['low']:+.1f}, {index['high']:+.1f}] n={index['n']}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def render_text(report: WeeklyReport) -> str:
    """The report as plain text (``--format text``): scraped text through clean_label."""
    c = topics.clean_label
    r, notes = report, report.notes
    lines = [f"Weekly report: {c(r.brand)}, {r.week} ({r.start:%Y-%m-%d} to {r.end - timedelta(days=1):%Y-%m-%d})"]
    v = r.voice
    lines.append(f"Volume: {notes['volume']}" if "volume" in notes else f"Volume: {r.mentions} mention(s)")
    if "sentiment" in notes or v is None or v.sentiment is None:
        lines.append(f"Sentiment: {notes.get('sentiment', 'not enough data')}")
    else:
        lines.append("Sentiment: " + ", ".join(f"{k} {_pct(v.sentiment[k])}" for k in share.SENTIMENTS)
                     + f" of {v.classified} classified")
    lines.append(f"Advocacy index: {notes['index']}" if "index" in notes or v is None
                 else f"Advocacy index: {index_text(v.index)}")
    if "share" in notes or v is None:
        lines.append(f"Share of voice: {notes.get('share', 'not enough data')}")
    else:
        others = ", ".join(f"{c(b.brand, 40)} {_pct(b.share)}" for b in r.share_of_voice.brands if b.brand != r.brand)
        lines.append(f"Share of voice: {_pct(v.share)}" + (f" (others: {others})" if others else ""))
    lines.append("Top themes:" if r.themes.themes else f"Top themes: {notes.get('themes')}")
    for t in r.themes.themes[:5]:
        change = "new" if t.change is None else f"{t.change * 100:+.0f}%"
        lines.append(f"  - {c(t.label)}: {t.size} mention(s), {change} against the week before")
    for kind, people in (("advocate", r.advocates), ("detractor", r.detractors)):
        lines.append(f"Top {kind}s:" if people else f"Top {kind}s: {notes.get(kind)}")
        for p in people:
            why = "; ".join(f"{x['name']} {x['fact']} (+{x['points']})" for x in p.reasons)
            lines.append(f"  - {c(p.handle, 60)} ({c(p.source, 30)}) {p.score:.0f}: {why}")
    lines.append("Notable mentions:" if r.notable else f"Notable mentions: {notes.get('notable')}")
    for m in r.notable:
        lines.append(f"  - [{m.created_at[:10]}] {c(m.author or '?', 40)} on {c(m.source, 30)}: {c(m.text, 200)}")
    if r.link:
        lines.append(f"Printable report: {r.link}")
    return "\n".join(lines)


def summary(report: WeeklyReport) -> str:
    """The short text for chat channels: the headline figures and the link."""
    c = topics.clean_label
    v = report.voice
    parts = [f"{report.mentions} mention(s)"]
    if v is not None and "index" not in report.notes:
        parts.append(f"advocacy index {index_text(v.index)}")
    if v is not None and "share" not in report.notes:
        parts.append(f"share of voice {_pct(v.share)}")
    if report.themes.themes:
        parts.append("top theme: " + c(report.themes.themes[0].label, 60))
    text = f"Weekly report {c(report.brand)} {report.week}: " + "; ".join(parts) + "."
    return text + (f"\n{report.link}" if report.link else "")


# ----------------------------------------------------------------------------- sending


def alert_of(report: WeeklyReport, now: datetime) -> Alert:
    """The report as an alert: its key makes it once per brand and week."""
    return Alert(rule=RULE, key=f"report:{report.brand}:{report.week}", severity="info",
                 title=f"Weekly report {report.brand} {report.week}", body=summary(report), brand=report.brand,
                 created_at=now, data={"html": render_html(report), "week": report.week, "link": report.link})


def queue(store: Store, report: WeeklyReport, channels: Sequence[str], now: datetime) -> bool:
    """Queue the report for ``channels``; False when it was queued (or sent) before."""
    return bool(store.alerts.insert([alert_of(report, now)], {RULE: list(channels)}))


def report_brands(settings: Settings) -> list[str]:
    """The brands the scheduled report covers: ``report.brands``, else every own brand."""
    return list(settings.report.brands) or [b.name for b in settings.brands if not getattr(b, "competitor", False)]


def send_due(store: Store, settings: Settings, now: datetime, *, save_to: Store | None = None) -> int:
    """The daemon's job: queue last week's report of each brand not queued yet; the number
    queued. A restart (or a second run) finds the stored key and queues nothing. Before this
    week's send time (``report.day`` and ``hour`` in its time zone) it is the week before."""
    from zoneinfo import ZoneInfo

    monday = last_week(now)
    rep = settings.report
    send_day = monday + timedelta(days=7 + DAYS.index(rep.day))
    due = datetime(send_day.year, send_day.month, send_day.day, rep.hour, tzinfo=ZoneInfo(rep.timezone))
    if now < due:
        monday -= timedelta(days=7)
    queued = 0
    for brand in report_brands(settings):
        if store.alerts.exists(f"report:{brand}:{week_name(monday)}"):
            continue
        report = build(store, settings, brand, monday, save_to=save_to)
        queued += queue(store, report, settings.report.channels, now)
    return queued
