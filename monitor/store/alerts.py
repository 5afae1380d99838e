"""SQL for the alert side (``store.alerts``): classified mentions for rules, author history,
the noise-control ledger (cooldowns, held matches), alerts and their deliveries, delivery
attempts and status. Every write goes through the store's transaction: call them inside
an outer ``store.transaction()`` to commit them with what caused them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from monitor.records import Alert
from monitor.store._sql import iso, marks, parse_iso
from monitor.store.advocacy import ON_TOPIC
from monitor.store.rows import (
    AlertBrief,
    AlertDetail,
    AlertWait,
    AttemptRow,
    ClassifiedMention,
    DeliveryRow,
    DueDelivery,
    Hold,
)
from monitor.textutil import safe_optional, safe_text

if TYPE_CHECKING:
    from monitor.store import Store

_ROWS = (
    "SELECT m.id, m.brand, m.source, m.source_key, m.kind, m.title, m.text, m.url, m.created_at, m.collected_at, "
    "m.rating, m.lang, m.duplicate_of, m.author_id, a.handle AS author, a.reach, a.reach_kind, "
    "c.model, c.sentiment, c.sentiment_p, c.sentiment_probs, c.advocacy, c.advocacy_p, c.advocacy_probs, "
    "c.uncertain, c.status, c.lang AS detected_lang "
    "FROM mentions m LEFT JOIN authors a ON a.id = m.author_id "
    "JOIN classifications c ON c.id = (SELECT id FROM classifications WHERE mention_id = m.id "
    "ORDER BY created_at DESC, id DESC LIMIT 1) "
)


class AlertStore:
    """The alert side of a Store. It is the daemon's noise-control ``Ledger``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def now(self) -> datetime:
        return self._store.now()

    # ------------------------------------------------------------ mentions for rules

    def classified(self, *, since: datetime | None = None, until: datetime | None = None,
                   brands: Sequence[str] = (), ids: Sequence[int] = (), limit: int | None = None,
                   off_topic: bool = False) -> list[ClassifiedMention]:
        """Mentions with their latest classification and author, oldest first; off-topic ones
        (``monitor.relevance``) only with ``off_topic``: they never alert."""
        where: list[str] = ["1 = 1" if off_topic else ON_TOPIC]
        params: list[Any] = []
        if since:
            where.append("m.created_at >= ?")
            params.append(iso(since))
        if until:
            where.append("m.created_at <= ?")
            params.append(iso(until))
        if brands:
            where.append(f"m.brand IN ({marks(len(brands))})")
            params += list(brands)
        if ids:
            where.append(f"m.id IN ({marks(len(ids))})")
            params += list(ids)
        sql = _ROWS + f"WHERE {' AND '.join(where)} ORDER BY m.created_at, m.id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_decode(r) for r in self._store.query(sql, params)]

    def author_stances(self, author_id: int | None, before_mention_id: int) -> dict[str, int]:
        """Advocacy labels of an author's earlier classified mentions: {'promoter': 3, ...}."""
        if author_id is None:
            return {}
        rows = self._store.query(
            "SELECT c.advocacy, count(*) AS n FROM mentions m JOIN classifications c ON c.id = "
            "(SELECT id FROM classifications WHERE mention_id = m.id ORDER BY created_at DESC, id DESC LIMIT 1) "
            "WHERE m.author_id = ? AND m.id != ? AND m.id < ? AND c.status = 'ok' GROUP BY c.advocacy",
            [author_id, before_mention_id, before_mention_id],
        )
        return {r["advocacy"]: r["n"] for r in rows if r["advocacy"]}

    # ------------------------------------------------ matches waiting for an author's reach

    def reach_pending(self, author_ids: Sequence[int]) -> set[int]:
        """Those of these authors whose reach a source is still to look up."""
        ids = sorted(set(author_ids))
        found: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found |= {int(r["author_id"]) for r in self._store.query(
                f"SELECT author_id FROM reach_lookups WHERE author_id IN ({marks(len(chunk))})", chunk)}
        return found

    def wait(self, rule: str, mention_id: int, since: datetime, until: datetime) -> None:
        """Keep a match of ``rule`` waiting for its author's reach until ``until`` at most."""
        self._store.execute(
            "INSERT INTO alert_waits (rule, mention_id, since, until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (rule, mention_id) DO NOTHING", [rule, mention_id, iso(since), iso(until)])

    def waits_ready(self, now: datetime, limit: int = 500) -> list[AlertWait]:
        """Open waits to judge now: the author's reach is stored, or its lookup has ended
        without one (answered none, or gave up), or the wait is over; oldest first."""
        return cast("list[AlertWait]", self._store.query(
            "SELECT w.rule, w.mention_id, w.until, a.reach, "
            "EXISTS (SELECT 1 FROM reach_lookups q WHERE q.author_id = m.author_id) AS lookup_pending "
            "FROM alert_waits w JOIN mentions m ON m.id = w.mention_id LEFT JOIN authors a ON a.id = m.author_id "
            "WHERE w.resolved_at IS NULL AND (a.reach IS NOT NULL OR w.until <= ? OR NOT EXISTS "
            "(SELECT 1 FROM reach_lookups q WHERE q.author_id = m.author_id)) "
            "ORDER BY w.since, w.mention_id LIMIT ?", [iso(now), limit]))

    def resolve_wait(self, rule: str, mention_id: int, at: datetime, outcome: str) -> None:
        self._store.execute("UPDATE alert_waits SET resolved_at = ?, outcome = ? WHERE rule = ? AND mention_id = ?",
                            [iso(at), outcome, rule, mention_id])

    def wait_counts(self) -> dict[str, int]:
        """Waits by outcome ('waiting' for the open ones)."""
        rows = self._store.query("SELECT COALESCE(outcome, 'waiting') AS outcome, count(*) AS n FROM alert_waits "
                                 "GROUP BY 1")
        return {str(r["outcome"]): int(r["n"]) for r in rows}

    # ---------------------------------------------------------------------- alerts

    def insert(self, alerts: Sequence[Alert], channels_for: Mapping[str, Sequence[str]]) -> list[int]:
        """Queue alerts, one pending delivery per channel of their rule. An alert whose key
        is already stored is left as it is (its id is not returned)."""
        store = self._store
        now = iso(store.now())
        new_ids: list[int] = []
        with store.transaction():
            for a in alerts:
                cur = store.execute(
                    "INSERT INTO alerts (rule, key, severity, brand, title, body, mention_ids, data, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
                    [a.rule, a.key, a.severity, a.brand, safe_text(store.redact(a.title), 500),
                     safe_text(store.redact(a.body), 20_000), json.dumps(list(a.mention_ids)),
                     json.dumps(_redacted(a.data, store.redact), default=str), iso(a.created_at)],
                )
                row = cur.fetchone()
                if not row:
                    continue
                alert_id = int(row[0])
                new_ids.append(alert_id)
                for channel in channels_for.get(a.rule, []):
                    store.execute(
                        "INSERT INTO deliveries (alert_id, channel, status, next_attempt_at) "
                        "VALUES (?, ?, 'pending', ?) ON CONFLICT (alert_id, channel) DO NOTHING",
                        [alert_id, channel, now],
                    )
        return new_ids

    def exists(self, key: str) -> bool:
        """Is an alert with this key stored (queued or delivered)?"""
        return bool(self._store.query("SELECT 1 FROM alerts WHERE key = ?", [key]))

    def recent(self, brand: str | None = None, limit: int = 10) -> list[AlertBrief]:
        """The newest alerts, of one brand or of all; hand-off events (queued as alerts with a
        ``handoff:`` key, see ``monitor.handoff``) are for other tools, not people, and left out."""
        where, params = ("AND brand = ? ", [brand]) if brand else ("", [])
        return cast("list[AlertBrief]", self._store.query(
            "SELECT id, rule, severity, brand, title, created_at FROM alerts WHERE key NOT LIKE 'handoff:%' "
            f"{where}ORDER BY created_at DESC LIMIT ?", [*params, limit]))

    def get(self, alert_id: int) -> AlertDetail | None:
        """One alert, its ``mention_ids`` a list."""
        rows = self._store.query("SELECT id, rule, severity, brand, title, body, mention_ids, created_at, data "
                                 "FROM alerts WHERE id = ?", [alert_id])
        if not rows:
            return None
        row = rows[0]
        try:
            ids = json.loads(row["mention_ids"] or "[]")
        except ValueError:
            ids = []
        row["mention_ids"] = [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []
        try:
            data = json.loads(row.pop("data") or "{}")
        except ValueError:
            data = {}
        explanation = data.get("explanation") if isinstance(data, dict) else None
        row["explanation"] = explanation if isinstance(explanation, dict) else None
        return cast("AlertDetail", row)

    # ------------------------------------------------------------------ deliveries

    def due_deliveries(self, limit: int = 100, channel: str | None = None) -> list[DueDelivery]:
        """Pending deliveries whose time has come (``channel``'s only, when given), oldest first."""
        if channel is None:
            return cast("list[DueDelivery]", self._store.query(
                "SELECT d.id AS delivery_id, d.channel, d.attempts, a.* FROM deliveries d "
                "JOIN alerts a ON a.id = d.alert_id WHERE d.status = 'pending' AND d.next_attempt_at <= ? "
                "ORDER BY d.next_attempt_at, d.id LIMIT ?",
                [iso(self.now()), limit],
            ))
        return cast("list[DueDelivery]", self._store.query(
            "SELECT d.id AS delivery_id, d.channel, d.attempts, a.* FROM deliveries d "
            "JOIN alerts a ON a.id = d.alert_id WHERE d.status = 'pending' AND d.next_attempt_at <= ? "
            "AND d.channel = ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
            [iso(self.now()), channel, limit],
        ))

    def claimed(self, ids: Sequence[int]) -> list[DueDelivery]:
        """The deliveries ``ids`` (claimed with ``store.workers.claim_deliveries``), due order."""
        if not ids:
            return []
        return cast("list[DueDelivery]", self._store.query(
            "SELECT d.id AS delivery_id, d.channel, d.attempts, a.* FROM deliveries d "
            f"JOIN alerts a ON a.id = d.alert_id WHERE d.id IN ({', '.join('?' * len(ids))}) "
            "ORDER BY d.next_attempt_at, d.id", list(ids)))

    def due_channels(self) -> list[str]:
        """The channels that have a delivery whose time has come."""
        rows = self._store.query("SELECT DISTINCT channel FROM deliveries WHERE status = 'pending' "
                                 "AND next_attempt_at <= ? ORDER BY channel", [iso(self.now())])
        return [r["channel"] for r in rows]

    def mark_delivered(self, delivery_id: int) -> None:
        with self._store.transaction():
            self._store.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, delivered_at = ?, last_error = NULL, "
                "claimed_by = NULL, claim_until = NULL WHERE id = ? AND status = 'pending' "
                "AND (claimed_by IS NULL OR claimed_by = ?)",  # not one another worker took over
                [iso(self.now()), delivery_id, self._store.worker],
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """retry_at None: give up (dead letter)."""
        with self._store.transaction():
            self._store.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, status = ?, next_attempt_at = ?, "
                "claimed_by = NULL, claim_until = NULL WHERE id = ? AND status = 'pending' "
                "AND (claimed_by IS NULL OR claimed_by = ?)",  # a stale failure never undoes another's send
                [safe_text(self._store.redact(error), 1000), "pending" if retry_at else "dead",
                 iso(retry_at or self.now()), delivery_id, self._store.worker],
            )

    def postpone(self, delivery_id: int, until: datetime) -> None:
        """Move a delivery later without counting an attempt (quiet hours)."""
        with self._store.transaction():
            self._store.execute("UPDATE deliveries SET next_attempt_at = ?, claimed_by = NULL, claim_until = NULL "
                                "WHERE id = ? AND status = 'pending' AND (claimed_by IS NULL OR claimed_by = ?)",
                                [iso(until), delivery_id, self._store.worker])

    # ---------------------------------------------------------- noise state (ledger)

    def last_fired(self, rule: str, key: str) -> datetime | None:
        rows = self._store.query("SELECT last_fired_at FROM alert_state WHERE rule = ? AND key = ?", [rule, key])
        return parse_iso(rows[0]["last_fired_at"]) if rows else None

    def suppress(self, rule: str, key: str) -> None:
        with self._store.transaction():
            self._store.execute("UPDATE alert_state SET suppressed = suppressed + 1 WHERE rule = ? AND key = ?",
                                [rule, key])

    def fire(self, rule: str, key: str, at: datetime) -> int:
        """Record a firing; returns how many matches the cooldown had suppressed before it."""
        store = self._store
        with store.transaction():
            suppressed = store.scalar("SELECT suppressed FROM alert_state WHERE rule = ? AND key = ?", [rule, key])
            store.execute(
                "INSERT INTO alert_state (rule, key, last_fired_at, suppressed) VALUES (?, ?, ?, 0) "
                "ON CONFLICT (rule, key) DO UPDATE SET last_fired_at = excluded.last_fired_at, suppressed = 0",
                [rule, key, iso(at)],
            )
        return int(suppressed or 0)

    def fired_since(self, rule: str, since: datetime) -> int:
        """Immediate (per-mention) alerts of a rule since a time: the digest's first N."""
        return self._store.count(
            "SELECT count(*) FROM alerts WHERE rule = ? AND created_at >= ? AND key LIKE '%:mention:%'",
            [rule, iso(since)],
        )

    def hold(self, rule: str, kind: str, group_key: str, mention_id: int, at: datetime) -> None:
        with self._store.transaction():
            self._store.execute(
                "INSERT INTO alert_holds (rule, kind, group_key, mention_id, held_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (rule, mention_id) DO NOTHING",
                [rule, kind, group_key, mention_id, iso(at)],
            )

    def open_holds(self) -> list[Hold]:
        return cast("list[Hold]", self._store.query(
            "SELECT id, rule, kind, group_key, mention_id, held_at FROM alert_holds WHERE released_at IS NULL "
            "ORDER BY held_at, id"
        ))

    def release(self, hold_ids: Sequence[int], at: datetime) -> None:
        with self._store.transaction():
            self._store.executemany("UPDATE alert_holds SET released_at = ? WHERE id = ?",
                                    [[iso(at), hid] for hid in hold_ids])

    # ------------------------------------------------------------ delivery attempts

    def start_attempt(self, delivery_id: int, attempt: int) -> int:
        with self._store.transaction():
            cur = self._store.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempt, started_at) VALUES (?, ?, ?) RETURNING id",
                [delivery_id, attempt, iso(self.now())],
            )
            return int(cur.fetchone()[0])

    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None = None,
                       retry_at: datetime | None = None) -> None:
        with self._store.transaction():
            self._store.execute(
                "UPDATE delivery_attempts SET finished_at = ?, outcome = ?, error = ?, retry_at = ? WHERE id = ?",
                [iso(self.now()), outcome, safe_optional(None if error is None else self._store.redact(error), 1000),
                 iso(retry_at) if retry_at else None, attempt_id],
            )

    def mark_interrupted(self) -> int:
        """Attempts left 'started' by a process that died mid-send (their delivery stays pending),
        except those of a delivery a live worker holds: it may still be sending it."""
        with self._store.transaction():
            cur = self._store.execute(
                "UPDATE delivery_attempts SET outcome = 'interrupted', finished_at = ? WHERE outcome = 'started' "
                "AND delivery_id NOT IN (SELECT id FROM deliveries WHERE claimed_by IS NOT NULL AND claim_until > ?)",
                [iso(self.now()), iso(self._store.database_now())])
            return cur.rowcount

    def delivery_counts(self) -> dict[str, int]:
        rows = self._store.query("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        out = {"pending": 0, "sent": 0, "dead": 0}
        out.update({r["status"]: r["n"] for r in rows})
        out["failing"] = self._store.count(
            "SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempts > 0")
        return out

    def deliveries(self, status: str | None = None, limit: int = 20) -> list[DeliveryRow]:
        where, params = ("WHERE d.status = ?", [status]) if status else ("", [])
        return cast("list[DeliveryRow]", self._store.query(
            "SELECT d.id, d.channel, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at, "
            "a.rule, a.key, a.severity, a.title, a.created_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            f"{where} ORDER BY d.id DESC LIMIT ?",
            [*params, limit],
        ))

    def recent_attempts(self, limit: int = 20) -> list[AttemptRow]:
        return cast("list[AttemptRow]", self._store.query(
            "SELECT t.id, t.delivery_id, t.attempt, t.started_at, t.finished_at, t.outcome, t.error, t.retry_at, "
            "d.channel, a.rule, a.key FROM delivery_attempts t JOIN deliveries d ON d.id = t.delivery_id "
            "JOIN alerts a ON a.id = d.alert_id ORDER BY t.id DESC LIMIT ?",
            [limit],
        ))


def _decode(row: dict[str, Any]) -> ClassifiedMention:
    for col in ("sentiment_probs", "advocacy_probs"):
        row[col] = json.loads(row[col]) if row.get(col) else {}
    return cast("ClassifiedMention", row)


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (an alert's data) with every string in it redacted; numbers and keys as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    return value
