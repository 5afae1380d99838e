"""Several workers on one database: their rows, leases and claims (``store.workers``).

A worker is one process (``monitor run``, or a one-off ``monitor classify``) known by
``store.worker``. What several workers must not do twice goes through here:

* a **lease** (``acquire(name)``): one holder at a time, e.g. ``collect:Acme:reddit`` or
  ``job:evaluate``; free when its holder releases it or when it expires;
* a **claim** of mentions to classify (``claim_mentions``) and of deliveries to send
  (``claim_deliveries``): each item goes to one worker; the worker's results are saved only
  for the items it still holds (``finish_mentions``), so an item taken over after its holder
  stalled past the lease is never saved twice.

Every expiry is the database's clock (``Store.database_now``: PostgreSQL's, so workers on
machines whose clocks disagree still agree on it). A live worker renews all it holds with its
heartbeat (``monitor.workers.Heartbeat``); what a worker killed with ``kill -9`` held is free
one lease later, and another worker takes it over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from monitor.store._sql import iso
from monitor.store.rows import PendingMention

if TYPE_CHECKING:
    from monitor.store import Store

CLASSIFY = "classify"  # the claim kind of a mention being classified
# a fixed key: on PostgreSQL, claims of mentions are taken one worker at a time (a transaction-level
# advisory lock, held for the few milliseconds of the claim), so that workers never pick the same rows
_CLAIM_LOCK = 0x6D6F6E69


class WorkerStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _expiry(self, ttl: timedelta) -> tuple[str, str]:
        now = self._store.database_now()
        return iso(now), iso(now + ttl)

    # ------------------------------------------------------------------ workers

    def register(self, worker: str, host: str, pid: int, config_hash: str, ttl: timedelta) -> None:
        now, until = self._expiry(ttl)
        with self._store.transaction():
            self._store.execute(
                "INSERT INTO workers (id, host, pid, config_hash, started_at, heartbeat_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, "
                "expires_at = excluded.expires_at, stopped_at = NULL",
                [worker, host, pid, config_hash, now, now, until])

    def heartbeat(self, worker: str, ttl: timedelta) -> int:
        """Renew the worker's row, its leases and its claims; returns how many it holds."""
        now, until = self._expiry(ttl)
        with self._store.transaction():
            self._store.execute("UPDATE workers SET heartbeat_at = ?, expires_at = ? WHERE id = ?",
                                [now, until, worker])
            # one that ran out but that no other worker took over (it still names this worker) is kept
            held = self._store.execute("UPDATE leases SET expires_at = ? WHERE holder = ?", [until, worker]).rowcount
            held += self._store.execute("UPDATE work_claims SET expires_at = ? WHERE holder = ?",
                                        [until, worker]).rowcount
            held += self._store.execute("UPDATE deliveries SET claim_until = ? WHERE claimed_by = ?",
                                        [until, worker]).rowcount
        return held

    def holders(self) -> list[str]:
        """Every worker name that holds a live lease or claim, or has a live row."""
        now = iso(self._store.database_now())
        rows = self._store.fetchall(
            "SELECT holder FROM leases WHERE expires_at > ? UNION SELECT holder FROM work_claims WHERE expires_at > ? "
            "UNION SELECT claimed_by FROM deliveries WHERE claimed_by IS NOT NULL AND claim_until > ? "
            "UNION SELECT id FROM workers WHERE expires_at > ?", [now, now, now, now])
        return sorted(r[0] for r in rows)

    def stop(self, worker: str) -> None:
        """A clean stop (or a dead worker's end): everything the worker holds is free at once."""
        now = iso(self._store.database_now())
        with self._store.transaction():
            self._store.execute("DELETE FROM leases WHERE holder = ?", [worker])
            self._store.execute("DELETE FROM work_claims WHERE holder = ?", [worker])
            self._store.execute("UPDATE deliveries SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?",
                                [worker])
            self._store.execute("UPDATE workers SET stopped_at = ?, expires_at = ? WHERE id = ?", [now, now, worker])

    def others_live(self, worker: str) -> bool:
        """Whether a worker other than ``worker`` has a fresh heartbeat."""
        return bool(self._store.scalar("SELECT 1 FROM workers WHERE id != ? AND expires_at > ? LIMIT 1",
                                       [worker, iso(self._store.database_now())]))

    def live(self) -> list[dict[str, Any]]:
        """Workers whose heartbeat has not expired, with what each holds: leases by name,
        mentions and deliveries claimed."""
        now = iso(self._store.database_now())
        return self._listing("WHERE w.expires_at > ?", [now], now)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest workers, live or not (``alive``), newest heartbeat first."""
        now = iso(self._store.database_now())
        return self._listing("", [], now, limit)

    def _listing(self, where: str, params: list[Any], now: str, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._store.query(
            "SELECT w.id, w.host, w.pid, w.config_hash, w.started_at, w.heartbeat_at, w.expires_at, w.stopped_at, "
            f"w.expires_at > ? AS alive FROM workers w {where} ORDER BY w.heartbeat_at DESC, w.id LIMIT ?",
            [now, *params, limit])
        for r in rows:
            r["alive"] = bool(r["alive"])
            r["leases"] = [x["name"] for x in self._store.query(
                "SELECT name FROM leases WHERE holder = ? AND expires_at > ? ORDER BY name", [r["id"], now])]
            r["claimed_mentions"] = self._store.count(
                "SELECT count(*) FROM work_claims WHERE holder = ? AND expires_at > ?", [r["id"], now])
            r["claimed_deliveries"] = self._store.count(
                "SELECT count(*) FROM deliveries WHERE claimed_by = ? AND claim_until > ?", [r["id"], now])
        return rows

    # ------------------------------------------------------------------ leases

    def acquire(self, name: str, worker: str, ttl: timedelta) -> bool:
        """Take (or keep) lease ``name``: True when ``worker`` holds it now."""
        now, until = self._expiry(ttl)
        with self._store.transaction():
            row = self._store.execute(
                "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = CASE WHEN "
                "leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, "
                "expires_at = excluded.expires_at WHERE leases.holder = excluded.holder OR leases.expires_at <= ? "
                "RETURNING holder",
                [name, worker, now, until, now]).fetchone()
        return row is not None

    def release(self, name: str, worker: str) -> None:
        with self._store.transaction():
            self._store.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [name, worker])

    def holder(self, name: str) -> str | None:
        """Who holds lease ``name`` now (None: free)."""
        return cast("str | None", self._store.scalar("SELECT holder FROM leases WHERE name = ? AND expires_at > ?",
                                                     [name, iso(self._store.database_now())]))

    # ------------------------------------------------------------------ mentions to classify

    def claim_mentions(self, model: str, worker: str, limit: int, ttl: timedelta) -> list[PendingMention]:
        """Claim up to ``limit`` mentions ``model`` has not classified and no live claim holds
        (in ``Store.unclassified``'s order: new mentions first), and return them."""
        now, until = self._expiry(ttl)
        with self._store.transaction():
            if self._store.postgres:
                self._store.execute("SELECT pg_advisory_xact_lock(?)", [_CLAIM_LOCK])
            # a claim left by a dead worker (expired) is taken over; a live one is never touched
            ids = [r[0] for r in self._store.execute(
                "INSERT INTO work_claims (kind, item_id, holder, expires_at) "
                "SELECT ?, m.id, ?, ? FROM mentions m "
                "WHERE NOT EXISTS (SELECT 1 FROM classifications c WHERE c.mention_id = m.id AND c.model = ?) "
                "AND NOT EXISTS (SELECT 1 FROM work_claims w WHERE w.kind = ? AND w.item_id = m.id "
                "AND w.expires_at > ?) "
                "ORDER BY EXISTS (SELECT 1 FROM classifications o WHERE o.mention_id = m.id), m.id LIMIT ? "
                "ON CONFLICT (kind, item_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE work_claims.expires_at <= ? RETURNING item_id",
                [CLASSIFY, worker, until, model, CLASSIFY, now, limit, now]).fetchall()]
        if not ids:
            return []
        return self._store.pending_mentions(ids)

    def finish_mentions(self, ids: Sequence[int], worker: str) -> set[int]:
        """Inside the transaction that saves their classifications: end ``worker``'s claims of
        ``ids`` and return those it still held (the others were taken over: not to be saved)."""
        held: set[int] = set()
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            marks = ", ".join("?" * len(part))
            held.update(r[0] for r in self._store.execute(
                f"DELETE FROM work_claims WHERE kind = ? AND holder = ? AND item_id IN ({marks}) RETURNING item_id",
                [CLASSIFY, worker, *part]).fetchall())
        return held

    def release_mentions(self, ids: Sequence[int], worker: str) -> None:
        """Give claims back unfinished (a stop between claiming and saving)."""
        with self._store.transaction():
            self.finish_mentions(ids, worker)

    # ------------------------------------------------------------------ deliveries

    def claim_deliveries(self, worker: str, limit: int, ttl: timedelta, channel: str | None = None) -> list[int]:
        """Claim up to ``limit`` pending deliveries whose time has come (``channel``'s only,
        when given), oldest first, that no live claim holds; returns their ids. Attempts a dead
        holder left 'started' are closed as interrupted."""
        now, until = self._expiry(ttl)
        due = iso(self._store.now())
        where, params = ("AND d.channel = ? ", [channel]) if channel is not None else ("", [])
        with self._store.transaction():
            ids = [r[0] for r in self._store.execute(
                "UPDATE deliveries SET claimed_by = ?, claim_until = ? WHERE id IN (SELECT d.id FROM deliveries d "
                "WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND (d.claim_until IS NULL OR "
                f"d.claim_until <= ?) {where}ORDER BY d.next_attempt_at, d.id LIMIT ?{self._store.skip_locked}) "
                "RETURNING id",
                [worker, until, due, now, *params, limit]).fetchall()]
            if ids:
                marks = ", ".join("?" * len(ids))
                self._store.execute(
                    "UPDATE delivery_attempts SET outcome = 'interrupted', finished_at = ? "
                    f"WHERE outcome = 'started' AND delivery_id IN ({marks})", [due, *ids])
        return sorted(ids)

    def renew_delivery(self, delivery_id: int, worker: str, ttl: timedelta) -> bool:
        """Whether ``worker`` still holds its claim of the pending delivery (then renewed for
        ``ttl`` from now): False once another worker took it over or it was sent meanwhile."""
        now, until = self._expiry(ttl)
        with self._store.transaction():
            row = self._store.execute(
                "UPDATE deliveries SET claim_until = ? WHERE id = ? AND claimed_by = ? AND claim_until > ? "
                "AND status = 'pending' RETURNING id", [until, delivery_id, worker, now]).fetchone()
        return row is not None

    def release_deliveries(self, ids: Sequence[int], worker: str) -> None:
        with self._store.transaction():
            for start in range(0, len(ids), 500):
                part = list(ids[start:start + 500])
                self._store.execute(
                    "UPDATE deliveries SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ? "
                    f"AND id IN ({', '.join('?' * len(part))})", [worker, *part])
