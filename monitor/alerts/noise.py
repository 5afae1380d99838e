"""Noise control: cooldown per rule and key, grouping of bursts, digests. The decisions
are pure over a ``Ledger`` (SQLite in the daemon, memory in a backtest) and a clock value."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.alerts.rules import batch_alert, mention_alert, rule_key
from monitor.records import Alert, Classification
from monitor.settings_alerts import AlertRule
from monitor.store.rows import ClassifiedMention, Hold

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Ledger(Protocol):
    def last_fired(self, rule: str, key: str) -> datetime | None: ...
    def suppress(self, rule: str, key: str) -> None: ...
    def fire(self, rule: str, key: str, at: datetime) -> int: ...  # returns the suppressed count, reset
    def fired_since(self, rule: str, since: datetime) -> int: ...  # immediate per-mention alerts
    def hold(self, rule: str, kind: str, group_key: str, mention_id: int, at: datetime) -> None: ...
    def open_holds(self) -> list[Hold]: ...
    def release(self, hold_ids: Sequence[int], at: datetime) -> None: ...


def period_start(at: datetime, every: timedelta) -> datetime:
    """The start of the ``every``-long period holding ``at`` (periods aligned to the epoch, UTC)."""
    n = (at - EPOCH) // every
    return EPOCH + n * every


def human(td: timedelta) -> str:
    """'90m' -> '1h30m', '7 days' -> '7d'."""
    secs = int(td.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            parts.append(f"{secs // size}{unit}")
            secs %= size
    return "".join(parts[:2]) or "0s"


def in_cooldown(rule: AlertRule, key: str, ledger: Ledger, now: datetime) -> bool:
    if not rule.cooldown:
        return False
    last = ledger.last_fired(rule.name, key)
    return last is not None and now - last < rule.cooldown


def fire_now(rule: AlertRule, m: ClassifiedMention, ledger: Ledger, now: datetime) -> int | None:
    """A per-mention rule matched: does it alert now? Returns the count of matches its cooldown
    held back before (the firing is recorded), or None when the match is held for a group or
    digest, or suppressed by the cooldown."""
    key = rule_key(rule.cooldown_by, rule.name, m)
    if in_cooldown(rule, key, ledger, now):
        ledger.suppress(rule.name, key)
        return None
    if rule.group:
        ledger.hold(rule.name, "group", rule_key(rule.group.by, rule.name, m), m["id"], now)
        return None
    if rule.digest:
        start = period_start(now, rule.digest.every)
        if ledger.fired_since(rule.name, start) >= rule.digest.immediate:
            ledger.hold(rule.name, "digest", start.isoformat(timespec="seconds"), m["id"], now)
            return None
    return ledger.fire(rule.name, key, now)


def on_match(rule: AlertRule, m: ClassifiedMention, c: Classification, ledger: Ledger, now: datetime, *,
             web_base_url: str | None = None) -> Alert | None:
    """A per-mention rule matched: alert now, hold for a group or digest, or suppress."""
    suppressed = fire_now(rule, m, ledger, now)
    if suppressed is None:
        return None
    return replace(mention_alert(rule, m, c, web_base_url=web_base_url, suppressed=suppressed), created_at=now)


Batch = tuple[AlertRule | None, str, str, list[Hold]]


def due_batches(rules: Mapping[str, AlertRule], holds: Sequence[Hold], now: datetime) -> list[Batch]:
    """Held matches whose group wait or digest period is over: [(rule, kind, group_key, holds)].
    Holds of rules no longer configured come back with rule None (to be released)."""
    by_group: dict[tuple[str, str, str], list[Hold]] = defaultdict(list)
    for h in holds:
        by_group[(h["rule"], h["kind"], h["group_key"])].append(h)
    out: list[Batch] = []
    for (name, kind, gkey), items in by_group.items():
        rule = rules.get(name)
        first = min(_dt(h["held_at"]) for h in items)
        if rule is None or (kind == "group" and not rule.group) or (kind == "digest" and not rule.digest):
            out.append((None, kind, gkey, items))
            continue
        group_due = kind == "group" and rule.group is not None and now - first >= rule.group.wait
        digest_due = kind == "digest" and rule.digest is not None and now >= _dt(gkey) + rule.digest.every
        if group_due or digest_due:
            out.append((rule, kind, gkey, items))
    return out


Loader = Callable[[list[int]], list[tuple[ClassifiedMention, Classification]]]


def batch_for(rule: AlertRule, kind: str, gkey: str, holds: Sequence[Hold], load: Loader,
              ledger: Ledger, now: datetime, *, web_base_url: str | None = None) -> Alert | None:
    items = load([h["mention_id"] for h in holds])
    if not items:
        return None
    first_id = min(h["mention_id"] for h in holds)
    if kind == "group" and rule.group:
        key = f"{rule.name}:group:{gkey}:{first_id}"
        what = f"{len(items)} related mention(s) within {human(rule.group.wait)}"
        examples = rule.group.examples
    elif kind == "digest" and rule.digest:
        key = f"{rule.name}:digest:{gkey}"
        what = f"Digest: {len(items)} more mention(s) since {gkey}"
        examples = rule.digest.examples
    else:  # the rule no longer groups or digests: due_batches hands such holds over for release
        return None
    for m, _ in items:
        ledger.fire(rule.name, rule_key(rule.cooldown_by, rule.name, m), now)
    alert = batch_alert(rule, kind, key, items, examples=examples, web_base_url=web_base_url, what=what)
    return replace(alert, created_at=now)


def _dt(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class MemoryLedger:
    """A Ledger in memory, for backtests and tests."""

    def __init__(self) -> None:
        self.fired: dict[tuple[str, str], datetime] = {}
        self.suppressed: dict[tuple[str, str], int] = defaultdict(int)
        self.immediate: dict[str, list[datetime]] = defaultdict(list)
        self.holds: list[Hold] = []
        self._next = 1

    def last_fired(self, rule: str, key: str) -> datetime | None:
        return self.fired.get((rule, key))

    def suppress(self, rule: str, key: str) -> None:
        self.suppressed[(rule, key)] += 1

    def fire(self, rule: str, key: str, at: datetime) -> int:
        self.fired[(rule, key)] = at
        return self.suppressed.pop((rule, key), 0)

    def note_immediate(self, rule: str, at: datetime) -> None:
        self.immediate[rule].append(at)

    def fired_since(self, rule: str, since: datetime) -> int:
        return sum(1 for t in self.immediate[rule] if t >= since)

    def hold(self, rule: str, kind: str, group_key: str, mention_id: int, at: datetime) -> None:
        if any(h["rule"] == rule and h["mention_id"] == mention_id for h in self.holds):
            return
        self.holds.append({"id": self._next, "rule": rule, "kind": kind, "group_key": group_key,
                           "mention_id": mention_id, "held_at": at.isoformat()})
        self._next += 1

    def open_holds(self) -> list[Hold]:
        return list(self.holds)

    def release(self, hold_ids: Sequence[int], at: datetime) -> None:
        ids = set(hold_ids)
        self.holds = [h for h in self.holds if h["id"] not in ids]
