"""The alert engine: turns classified mentions and windowed rules into alerts in the
outbox, applying noise control. Alerts commit in the same transaction as the
classification (or the hold release) that caused them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial

from monitor.alerts import noise, windows
from monitor.alerts.rules import classification_of, mention_matches
from monitor.config import AlertRule, AlertSettings
from monitor.records import Alert, Classification
from monitor.store import Store
from monitor.store.rows import ClassifiedMention

logger = logging.getLogger(__name__)


class AlertEngine:
    def __init__(self, rules: Sequence[AlertRule], store: Store, *, channels_for: Mapping[str, Sequence[str]],
                 web_base_url: str | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.rules = list(rules)
        self.by_name = {r.name: r for r in self.rules}
        self.mention_rules = [r for r in self.rules if r.window is None]
        self.window_rules = [r for r in self.rules if r.window is not None]
        self.store = store
        self.db = store.alerts
        self.channels_for = channels_for
        self.web_base_url = web_base_url
        self.now = now or store.now

    @classmethod
    def from_settings(cls, alerts: AlertSettings, store: Store, now: Callable[[], datetime] | None = None
                      ) -> AlertEngine:
        return cls(alerts.rules, store, channels_for=alerts.channels_for(), web_base_url=alerts.web_base_url, now=now)

    def _emit(self, alert: Alert) -> int | None:
        ids = self.db.insert([alert], self.channels_for)
        if ids:
            logger.info("alert %s (%s) queued for %s", alert.key, alert.severity,
                        ", ".join(self.channels_for.get(alert.rule, [])) or "no channel")
        return ids[0] if ids else None

    def on_classified(self, mention_ids: Sequence[int]) -> int:
        """Per-mention rules over freshly classified mentions; call inside the transaction
        that stored the classifications. Returns the number of alerts queued."""
        if not self.mention_rules or not mention_ids:
            return 0
        now = self.now()
        queued = 0
        with self.store.transaction():
            for row in self.db.classified(ids=mention_ids):
                c = classification_of(row)
                for rule in self.mention_rules:
                    if not mention_matches(rule.when, row, c, partial(self._stances, row)):
                        continue
                    alert = noise.on_match(rule, row, c, self.db, now, web_base_url=self.web_base_url)
                    if alert is not None and self._emit(alert):
                        queued += 1
        return queued

    def tick(self) -> int:
        """Scheduled work: release due groups and digests, evaluate windowed rules."""
        now = self.now()
        queued = 0
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
            for alert in windows.evaluate(rule, rows, now, stances=self._stances, web_base_url=self.web_base_url):
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
