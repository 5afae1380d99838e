"""The response desk around ``store.inbox``: where to reply on each platform, reply drafts
from the configured templates, SLA breaches as ``sla_breach`` alerts, and the
response-speed figures (median first-response time, share within SLA, per brand and week).

Nothing here posts anything: a draft is text a person edits and sends on the platform.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from string import Formatter
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.handoff import Handoff
from monitor.records import Alert
from monitor.settings_inbox import InboxSettings, ReplyTemplate
from monitor.store import Store
from monitor.store._sql import parse_iso
from monitor.store.inbox import InboxError
from monitor.store.rows import InboxItem, ResponseTime

SLA_RULE = "sla_breach"


# ------------------------------------------------------------------------ entering


def route_to_inbox(store: Store, settings: InboxSettings, mention_id: int, priority: str, *, rule: str | None = None,
                   by: str | None = None, now: datetime | None = None) -> int | None:
    """Put a mention in the inbox with its priority's SLA; None when it is there already."""
    return store.inbox.enter(mention_id, priority, settings.sla_for(priority), rule=rule, by=by, now=now)


def change(store: Store, item_id: int, action: str, actor: str | None, *, handoff: Handoff | None = None,
           version: int | None = None, assignee: str | None = None, reason: str | None = None) -> InboxItem:
    """``store.inbox.change`` with the hand-off's ``inbox.assigned`` event queued in the same
    transaction as an assignment. A refused change raises as ``store.inbox.change`` does; what
    it records of the refusal (the audit log) is committed, nothing else is."""
    refused: InboxError | None = None
    with store.transaction():
        try:
            item = store.inbox.change(item_id, action, actor, version=version, assignee=assignee, reason=reason)
        except InboxError as exc:  # its own savepoint is rolled back; keep the rest
            refused = exc
        else:
            if action == "assign" and handoff is not None:
                handoff.inbox_assigned(store, item, actor, store.now())
    if refused is not None:
        raise refused
    return item


# ------------------------------------------------------------------- reply target


@dataclass(frozen=True)
class ReplyTarget:
    url: str | None
    label: str  # what opens: "the Hacker News item", "App Store Connect"...
    hint: str = ""  # what to do there when the link cannot point at the review itself


