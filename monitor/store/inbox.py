"""SQL of the response desk (``store.inbox``): items, their notes and their audit trail.

An item moves new -> assigned -> responded -> closed, or to dismissed (with a reason) from
any open state; a closed or dismissed item can be re-opened. Every change is one conditional
UPDATE (on the states it may leave, and on the version the person saw when they give it), so
of two people changing an item at once the second is told what happened instead of silently
overwriting it; every change writes an ``inbox_events`` row (who, when, from, to) in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from monitor.errors import MonitorError
from monitor.store._sql import add_filters, iso
from monitor.store.rows import InboxEvent, InboxItem, InboxNote, ResponseTime

if TYPE_CHECKING:
    from monitor.store import Store

STATES = ("new", "assigned", "responded", "closed", "dismissed")
OPEN_STATES = ("new", "assigned", "responded")
VIEWS = {"open": ("new", "assigned"), "responded": ("responded",), "closed": ("closed",),
         "dismissed": ("dismissed",), "all": STATES}
# action -> the states it may leave
ACTIONS: dict[str, tuple[str, ...]] = {
    "assign": ("new", "assigned", "responded"),
    "unassign": ("assigned",),
    "respond": ("new", "assigned"),
    "close": OPEN_STATES,
    "dismiss": OPEN_STATES,
    "reopen": ("closed", "dismissed"),
}
PRIORITY_ORDER = "CASE i.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"
NOTE_MAX = 4000
REASON_MAX = 500


class InboxError(MonitorError):
    """An inbox change that cannot be made: no such item or user, a state the action does not
    leave (closing a dismissed item), a dismissal without a reason."""


class InboxConflictError(InboxError):
    """The item changed since the person saw it (another person assigned or closed it first):
    nothing was changed; the message says what the item is now and who changed it."""


_SELECT = (
    "SELECT i.*, m.source, m.kind, m.title, m.text, m.url, m.native_id, m.extra, m.rating, m.author_id, "
    "a.handle AS author, a.reach, c.advocacy, c.sentiment, "
    "(SELECT u.disabled FROM users u WHERE u.username = i.assignee) AS assignee_disabled, "
    "(SELECT count(*) FROM inbox_notes n WHERE n.item_id = i.id) AS notes "
    "FROM inbox_items i JOIN mentions m ON m.id = i.mention_id LEFT JOIN authors a ON a.id = m.author_id "
    "LEFT JOIN classifications c ON c.id = (SELECT id FROM classifications WHERE mention_id = m.id "
    "ORDER BY created_at DESC, id DESC LIMIT 1) ")


class InboxStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> datetime:
        return self._store.now()

    # --------------------------------------------------------------------- entering

    def enter(self, mention_id: int, priority: str, sla: timedelta, *, rule: str | None = None,
              by: str | None = None, now: datetime | None = None) -> int | None:
        """Put a mention in the inbox (due ``sla`` after now). Returns the new item's id, or None
        when the mention is already there (in any state: a rule never re-opens what a person
        closed) or is gone."""
        store = self._store
        at = now or self._now()
        with store.transaction():
            row = store.execute("SELECT brand, created_at FROM mentions WHERE id = ?", [mention_id]).fetchone()
            if row is None:
                return None
            cur = store.execute(
                "INSERT INTO inbox_items (mention_id, brand, priority, rule, entered_at, entered_by, mention_at, "
                "due_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mention_id) DO NOTHING "
                "RETURNING id",
                [mention_id, row[0], priority, rule, iso(at), by, row[1], iso(at + sla), iso(at)])
            got = cur.fetchone()
            if got is None:
                return None
            item_id = int(got[0])
            self._event(item_id, at, by, "entered", None, "new", None,
                        f"rule {rule}, priority {priority}" if rule else f"by hand, priority {priority}")
            return item_id

    def item_for_mention(self, mention_id: int) -> int | None:
        return cast("int | None", self._store.scalar("SELECT id FROM inbox_items WHERE mention_id = ?", [mention_id]))

    # ---------------------------------------------------------------------- reading

    def get(self, item_id: int) -> InboxItem | None:
        rows = self._store.query(_SELECT + "WHERE i.id = ?", [item_id])
        return cast("InboxItem", rows[0]) if rows else None

    def items(self, *, states: Sequence[str] = VIEWS["open"], brand: str | None = None,
              assignee: str | None = None, priority: str | None = None, limit: int = 200,
              offset: int = 0) -> list[InboxItem]:
        """Items in these states, most urgent first (priority, then the earliest due)."""
        where = [f"i.state IN ({','.join('?' * len(states))})"] if states else ["1 = 1"]
        params: list[Any] = list(states)
        add_filters(where, params, ("i.brand = ?", brand), ("i.priority = ?", priority))
        if assignee == "-":
            where.append("i.assignee IS NULL")
        else:
            add_filters(where, params, ("i.assignee = ?", assignee))
        params += [limit, offset]
        return cast("list[InboxItem]", self._store.query(
            _SELECT + f"WHERE {' AND '.join(where)} ORDER BY {PRIORITY_ORDER}, i.due_at, i.id LIMIT ? OFFSET ?",
            params))

    def counts(self, brand: str | None = None) -> dict[str, int]:
        """Items per state (every state, 0 where none)."""
        where, params = (["brand = ?"], [brand]) if brand else (["1 = 1"], [])
        rows = self._store.query(f"SELECT state, count(*) AS n FROM inbox_items WHERE {where[0]} GROUP BY state",
                                 params)
        return {s: 0 for s in STATES} | {r["state"]: int(r["n"]) for r in rows}

    def notes(self, item_id: int) -> list[InboxNote]:
        return cast("list[InboxNote]", self._store.query(
            "SELECT * FROM inbox_notes WHERE item_id = ? ORDER BY id", [item_id]))

    def events(self, item_id: int) -> list[InboxEvent]:
        return cast("list[InboxEvent]", self._store.query(
            "SELECT * FROM inbox_events WHERE item_id = ? ORDER BY id", [item_id]))

    def assignable(self) -> list[str]:
        """The enabled members' and admins' names: who an item may be assigned to (a viewer
        may not change items, so cannot work one)."""
        return [str(r["username"]) for r in self._store.query(
            "SELECT username FROM users WHERE disabled = 0 AND role != 'viewer' ORDER BY username")]

    # --------------------------------------------------------------------- changing

    def change(self, item_id: int, action: str, actor: str | None, *, version: int | None = None,
               assignee: str | None = None, reason: str | None = None) -> InboxItem:
        """One change of an item (``ACTIONS``), made only if the item is in a state the action
        leaves and, with ``version``, unchanged since the person saw it. Returns the item after.
        Raises InboxConflictError (changed meanwhile: the refused attempt is kept in the audit
        log, ``inbox.conflict``, beside the change that won) or InboxError (not possible)."""
        try:
            return self._change(item_id, action, actor, version=version, assignee=assignee, reason=reason)
        except InboxConflictError as exc:
            self._store.audit.record(actor, "inbox.conflict", "inbox_item", item_id,
                                     {"action": action, "assignee": assignee, "refused": str(exc)})
            raise

    def _change(self, item_id: int, action: str, actor: str | None, *, version: int | None = None,
                assignee: str | None = None, reason: str | None = None) -> InboxItem:
        if action not in ACTIONS:
            raise InboxError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        store = self._store
        at = iso(self._now())
        with store.transaction():
            sets: list[str] = ["updated_at = ?", "version = version + 1"]
            params: list[Any] = [at]
            if action == "assign":
                if not assignee:
                    raise InboxError("assign to whom? name a user")
                role = store.scalar("SELECT role FROM users WHERE username = ? AND disabled = 0", [assignee])
                if role is None:
                    raise InboxError(f"no enabled user {assignee!r} to assign to (monitor users list)")
                if role == "viewer":
                    raise InboxError(f"{assignee!r} is a viewer and cannot work inbox items: assign a member "
                                     "or an admin (or give them the member role)")
                sets += ["assignee = ?", "state = CASE state WHEN 'new' THEN 'assigned' ELSE state END"]
                params.append(assignee)
            elif action == "unassign":
                sets += ["assignee = NULL", "state = 'new'"]
            elif action == "respond":
                sets += ["state = 'responded'", "first_response_at = COALESCE(first_response_at, ?)",
                         "responded_by = COALESCE(responded_by, ?)"]
                params += [at, actor]
            elif action == "close":
                sets += ["state = 'closed'", "closed_at = ?"]
                params.append(at)
            elif action == "dismiss":
                reason = (reason or "").strip()[:REASON_MAX]
                if not reason:
                    raise InboxError("a dismissal needs a reason (why this needs no response)")
                sets += ["state = 'dismissed'", "closed_at = ?", "dismiss_reason = ?"]
                params += [at, reason]
            else:  # reopen
                sets += ["state = CASE WHEN assignee IS NULL THEN 'new' ELSE 'assigned' END", "closed_at = NULL",
                         "dismiss_reason = NULL"]
            before = store.execute("SELECT state, version FROM inbox_items WHERE id = ?", [item_id]).fetchone()
            leaves = ACTIONS[action]
            cur = store.execute(
                f"UPDATE inbox_items SET {', '.join(sets)} WHERE id = ? "
                f"AND state IN ({','.join('?' * len(leaves))}) AND (? IS NULL OR version = ?) RETURNING state",
                [*params, item_id, *leaves, version, version])
            after = cur.fetchone()
            if after is None:
                self._refuse(item_id, action, version)
            self._event(item_id, self._now(), actor, action, before[0], after[0],
                        assignee if action == "assign" else None, reason if action == "dismiss" else None)
        item = self.get(item_id)
        assert item is not None
        return item

    def _refuse(self, item_id: int, action: str, version: int | None) -> None:
        row = self._store.execute("SELECT state, version, assignee FROM inbox_items WHERE id = ?",
                                  [item_id]).fetchone()
        if row is None:
            raise InboxError(f"no inbox item {item_id}")
        state, now_version, assignee = row
        last = self._store.execute("SELECT actor, action, at FROM inbox_events WHERE item_id = ? ORDER BY id DESC "
                                   "LIMIT 1", [item_id]).fetchone()
        is_now = f"{state}" + (f", assigned to {assignee}" if assignee else "")
        if version is not None and now_version != version:
            who = f"{last[0] or 'a rule'} ({last[1]} at {last[2]} UTC)" if last else "someone"
            raise InboxConflictError(f"item {item_id} was changed by {who} since you loaded it: it is now {is_now}. "
                                     "Nothing was changed; reload and decide again.")
        raise InboxError(f"item {item_id} is {is_now}: it cannot be {_PAST.get(action, action)} "
                         f"(only from {', '.join(ACTIONS[action])})")

    def add_note(self, item_id: int, author: str, text: str) -> int:
        text = text.strip()[:NOTE_MAX]
        if not text:
            raise InboxError("an empty note")
        store = self._store
        now = self._now()
        with store.transaction():
            if store.scalar("SELECT 1 FROM inbox_items WHERE id = ?", [item_id]) is None:
                raise InboxError(f"no inbox item {item_id}")
            cur = store.execute("INSERT INTO inbox_notes (item_id, author, text, created_at) VALUES (?, ?, ?, ?)",
                                [item_id, author, text, iso(now)])
            self._event(item_id, now, author, "note", None, None, None, None)
            return int(cur.lastrowid or 0)

    def _event(self, item_id: int, at: datetime, actor: str | None, action: str, from_state: str | None,
               to_state: str | None, assignee: str | None, detail: str | None) -> None:
        self._store.execute(
            "INSERT INTO inbox_events (item_id, at, actor, action, from_state, to_state, assignee, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [item_id, iso(at), actor, action, from_state, to_state, assignee, detail])

    # ------------------------------------------------------------------------ SLA

    def overdue(self, now: datetime, limit: int = 500) -> list[InboxItem]:
        """Open items past their due time without a response and not yet alerted on."""
        return cast("list[InboxItem]", self._store.query(
            _SELECT + "WHERE i.state IN ('new', 'assigned') AND i.first_response_at IS NULL AND i.due_at <= ? "
            "AND i.breach_alerted_at IS NULL ORDER BY i.due_at, i.id LIMIT ?", [iso(now), limit]))

    def breach_alerted(self, item_id: int, now: datetime) -> bool:
        """Record that an item's SLA breach was alerted (call inside the transaction that queues
        the alert); False when it already was (another process got there first)."""
        cur = self._store.execute(
            "UPDATE inbox_items SET breach_alerted_at = ? WHERE id = ? AND breach_alerted_at IS NULL",
            [iso(now), item_id])
        if cur.rowcount:
            self._event(item_id, now, None, "sla_breach", None, None, None, None)
        return bool(cur.rowcount)

    def response_times(self, *, brand: str | None = None, since: datetime | None = None) -> list[ResponseTime]:
        """Every item that entered since ``since`` (not dismissed), with its times."""
        where: list[str] = ["state != 'dismissed'"]
        params: list[Any] = []
        add_filters(where, params, ("brand = ?", brand), ("entered_at >= ?", since and iso(since)))
        return cast("list[ResponseTime]", self._store.query(
            "SELECT brand, priority, state, mention_at, entered_at, due_at, first_response_at FROM inbox_items "
            f"WHERE {' AND '.join(where)} ORDER BY entered_at", params))


_PAST = {"assign": "assigned", "unassign": "unassigned", "respond": "marked responded", "close": "closed",
         "dismiss": "dismissed", "reopen": "re-opened"}
