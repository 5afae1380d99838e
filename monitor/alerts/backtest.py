"""Replay the alert rules over stored history with the same matching and noise control
as the daemon (a memory ledger, the clock stepped through time): how often would each
rule have fired, per day? Nothing is written and nothing is sent. The windowed alerts that
would have fired can be kept (``explained``) to show why each fired (``alerts.explain``)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from functools import partial

from monitor.alerts import explain, noise, windows
from monitor.alerts.rules import classification_of, mention_matches, rule_key
from monitor.config import AlertSettings
from monitor.records import Alert
from monitor.store import Store
from monitor.store.rows import ClassifiedMention


def _prior_stances(rows: list[ClassifiedMention]) -> dict[int, dict[str, int]]:
    """mention id -> its author's advocacy labels over earlier mentions."""
    seen: dict[int, Counter[str]] = defaultdict(Counter)
    out: dict[int, dict[str, int]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        aid = r["author_id"]
        if aid is None:
            out[r["id"]] = {}
            continue
        out[r["id"]] = dict(seen[aid])
        advocacy = r["advocacy"]
        if (r["status"] or "ok") == "ok" and advocacy:
            seen[aid][advocacy] += 1
    return out


def replay(alerts: AlertSettings, store: Store, since: datetime, until: datetime, step: timedelta,
           explained: list[Alert] | None = None) -> dict[str, Counter[str]]:
    """rule name -> Counter of fires by day (YYYY-MM-DD, UTC). ``explained``: a list the
    windowed alerts that fire are appended to, each with its explanation."""
    rules = list(alerts.rules)
    by_name = {r.name: r for r in rules}
    mention_rules = [r for r in rules if r.window is None]
    window_rules = [r for r in rules if r.window is not None]
    lb = max((windows.lookback(r) for r in window_rules), default=timedelta(0))
    rows = store.alerts.classified(since=since - lb, until=until)
    times = [windows._at(r) for r in rows]
    prior = _prior_stances(rows)
    by_id = {r["id"]: r for r in rows}

    def stances(r: ClassifiedMention) -> dict[str, int]:
        return prior.get(r["id"], {})

    fired: dict[str, Counter[str]] = {r.name: Counter() for r in rules}
    ledger = noise.MemoryLedger()
    seen_keys: set[str] = set()

    def count(rule_name: str, at: datetime) -> None:
        fired[rule_name][at.date().isoformat()] += 1

    def tick(t: datetime) -> None:
        for rule, _kind, _gkey, holds in noise.due_batches(by_name, ledger.open_holds(), t):
            if rule is not None:
                count(rule.name, t)
                for h in holds:
                    m = by_id.get(h["mention_id"])
                    if m is not None:
                        ledger.fire(rule.name, rule_key(rule.cooldown_by, rule.name, m), t)
            ledger.release([h["id"] for h in holds], t)
        for rule in window_rules:
            lo = bisect_right(times, t - windows.lookback(rule))
            hi = bisect_right(times, t)
            for alert in windows.evaluate(rule, rows[lo:hi], t, stances=stances, web_base_url=alerts.web_base_url,
                                          themes=partial(explain.theme_growth, store)):
                key = "|".join(f"{p}={alert.brand or ''}" if p == "brand" else f"{p}={rule.name}"
                               for p in rule.cooldown_by if p in ("brand", "rule")) or alert.key
                if alert.key in seen_keys or noise.in_cooldown(rule, key, ledger, t):
                    continue
                seen_keys.add(alert.key)
                ledger.fire(rule.name, key, t)
                count(rule.name, t)
                if explained is not None:
                    explained.append(alert)

    next_tick = since + step
    start = bisect_left(times, since)
    for row, at in zip(rows[start:], times[start:], strict=True):
        while next_tick <= at:
            tick(next_tick)
            next_tick += step
        c = classification_of(row)
        for rule in mention_rules:
            if not mention_matches(rule.when, row, c, partial(stances, row)):
                continue
            if noise.on_match(rule, row, c, ledger, at) is not None:
                ledger.note_immediate(rule.name, at)
                count(rule.name, at)
    while next_tick <= until:
        tick(next_tick)
        next_tick += step
    return fired