def _https(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("https", "http") and parts.netloc else None


def reply_target(source: str, url: str | None, native_id: str, extra: Mapping[str, Any] | None = None) -> ReplyTarget:
    """Where a person replies to a mention: derived from its source type and URL."""
    extra = extra or {}
    link = _https(url)
    if source == "hackernews":
        item = native_id if native_id.isdigit() else None
        return ReplyTarget(f"https://news.ycombinator.com/item?id={item}" if item else link,
                           "the Hacker News item (reply below it)")
    if source == "appstore":
        app = str(extra.get("app_id") or "")
        return ReplyTarget(f"https://appstoreconnect.apple.com/apps/{quote(app, safe='')}/appstore" if app.isdigit()
                           else "https://appstoreconnect.apple.com/", "App Store Connect",
                           "Ratings and Reviews: find the review and choose Reply (a review has no link of its own)")
    if source == "googleplay":
        app = str(extra.get("app_id") or "")
        return ReplyTarget("https://play.google.com/console/", "Google Play Console",
                           f"Ratings and reviews of {app or 'the app'}: find review {native_id} and reply")
    labels = {"reddit": "the Reddit permalink", "bluesky": "the Bluesky post", "mastodon": "the Mastodon status",
              "github": "the GitHub issue", "stackexchange": "the Stack Exchange post", "feeds": "the article",
              "youtube": "the YouTube comment", "lemmy": "the Lemmy post", "discourse": "the forum post"}
    if link:
        hint = "open it from your own instance to reply (search for the link)" if source in ("mastodon", "lemmy") \
            else ""
        return ReplyTarget(link, labels.get(source, "the original post"), hint)
    return ReplyTarget(None, "no link", "this mention has no link to reply on")


def item_reply_target(item: InboxItem) -> ReplyTarget:
    try:
        extra = json.loads(item["extra"]) if item["extra"] else {}
    except ValueError:
        extra = {}
    return reply_target(item["source"], item["url"], item["native_id"], extra if isinstance(extra, dict) else {})


# --------------------------------------------------------------------- drafts


def history_phrase(stances: Mapping[str, int], stance: str | None) -> str:
    """The author's history in words: 'returning promoter', 'returning detractor',
    'returning author' or 'first mention'."""
    total = sum(stances.values())
    if not total:
        return "first mention"
    for label in ("promoter", "detractor"):
        if stances.get(label, 0) / total >= 0.5:
            return f"returning {label}"
    return "returning author"


def draft_variables(item: InboxItem, stances: Mapping[str, int]) -> dict[str, str]:
    """Every template variable for one item (settings_inbox.TEMPLATE_VARIABLES)."""
    stance = item["advocacy"] if item["advocacy"] in ("promoter", "detractor") else "passive"
    return {"author": item["author"] or "there", "brand": item["brand"], "source": item["source"],
            "stance": stance, "history": history_phrase(stances, item["advocacy"]),
            "earlier_mentions": str(sum(stances.values())), "earlier_promoter": str(stances.get("promoter", 0)),
            "earlier_detractor": str(stances.get("detractor", 0))}


def render(text: str, variables: Mapping[str, str]) -> str:
    """A template with its variables filled in (checked when the config was read: each names a
    known variable, no attribute, index or format)."""
    out = []
    for literal, name, _spec, _conv in Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(variables.get(name, ""))
    return "".join(out)


def choose_template(templates: Sequence[ReplyTemplate], item: InboxItem, returning: bool,
                    name: str | None = None) -> ReplyTemplate | None:
    """The template named ``name``, else the first whose stance, brands and returning fit."""
    if name:
        found = next((t for t in templates if t.name == name), None)
        if found is not None:
            return found
    for t in templates:
        if t.stance and item["advocacy"] not in t.stance:
            continue
        if t.brands and item["brand"] not in t.brands:
            continue
        if t.returning is not None and t.returning != returning:
            continue
        return t
    return None


@dataclass(frozen=True)
class Draft:
    template: str | None
    text: str
    variables: dict[str, str] = field(default_factory=dict)


def draft_for(store: Store, settings: InboxSettings, item: InboxItem, name: str | None = None) -> Draft:
    stances = store.alerts.author_stances(item["author_id"], item["mention_id"])
    variables = draft_variables(item, stances)
    template = choose_template(settings.templates, item, returning=sum(stances.values()) > 0, name=name)
    if template is None:
        return Draft(None, "", variables)
    return Draft(template.name, render(template.text, variables), variables)


# ------------------------------------------------------------------------ SLA


def overdue_by(item: Mapping[str, Any], now: datetime) -> timedelta | None:
    """How long an unanswered open item is past its due time (None: not overdue)."""
    if item["first_response_at"] or item["state"] not in ("new", "assigned"):
        return None
    late = now - parse_iso(item["due_at"])
    return late if late > timedelta(0) else None


def human(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def breach_alert(item: InboxItem, now: datetime, severity: str, web_base_url: str | None) -> Alert:
    late = overdue_by(item, now) or timedelta(0)
    web = f"{web_base_url}/inbox/{item['id']}" if web_base_url else None
    who = item["assignee"] or "nobody"
    waited = human(now - parse_iso(item["entered_at"]))
    body = "\n".join(x for x in [
        f"Inbox item {item['id']} ({item['priority']}) has had no response for {waited}"
        f" since it entered the inbox: {human(late)} past its SLA.",
        f"Assigned to {who}; {item['author'] or 'unknown author'} on {item['source']}.",
        (item["text"] or "")[:300], f"source: {item['url']}" if item["url"] else "", f"monitor: {web}" if web else "",
    ] if x)
    return Alert(rule=SLA_RULE, key=f"{SLA_RULE}:{item['id']}", severity=severity,
                 title=f"[{item['brand']}] SLA breached: {item['priority']} inbox item {item['id']} unanswered",
                 body=body, brand=item["brand"], mention_ids=(item["mention_id"],), created_at=now,
                 data={"kind": SLA_RULE, "item_id": item["id"], "priority": item["priority"],
                       "assignee": item["assignee"], "due_at": item["due_at"], "web_url": web, "url": item["url"]})


def check_sla(store: Store, settings: InboxSettings, channels: Sequence[str], now: datetime, *,
              web_base_url: str | None = None, handoff: Handoff | None = None) -> int:
    """One ``sla_breach`` alert per overdue item (once per item, committed with the record
    that it was sent, and with the hand-off's ``inbox.sla_breached`` event). Returns the
    number of alerts queued."""
    queued = 0
    for item in store.inbox.overdue(now):
        with store.transaction():
            if store.inbox.breach_alerted(item["id"], now):
                queued += bool(store.alerts.insert([breach_alert(item, now, settings.severity, web_base_url)],
                                                   {SLA_RULE: list(channels)}))
                if handoff is not None:
                    handoff.sla_breached(store, item, now)
    return queued


def sla_channels(settings: Any) -> list[str]:
    """``inbox.channels``, or every configured alert channel when empty."""
    return list(settings.inbox.channels) or list(settings.alerts.channels)


# ------------------------------------------------------------------ speed figures


@dataclass(frozen=True)
class WeekSpeed:
    brand: str
    week: str  # the Monday of the week items entered the inbox
    items: int
    responded: int
    median_from_mention: timedelta | None
    median_from_entry: timedelta | None
    within_sla: float | None  # of the items decided (responded, or overdue without a response)
    decided: int


def _monday(at: datetime) -> str:
    return (at - timedelta(days=at.weekday())).date().isoformat()


def response_stats(rows: Sequence[ResponseTime], now: datetime) -> list[WeekSpeed]:
    """Per brand and week of entry: the median first-response time (from the mention's time
    and from its entry into the inbox) and the share answered within SLA, of the items whose
    outcome is known (answered, or past due without an answer; one still inside its SLA is not
    counted yet)."""
    groups: dict[tuple[str, str], list[ResponseTime]] = {}
    for r in rows:
        groups.setdefault((r["brand"], _monday(parse_iso(r["entered_at"]))), []).append(r)
    return [_speed(brand, week, items, now) for (brand, week), items in sorted(groups.items())]


def overall_speed(rows: Sequence[ResponseTime], now: datetime) -> WeekSpeed | None:
    """The same figures over every row at once (brand and week empty); None without rows."""
    return _speed("", "", rows, now) if rows else None


def _speed(brand: str, week: str, items: Sequence[ResponseTime], now: datetime) -> WeekSpeed:
    from_mention: list[float] = []
    from_entry: list[float] = []
    decided = within = 0
    for r in items:
        due = parse_iso(r["due_at"])
        if r["first_response_at"]:
            at = parse_iso(r["first_response_at"])
            from_mention.append((at - parse_iso(r["mention_at"])).total_seconds())
            from_entry.append((at - parse_iso(r["entered_at"])).total_seconds())
            decided += 1
            within += at <= due
        elif due <= now:
            decided += 1
    return WeekSpeed(brand, week, len(items), len(from_entry),
                     timedelta(seconds=statistics.median(from_mention)) if from_mention else None,
                     timedelta(seconds=statistics.median(from_entry)) if from_entry else None,
                     within / decided if decided else None, decided)


def overview_speed(reader: Store, brand: str | None, weeks: int, now: datetime) -> dict[str, Any]:
    """The overview's response-speed card: per week (and in all) the median first-response
    time from the mention and from its entry into the inbox, and the share within SLA."""
    since = now - timedelta(weeks=weeks)
    rows = reader.inbox.response_times(brand=brand, since=since)
    weeks_out = response_stats(rows, now)
    return {"weeks": [{"brand": w.brand, "week": w.week, "items": w.items, "responded": w.responded,
                       "from_mention": human(w.median_from_mention) if w.median_from_mention else None,
                       "from_entry": human(w.median_from_entry) if w.median_from_entry else None,
                       "within": None if w.within_sla is None else round(100 * w.within_sla), "decided": w.decided}
                      for w in reversed(weeks_out)],
            "total": overall_speed(rows, now), "human": human}
