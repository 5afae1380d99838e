"""The alert engine: turns classified mentions and windowed rules into alerts in the
outbox, applying noise control. Alerts commit in the same transaction as the
classification (or the hold release, or the wait's end) that caused them.

A rule with ``min_reach`` needs the author's reach, which sources often look up only
after the page is stored (pipeline.collect queues the lookup with the page). A mention
that meets every other condition while its author's lookup is still queued waits
(``alert_waits``, committed with its classification) and is judged again by
``settle_waits`` once the reach is stored, the lookup has ended without one, or
``reach_wait`` is over, whichever comes first: then on what is known, a reach still
unknown counting as below the threshold, and the outcome is stored on the wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from monitor.alerts import explain, noise, windows
from monitor.alerts.rules import classification_of, mention_alerts, mention_matches, waits_for_reach
from monitor.config import AlertRule, AlertSettings, HandoffSettings, InboxSettings
from monitor.handoff import Handoff
from monitor.inbox import check_sla, route_to_inbox
from monitor.records import Alert, Classification
from monitor.store import Store
from monitor.store.rows import AlertWait, ClassifiedMention

logger = logging.getLogger(__name__)

REACH_WAIT = timedelta(hours=1)  # the default of alerts.reach_wait
IDS_MAX = 500  # mention ids a query at most (SQLite before 3.32 allows 999 parameters)


class AlertEngine:
    def __init__(self, rules: Sequence[AlertRule], store: Store, *, channels_for: Mapping[str, Sequence[str]],
                 web_base_url: str | None = None, now: Callable[[], datetime] | None = None,
                 reach_wait: timedelta = REACH_WAIT, inbox: InboxSettings | None = None,
                 sla_channels: Sequence[str] = (), handoff: Handoff | None = None) -> None:
        """``inbox``: the response desk's settings (rules with ``route: inbox`` add items with
        their SLA, ``tick`` alerts on breaches through ``sla_channels``); default: its defaults.
        ``handoff``: queues ``inbox.sla_breached`` events with the breach alerts."""
        self.rules = list(rules)
        self.by_name = {r.name: r for r in self.rules}
        self.mention_rules = [r for r in self.rules if r.window is None]
        self.window_rules = [r for r in self.rules if r.window is not None]
        self.store = store
        self.db = store.alerts
        self.channels_for = channels_for
        self.web_base_url = web_base_url
        self.now = now or store.now
        self.reach_wait = reach_wait
        self.reach_rules = any(r.when.min_reach for r in self.mention_rules)
        self.inbox = inbox or InboxSettings()
        self.sla_channels = list(sla_channels)
        self.handoff = handoff

    @classmethod
    def from_settings(cls, alerts: AlertSettings, store: Store, now: Callable[[], datetime] | None = None,
                      inbox: InboxSettings | None = None, handoff: HandoffSettings | None = None) -> AlertEngine:
        return cls(alerts.rules, store, channels_for=alerts.channels_for(), web_base_url=alerts.web_base_url, now=now,
                   reach_wait=alerts.reach_wait, inbox=inbox,
                   sla_channels=(inbox.channels if inbox and inbox.channels else list(alerts.channels)),
                   handoff=Handoff(handoff, alerts.web_base_url) if handoff is not None else None)

    def _route(self, rule: AlertRule, row: ClassifiedMention, now: datetime) -> int | None:
        """A rule matched ``row``: an inbox item where the rule routes there; for its channels,
        the suppressed count when it fires now (noise.fire_now), else None."""
        if "inbox" in rule.route and route_to_inbox(self.store, self.inbox, row["id"], rule.priority,
                                                    rule=rule.name, now=now):
            logger.info("mention %d entered the inbox (rule %s, %s)", row["id"], rule.name, rule.priority)
        if "channels" not in rule.route:
            return None
        return noise.fire_now(rule, row, self.db, now)

    def _emit(self, alert: Alert, channels: Sequence[str] | None = None) -> int | None:
        """Queue an alert for ``channels`` (default: its rule's)."""
        if channels is None:
            channels = self.channels_for.get(alert.rule, [])
        ids = self.db.insert([alert], {alert.rule: list(channels)})
        if ids:
            logger.info("alert %s (%s) queued for %s", alert.key, alert.severity, ", ".join(channels) or "no channel")
        return ids[0] if ids else None

    def _emit_fired(self, row: ClassifiedMention, c: Classification, fired: list[tuple[AlertRule, int]],
                    now: datetime) -> int:
        """The rules that fired on one mention: one alert per channel however many matched
        (rules.mention_alerts). Returns the number of alerts queued."""
        queued = 0
        for alert, channels in mention_alerts(fired, row, c, self.channels_for, web_base_url=self.web_base_url):
            queued += self._emit(replace(alert, created_at=now), channels) is not None
        return queued

    def on_classified(self, mention_ids: Sequence[int]) -> int:
        """Per-mention rules over freshly classified mentions; call inside the transaction
        that stored the classifications. Returns the number of alerts queued."""
        if not self.mention_rules or not mention_ids:
            return 0
        now = self.now()
        queued = 0
        with self.store.transaction():
            rows = self.db.classified(ids=mention_ids)
            awaited = self.db.reach_pending([r["author_id"] for r in rows if r["author_id"] is not None
                                             and r["reach"] is None]) if self.reach_rules else set()
            for row in rows:
                c = classification_of(row)
                fired: list[tuple[AlertRule, int]] = []
                for rule in self.mention_rules:
                    stances = partial(self._stances, row)
                    if row["author_id"] in awaited and waits_for_reach(rule.when, row):
                        if mention_matches(rule.when, row, c, stances, assume_reach=True):
                            self.db.wait(rule.name, row["id"], now, now + self.reach_wait)
                        continue
                    if not mention_matches(rule.when, row, c, stances):
                        continue
                    suppressed = self._route(rule, row, now)
                    if suppressed is not None:
                        fired.append((rule, suppressed))
                queued += self._emit_fired(row, c, fired, now)
        return queued

    def settle_waits(self) -> int:
        """Judge the matches that waited for their author's reach and are ready (see the
        module's docstring); each commits with its alert. Returns the number of alerts queued."""
        queued = 0
        while True:
            now = self.now()
            ready = self.db.waits_ready(now, limit=IDS_MAX)
            if not ready:
                return queued
            rows = {r["id"]: r for r in self.db.classified(ids=sorted({w["mention_id"] for w in ready}))}
            by_mention: dict[int, list[AlertWait]] = {}
            for wait in ready:
                by_mention.setdefault(wait["mention_id"], []).append(wait)
            for mention_id, waits in by_mention.items():  # the rules a mention waited for: one alert per channel
                row = rows.get(mention_id)
                with self.store.transaction():
                    fired: list[tuple[AlertRule, int]] = []
                    for wait in waits:
                        outcome, rule, suppressed = self._judge_waiting(wait, row, now)
                        self.db.resolve_wait(wait["rule"], mention_id, now, outcome)
                        if rule is not None and suppressed is not None:
                            fired.append((rule, suppressed))
                    if row is not None:
                        queued += self._emit_fired(row, classification_of(row), fired, now)

    def _judge_waiting(self, wait: AlertWait, row: ClassifiedMention | None, now: datetime
                       ) -> tuple[str, AlertRule | None, int | None]:
        """(outcome, the rule, its suppressed count when it fires now: see noise.fire_now)."""
        rule = self.by_name.get(wait["rule"])
        if rule is None or rule.window is not None or row is None:
            return "rule changed", None, None
        if row["reach"] is None:
            why = "its lookup is still queued" if wait["lookup_pending"] else "no lookup gave one"
            logger.info("rule %s: mention %d judged without its author's reach (%s)", rule.name, row["id"], why)
        c = classification_of(row)
        if not mention_matches(rule.when, row, c, partial(self._stances, row)):
            return ("no match" if row["reach"] is not None else "reach unknown"), None, None
        return "matched", rule, self._route(rule, row, now)

    def tick(self) -> int:
        """Scheduled work: release due groups and digests, evaluate windowed rules, alert on
        inbox items past their SLA (monitor.inbox.check_sla)."""
        now = self.now()
        queued = check_sla(self.store, self.inbox, self.sla_channels, now, web_base_url=self.web_base_url,
                           handoff=self.handoff)
        for rule, kind, gkey, holds in noise.due_batches(self.by_name, self.db.open_holds(), now):
            with self.store.transaction():
                if rule is not None:
                    alert = noise.batch_for(rule, kind, gkey, holds, self._load, self.db, now,
                                            web_base_url=self.web_base_url)
                    if alert is not None and self._emit(alert):
                        queued += 1
                else:
                    logger.info("releasing %d held match(es) of removed rule %s", len(holds), holds[0]["rule"])
                self.db.release([h["id"] for h in holds], now)
        for rule in self.window_rules:
            rows = self.db.classified(since=now - windows.lookback(rule), until=now, brands=rule.when.brands)
            for alert in windows.evaluate(rule, rows, now, stances=self._stances, web_base_url=self.web_base_url,
                                          themes=partial(explain.theme_growth, self.store)):
                queued += self._emit_windowed(rule, alert, now)
        return queued

    def _emit_windowed(self, rule: AlertRule, alert: Alert, now: datetime) -> int:
        key = "|".join(f"{p}={alert.brand or ''}" if p == "brand" else f"{p}={rule.name}"
                       for p in rule.cooldown_by if p in ("brand", "rule")) or alert.key
        with self.store.transaction():
            if noise.in_cooldown(rule, key, self.db, now):
                return 0
            if self.db.exists(alert.key):
                return 0
            self.db.fire(rule.name, key, now)
            return 1 if self._emit(alert) else 0

    def _stances(self, row: ClassifiedMention) -> dict[str, int]:
        return self.db.author_stances(row["author_id"], row["id"])

    def _load(self, ids: list[int]) -> list[tuple[ClassifiedMention, Classification]]:
        return [(r, classification_of(r)) for r in self.db.classified(ids=ids)]
