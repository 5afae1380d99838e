"""SQL of the hand-off (``store.handoff``): the flags already announced as events, the
profile fields of the CRM exports, and API tokens (only their hash is stored).

Events themselves are alerts (``store.alerts.insert``) delivered to ``handoff:<name>``
channels: the outbox's retries, attempts and dead letters are the same for both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict, cast

from monitor.store._sql import chunks, iso, marks
from monitor.textutil import safe_text

if TYPE_CHECKING:
    from monitor.store import Store

SCOPES = ("read", "read-write")
NAME_MAX = 100


class NewFlag(TypedDict):
    """A person flagged advocate or detractor of a brand whose flag was not announced yet."""

    person_id: int
    brand: str
    flag: str
    source: str
    handle: str
    display_name: str | None
    profile_url: str | None
    advocate_score: float
    detractor_score: float
    mentions: int
    reach: int | None
    first_at: str
    last_at: str
    last_mention_id: int | None  # the event names it: an erasure or retention deleting it strips the event


class Profile(TypedDict):
    id: int
    display_name: str | None
    url: str | None


class TokenRow(TypedDict):
    """An API token as listed (never the token: only its first characters, ``prefix``)."""

    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    scope: str
    created_at: str
    created_by: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    revoked_by: str | None
    user_role: str  # the user's role now (monitor.roles): a read-write token of a viewer only reads
    user_disabled: int  # 1: the user is disabled, so the token does not work (again when enabled)


class TokenUser(TypedDict):
    """The user a live token acts as."""

    token_id: int
    scope: str
    last_used_at: str | None
    user_id: int
    username: str
    role: str  # the user's (monitor.roles)


class HandoffStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    # ---------------------------------------------------------------- flag events

    def new_flags(self, limit: int = 500) -> list[NewFlag]:
        """Persons whose current flag for a brand has not been announced, by person."""
        return cast("list[NewFlag]", self._store.query(
            "SELECT s.person_id, s.brand, s.flag, s.source, s.handle, a.display_name, a.url AS profile_url, "
            "s.advocate_score, s.detractor_score, s.mentions, s.reach, s.first_at, s.last_at, "
            "(SELECT max(m.id) FROM mentions m WHERE m.brand = s.brand AND (m.author_id = s.person_id OR m.author_id "
            "IN (SELECT l.author_id FROM author_links l WHERE l.person_id = s.person_id))) AS last_mention_id "
            "FROM author_stats s LEFT JOIN authors a ON a.id = s.person_id "
            "WHERE s.flag IN ('advocate', 'detractor') AND NOT EXISTS (SELECT 1 FROM handoff_flags f "
            "WHERE f.brand = s.brand AND f.person_id = s.person_id AND f.flag = s.flag) "
            "ORDER BY s.person_id, s.brand LIMIT ?", [limit]))

    def announced(self, brand: str, person_id: int, flag: str, at: datetime) -> bool:
        """Record that a flag was announced (inside the transaction that queues its events);
        False when it already was."""
        cur = self._store.execute(
            "INSERT INTO handoff_flags (brand, person_id, flag, flagged_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", [brand, person_id, flag, iso(at)])
        return bool(cur.rowcount)

    def profiles(self, person_ids: Sequence[int]) -> dict[int, Profile]:
        """Display name and profile URL of these authors (the CRM exports)."""
        out: dict[int, Profile] = {}
        for chunk in chunks(sorted(set(person_ids))):
            for r in self._store.query(f"SELECT id, display_name, url FROM authors WHERE id IN ({marks(len(chunk))})",
                                       list(chunk)):
                out[int(r["id"])] = cast("Profile", r)
        return out

    # --------------------------------------------------------------------- tokens

    def create_token(self, user_id: int, token_hash: str, prefix: str, scope: str, *, name: str = "",
                     expires_at: datetime | None = None, by: str | None = None) -> int:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        store = self._store
        with store.transaction():
            cur = store.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scope, created_at, created_by, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [user_id, safe_text(name.strip(), NAME_MAX), token_hash, prefix, scope, iso(store.now()), by,
                 iso(expires_at) if expires_at else None])
            return int(cur.fetchone()[0])

    def tokens(self, username: str | None = None, *, include_revoked: bool = True) -> list[TokenRow]:
        """Tokens (of one user, or of all), newest first."""
        where = ["1 = 1"]
        params: list[str] = []
        if username is not None:
            where.append("u.username = ?")
            params.append(username)
        if not include_revoked:
            where.append("t.revoked_at IS NULL")
        return cast("list[TokenRow]", self._store.query(
            "SELECT t.id, t.user_id, u.username, t.name, t.prefix, t.scope, t.created_at, t.created_by, t.expires_at, "
            "t.last_used_at, t.revoked_at, t.revoked_by, u.role AS user_role, u.disabled AS user_disabled "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id "
            f"WHERE {' AND '.join(where)} ORDER BY t.id DESC", params))

    def token(self, token_id: int) -> TokenRow | None:
        rows = self._store.query(
            "SELECT t.id, t.user_id, u.username, t.name, t.prefix, t.scope, t.created_at, t.created_by, t.expires_at, "
            "t.last_used_at, t.revoked_at, t.revoked_by, u.role AS user_role, u.disabled AS user_disabled "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.id = ?", [token_id])
        return cast("TokenRow", rows[0]) if rows else None

    def token_user(self, token_hash: str, now: datetime) -> TokenUser | None:
        """The enabled user a live token (not revoked, not expired) acts as; None otherwise."""
        rows = self._store.query(
            "SELECT t.id AS token_id, t.scope, t.last_used_at, u.id AS user_id, u.username, u.role FROM api_tokens t "
            "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL "
            "AND (t.expires_at IS NULL OR t.expires_at > ?) AND u.disabled = 0", [token_hash, iso(now)])
        return cast("TokenUser", rows[0]) if rows else None

    def token_used(self, token_id: int, at: datetime) -> None:
        with self._store.transaction():
            self._store.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [iso(at), token_id])

    def revoke_token(self, token_id: int, by: str | None) -> bool:
        """Revoke a live token; False when there is none (no such id, or revoked already)."""
        store = self._store
        with store.transaction():
            cur = store.execute("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? "
                                "AND revoked_at IS NULL", [iso(store.now()), by, token_id])
            return bool(cur.rowcount)
