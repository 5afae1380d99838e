"""Queries for the alert engine and the outbox: classified mentions for rules, author
history, cooldown state, held matches, delivery attempts and status."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from monitor.store import Store, iso
from monitor.textutil import safe_optional

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
    """The alert side of a Store; every write goes through the Store's transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def now(self) -> datetime:
        return self.store.now()

    # ---------------------------------------------------------------- mentions for rules

    def classified(self, *, since: datetime | None = None, until: datetime | None = None,
                   brands: Sequence[str] = (), ids: Sequence[int] = (), limit: int | None = None) -> list[dict]:
        """Mentions with their latest classification and author, oldest first."""
        where, params = ["1 = 1"], []
        if since:
            where.append("m.created_at >= ?")
            params.append(iso(since))
        if until:
            where.append("m.created_at <= ?")
            params.append(iso(until))
        if brands:
            where.append(f"m.brand IN ({','.join('?' * len(brands))})")
            params += list(brands)
        if ids:
            where.append(f"m.id IN ({','.join('?' * len(ids))})")
            params += list(ids)
        sql = _ROWS + f"WHERE {' AND '.join(where)} ORDER BY m.created_at, m.id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_decode(r) for r in self.store.query(sql, params)]

    def author_stances(self, author_id: int | None, before_mention_id: int) -> dict[str, int]:
        """Advocacy labels of an author's earlier classified mentions: {'promoter': 3, ...}."""
        if author_id is None:
            return {}
        rows = self.store.query(
            "SELECT c.advocacy, count(*) AS n FROM mentions m JOIN classifications c ON c.id = "
            "(SELECT id FROM classifications WHERE mention_id = m.id ORDER BY created_at DESC, id DESC LIMIT 1) "
            "WHERE m.author_id = ? AND m.id != ? AND m.id < ? AND c.status = 'ok' GROUP BY c.advocacy",
            [author_id, before_mention_id, before_mention_id],
        )
        return {r["advocacy"]: r["n"] for r in rows if r["advocacy"]}

    # ---------------------------------------------------------------- noise state (ledger)

    def last_fired(self, rule: str, key: str) -> datetime | None:
        rows = self.store.query("SELECT last_fired_at FROM alert_state WHERE rule = ? AND key = ?", [rule, key])
        return datetime.fromisoformat(rows[0]["last_fired_at"]) if rows else None

    def suppress(self, rule: str, key: str) -> None:
        with self.store.transaction():
            self.store.conn.execute("UPDATE alert_state SET suppressed = suppressed + 1 WHERE rule = ? AND key = ?",
                                    [rule, key])

    def fire(self, rule: str, key: str, at: datetime) -> int:
        """Record a firing; returns how many matches the cooldown had suppressed before it."""
        with self.store.transaction():
            row = self.store.conn.execute("SELECT suppressed FROM alert_state WHERE rule = ? AND key = ?",
                                          [rule, key]).fetchone()
            self.store.conn.execute(
                "INSERT INTO alert_state (rule, key, last_fired_at, suppressed) VALUES (?, ?, ?, 0) "
                "ON CONFLICT (rule, key) DO UPDATE SET last_fired_at = excluded.last_fired_at, suppressed = 0",
                [rule, key, iso(at)],
            )
        return row[0] if row else 0

    def fired_since(self, rule: str, since: datetime) -> int:
        """Immediate (per-mention) alerts of a rule since a time: the digest's first N."""
        return self.store.query(
            "SELECT count(*) AS n FROM alerts WHERE rule = ? AND created_at >= ? AND key LIKE '%:mention:%'",
            [rule, iso(since)],
        )[0]["n"]

    def hold(self, rule: str, kind: str, group_key: str, mention_id: int, at: datetime) -> None:
        with self.store.transaction():
            self.store.conn.execute(
                "INSERT INTO alert_holds (rule, kind, group_key, mention_id, held_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (rule, mention_id) DO NOTHING",
                [rule, kind, group_key, mention_id, iso(at)],
            )

    def open_holds(self) -> list[dict]:
        return self.store.query(
            "SELECT id, rule, kind, group_key, mention_id, held_at FROM alert_holds WHERE released_at IS NULL "
            "ORDER BY held_at, id"
        )

    def release(self, hold_ids: Sequence[int], at: datetime) -> None:
        with self.store.transaction():
            for hid in hold_ids:
                self.store.conn.execute("UPDATE alert_holds SET released_at = ? WHERE id = ?", [iso(at), hid])

    # ---------------------------------------------------------------- delivery attempts

    def start_attempt(self, delivery_id: int, attempt: int) -> int:
        with self.store.transaction():
            cur = self.store.conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempt, started_at) VALUES (?, ?, ?) RETURNING id",
                [delivery_id, attempt, iso(self.now())],
            )
            return cur.fetchone()[0]

    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None = None,
                       retry_at: datetime | None = None) -> None:
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE delivery_attempts SET finished_at = ?, outcome = ?, error = ?, retry_at = ? WHERE id = ?",
                [iso(self.now()), outcome, safe_optional(error, 1000), iso(retry_at) if retry_at else None, attempt_id],
            )

    def mark_interrupted(self) -> int:
        """Attempts left 'started' by a process that died mid-send (their delivery stays pending)."""
        with self.store.transaction():
            cur = self.store.conn.execute(
                "UPDATE delivery_attempts SET outcome = 'interrupted', finished_at = ? WHERE outcome = 'started'",
                [iso(self.now())])
            return cur.rowcount

    def postpone(self, delivery_id: int, until: datetime) -> None:
        """Move a delivery later without counting an attempt (quiet hours)."""
        with self.store.transaction():
            self.store.conn.execute("UPDATE deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'",
                                    [iso(until), delivery_id])

    def delivery_counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        out = {"pending": 0, "sent": 0, "dead": 0}
        out.update({r["status"]: r["n"] for r in rows})
        out["failing"] = self.store.query(
            "SELECT count(*) AS n FROM deliveries WHERE status = 'pending' AND attempts > 0")[0]["n"]
        return out

    def deliveries(self, status: str | None = None, limit: int = 20) -> list[dict]:
        where, params = ("WHERE d.status = ?", [status]) if status else ("", [])
        return self.store.query(
            "SELECT d.id, d.channel, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at, "
            f"a.rule, a.key, a.severity, a.title, a.created_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id {where} "
            "ORDER BY d.id DESC LIMIT ?",
            [*params, limit],
        )

    def recent_attempts(self, limit: int = 20) -> list[dict]:
        return self.store.query(
            "SELECT t.id, t.delivery_id, t.attempt, t.started_at, t.finished_at, t.outcome, t.error, t.retry_at, "
            "d.channel, a.rule, a.key FROM delivery_attempts t JOIN deliveries d ON d.id = t.delivery_id "
            "JOIN alerts a ON a.id = d.alert_id ORDER BY t.id DESC LIMIT ?",
            [limit],
        )


def _decode(row: dict) -> dict:
    for col in ("sentiment_probs", "advocacy_probs"):
        row[col] = json.loads(row[col]) if row.get(col) else {}
    return row
