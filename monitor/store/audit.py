"""SQL of the audit log (``store.audit``): who changed what, when.

One source of truth per change: an inbox item's changes and notes are written once, to
``inbox_events`` (by ``store.inbox``, in the change's transaction: the item page shows them as
its history), and ``list`` reads them from there as actions ``inbox.<action>`` on target
``inbox_item``; every other change (users and roles, marks, corrections, author links, refused
inbox changes such as the loser of two people assigning at once, API tokens, the programme)
writes an ``audit_log`` row with ``record``, inside the transaction of the change it records,
so the change and its record land together or not at all.

``actor`` is a web user's name, ``cli:<os user>`` for the command line, or ``system`` (rules,
the scheduler). ``detail`` is short text or a small JSON object: never a password, token or
other secret (it also passes through the store's redaction of configured secrets).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from monitor.store._sql import iso
from monitor.store.rows import AuditEntry

if TYPE_CHECKING:
    from monitor.store import Store

DETAIL_MAX = 1000
ACTOR_MAX = 200
SYSTEM = "system"

# audit_log rows and inbox_events rows, in one shape
_ENTRIES = (
    "SELECT 'audit' AS kind, id, at, actor, action, target_type, target_id, detail FROM audit_log "
    "UNION ALL "
    "SELECT 'inbox' AS kind, e.id, e.at, COALESCE(e.actor, 'system'), 'inbox.' || e.action, 'inbox_item', "
    "CAST(e.item_id AS TEXT), NULLIF(trim(COALESCE(e.from_state || ' -> ' || e.to_state, '') "
    "|| COALESCE(' to ' || e.assignee, '') || COALESCE(': ' || e.detail, '')), '') FROM inbox_events e")


class AuditStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, actor: str | None, action: str, target_type: str | None = None,
               target_id: object = None, detail: str | Mapping[str, Any] | None = None) -> int:
        """One audit row, at the store's clock. Inside a ``store.transaction()`` it lands with the
        change it records (or not at all); outside, in its own. Returns its id."""
        if isinstance(detail, Mapping):
            detail = json.dumps(dict(detail), ensure_ascii=False, sort_keys=True, default=str)
        text = None if detail is None else self._store.redact(str(detail))[:DETAIL_MAX]
        store = self._store
        with store.transaction():
            cur = store.execute(
                "INSERT INTO audit_log (at, actor, action, target_type, target_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [iso(store.now()), (actor or SYSTEM)[:ACTOR_MAX], action[:100], target_type,
                 None if target_id is None else str(target_id)[:200], text])
            return int(cur.lastrowid or 0)

    def _where(self, actor: str | None, action: str | None, since: datetime | None, until: datetime | None,
               target_type: str | None, target_id: object) -> tuple[str, builtins.list[Any]]:
        where: builtins.list[str] = ["1 = 1"]
        params: builtins.list[Any] = []
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:  # a prefix: "inbox" or "inbox." matches inbox.assign
            where.append("substr(action, 1, ?) = ?")
            params += [len(action), action]
        if since:
            where.append("at >= ?")
            params.append(iso(since))
        if until:
            where.append("at < ?")
            params.append(iso(until))
        if target_type:
            where.append("target_type = ?")
            params.append(target_type)
        if target_id is not None:
            where.append("target_id = ?")
            params.append(str(target_id))
        return " AND ".join(where), params

    def list(self, *, actor: str | None = None, action: str | None = None, since: datetime | None = None,
             until: datetime | None = None, target_type: str | None = None, target_id: object = None,
             limit: int = 100, offset: int = 0) -> builtins.list[AuditEntry]:
        """Entries newest first: ``actor`` exactly, ``action`` a prefix (``inbox`` or ``user.role``),
        from ``since`` (inclusive) to ``until`` (exclusive); ``limit``/``offset`` page."""
        where, params = self._where(actor, action, since, until, target_type, target_id)
        return cast("builtins.list[AuditEntry]", self._store.query(
            f"SELECT * FROM ({_ENTRIES}) WHERE {where} ORDER BY at DESC, kind, id DESC LIMIT ? OFFSET ?",
            [*params, max(0, limit), max(0, offset)]))

    def count(self, *, actor: str | None = None, action: str | None = None, since: datetime | None = None,
              until: datetime | None = None, target_type: str | None = None, target_id: object = None) -> int:
        where, params = self._where(actor, action, since, until, target_type, target_id)
        return self._store.count(f"SELECT count(*) FROM ({_ENTRIES}) WHERE {where}", params)

    def actors(self) -> builtins.list[str]:
        """Everyone who appears in the log (for the audit page's filter)."""
        return [str(r["actor"]) for r in self._store.query(f"SELECT DISTINCT actor FROM ({_ENTRIES}) ORDER BY 1")]
