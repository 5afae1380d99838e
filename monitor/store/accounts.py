"""SQL for the web page's own writes (``store.accounts``): users and their roles, sessions,
marks, label corrections and confirmed author links. Each write is one short transaction,
with its ``store.audit`` row (who, when, what) in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from monitor.errors import MonitorError
from monitor.roles import DEFAULT_ROLE, ROLES
from monitor.store._sql import iso
from monitor.store.rows import Correction, Mark, Session, User, UserListing

if TYPE_CHECKING:
    from monitor.store import Store

MARKS = ("contacted", "rewarded", "do_not_contact")
FIELDS = {"advocacy": ("promoter", "detractor", "none"), "sentiment": ("negative", "neutral", "positive"),
          "relevance": ("about", "not_about")}  # relevance: the web page's "not about us" marks


class AccountError(MonitorError):
    """A change to users that cannot be made: no such user, an unknown role, or one that would
    leave no enabled admin (demoting or disabling the last one)."""


class AccountStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> str:
        return iso(self._store.now())

    # ---------------------------------------------------------------------- users

    def add_user(self, username: str, password_hash: str, *, replace: bool = False, role: str | None = None,
                 actor: str | None = None) -> None:
        """A new user, a member unless ``role`` says otherwise; ``replace``: or a new password
        for an existing one (who keeps their role unless ``role`` is given), who stays disabled
        if disabled (``enable_user`` lets them in again) and is logged out."""
        if role is not None and role not in ROLES:
            raise AccountError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        store = self._store
        with store.transaction():
            existed = store.scalar("SELECT role FROM users WHERE username = ?", [username])
            if replace and existed is not None:
                if role is not None and role != existed:
                    self.set_role(username, role, actor=actor)
                store.execute("UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, username])
                store.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)",
                              [username])
                store.audit.record(actor, "user.password", "user", username)
            else:
                store.execute("INSERT INTO users (username, password_hash, created_at, role) VALUES (?, ?, ?, ?)",
                              [username, password_hash, self._now(), role or DEFAULT_ROLE])
                store.audit.record(actor, "user.add", "user", username, {"role": role or DEFAULT_ROLE})

    def set_role(self, username: str, role: str, *, actor: str | None = None) -> str:
        """Give a user another role; returns the one they had. Refused (AccountError) for an
        unknown user or role, and for the last enabled admin becoming something else."""
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        store = self._store
        with store.transaction():
            row = store.execute("SELECT role, disabled FROM users WHERE username = ?", [username]).fetchone()
            if row is None:
                raise AccountError(f"no user {username!r}")
            old = str(row[0])
            if old == role:
                return old
            if old == "admin" and not row[1]:
                self._keep_an_admin(username, "made " + role)
            store.execute("UPDATE users SET role = ? WHERE username = ?", [role, username])
            store.audit.record(actor, "user.role", "user", username, {"from": old, "to": role})
            return old

    def _keep_an_admin(self, username: str, change: str) -> None:
        if not self._store.scalar("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND username != ?",
                                  [username]):
            raise AccountError(f"{username!r} is the last enabled admin and cannot be {change}: "
                               "make another user admin first")

    def admins(self) -> int:
        """How many enabled admins there are."""
        return self._store.count("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0")

    def user_exists(self, username: str) -> bool:
        return bool(self._store.query("SELECT 1 FROM users WHERE username = ?", [username]))

    def user_disabled(self, username: str) -> bool | None:
        """Whether the user is disabled; None when there is no such user."""
        rows = self._store.query("SELECT disabled FROM users WHERE username = ?", [username])
        return bool(rows[0]["disabled"]) if rows else None

    def get_user(self, username: str) -> User | None:
        """An enabled user."""
        rows = self._store.query("SELECT * FROM users WHERE username = ? AND disabled = 0", [username])
        return cast("User", rows[0]) if rows else None

    def list_users(self) -> list[UserListing]:
        return cast("list[UserListing]", self._store.query(
            "SELECT id, username, created_at, disabled, role, (SELECT count(*) FROM inbox_items i "
            "WHERE i.assignee = u.username AND i.state IN ('new', 'assigned', 'responded')) AS open_items "
            "FROM users u ORDER BY username"))

    def disable_user(self, username: str, *, actor: str | None = None) -> bool:
        """Disable a user and end their sessions (their inbox assignments stay, reassignable).
        False: no such user; AccountError: the last enabled admin."""
        store = self._store
        with store.transaction():
            row = store.execute("SELECT role, disabled FROM users WHERE username = ?", [username]).fetchone()
            if row is None:
                return False
            if row[0] == "admin" and not row[1]:
                self._keep_an_admin(username, "disabled")
            store.execute("UPDATE users SET disabled = 1 WHERE username = ?", [username])
            store.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)", [username])
            if not row[1]:
                store.audit.record(actor, "user.disable", "user", username)
        return True

    def enable_user(self, username: str, *, actor: str | None = None) -> bool:
        """Let a disabled user log in again (with the password they had)."""
        store = self._store
        with store.transaction():
            n = store.execute("UPDATE users SET disabled = 0 WHERE username = ? AND disabled = 1", [username]).rowcount
            if n:
                store.audit.record(actor, "user.enable", "user", username)
            return bool(n) or self.user_exists(username)

    # ------------------------------------------------------------------- sessions

    def create_session(self, token_hash: str, user_id: int, csrf: str, expires_at: datetime) -> None:
        store = self._store
        with store.transaction():
            store.execute("DELETE FROM sessions WHERE expires_at < ?", [self._now()])
            store.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                [token_hash, user_id, csrf, self._now(), iso(expires_at)])

    def get_session(self, token_hash: str, now: datetime) -> Session | None:
        rows = self._store.query(
            "SELECT s.token_hash, s.csrf, s.expires_at, u.id AS user_id, u.username, u.role FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0",
            [token_hash, iso(now)])
        return cast("Session", rows[0]) if rows else None

    def delete_session(self, token_hash: str) -> None:
        with self._store.transaction():
            self._store.execute("DELETE FROM sessions WHERE token_hash = ?", [token_hash])

    # ---------------------------------------------------------------------- marks

    def set_mark(self, author_id: int, brand: str, mark: str, user: str, on: bool = True,
                 note: str | None = None) -> None:
        """A mark is the advocate programme's status (``store.programme.set_mark``): the one
        source of truth; ProgrammeError when the person is marked do not contact."""
        if mark not in MARKS:
            raise ValueError(f"unknown mark {mark!r}")
        if self._store.scalar("SELECT 1 FROM authors WHERE id = ?", [author_id]) is None:
            raise ValueError(f"no author {author_id}")
        self._store.programme.set_mark(author_id, brand, mark, user, on=on, note=note)

    def marks_of(self, author_id: int) -> list[Mark]:
        return self._store.programme.marks_of(author_id)

    # ---------------------------------------------------------------- corrections

    def add_correction(self, mention_id: int, field: str, label: str, user: str) -> int:
        if label not in FIELDS.get(field, ()):
            raise ValueError(f"{field} label must be one of {FIELDS.get(field)}")
        store = self._store
        with store.transaction():
            col = ("CASE WHEN c.off_topic = 1 THEN 'not_about' WHEN c.relevance IS NOT NULL THEN 'about' END"
                   if field == "relevance" else f"c.{field}")
            row = store.execute(
                f"SELECT {col}, c.model FROM classifications c WHERE c.mention_id = ? ORDER BY c.id DESC LIMIT 1",
                [mention_id]).fetchone()
            if store.scalar("SELECT 1 FROM mentions WHERE id = ?", [mention_id]) is None:
                raise ValueError(f"no mention {mention_id}")
            cur = store.execute(
                "INSERT INTO corrections (mention_id, field, label, model_label, model, set_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [mention_id, field, label, row[0] if row else None, row[1] if row else None, user, self._now()])
            store.audit.record(user, "correction.add", "mention", mention_id,
                               {"field": field, "label": label, "model_label": row[0] if row else None})
            return int(cur.lastrowid or 0)

    def corrections(self, field: str | None = None, limit: int | None = None) -> list[Correction]:
        """The newest correction per mention and field, with the mention's text."""
        where = "AND k.field = ?" if field else ""
        params: list[Any] = [field] if field else []
        sql = ("SELECT k.id, k.mention_id, k.field, k.label, k.model_label, k.model, k.set_by, k.created_at, "
               "m.brand, m.source, m.kind, m.title, m.text FROM corrections k JOIN mentions m ON m.id = k.mention_id "
               "WHERE k.id = (SELECT max(id) FROM corrections k2 WHERE k2.mention_id = k.mention_id "
               f"AND k2.field = k.field) {where} ORDER BY k.id DESC")
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return cast("list[Correction]", self._store.query(sql, params))

    # ---------------------------------------------------------------------- links

    def link_authors(self, person_id: int, author_id: int, user: str) -> None:
        """Record that ``author_id`` is the same person as ``person_id`` (confirmed by a user)."""
        store = self._store
        with store.transaction():
            for aid in (person_id, author_id):
                if store.scalar("SELECT 1 FROM authors WHERE id = ?", [aid]) is None:
                    raise ValueError(f"no author {aid}")
            root = store.scalar("SELECT person_id FROM author_links WHERE author_id = ?", [person_id])
            person = person_id if root is None else int(root)
            if author_id == person:
                return
            # author_id's own group (if any) joins the person
            store.execute("UPDATE author_links SET person_id = ? WHERE person_id = ?", [person, author_id])
            store.execute(
                "INSERT INTO author_links (author_id, person_id, confirmed_by, confirmed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (author_id) DO UPDATE SET person_id = excluded.person_id, "
                "confirmed_by = excluded.confirmed_by, confirmed_at = excluded.confirmed_at",
                [author_id, person, user, self._now()])
            store.audit.record(user, "author.link", "author", person, {"author_id": author_id})

    def unlink_author(self, author_id: int, *, actor: str | None = None) -> int | None:
        """Remove a link; returns the person it belonged to."""
        store = self._store
        with store.transaction():
            person = store.scalar("SELECT person_id FROM author_links WHERE author_id = ?", [author_id])
            store.execute("DELETE FROM author_links WHERE author_id = ?", [author_id])
            if person is not None:
                store.audit.record(actor, "author.unlink", "author", person, {"author_id": author_id})
        return None if person is None else int(person)

    def find_author(self, source: str, handle: str) -> int | None:
        rows = self._store.query("SELECT id FROM authors WHERE source = ? AND handle = ?", [source, handle])
        return int(rows[0]["id"]) if rows else None
