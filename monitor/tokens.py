"""API tokens: scripts and other tools use the JSON API with ``Authorization: Bearer <token>``
instead of a browser session.

A token belongs to one user and acts as that user (never above the user's role); its scope
is ``read`` (the API's GET endpoints) or ``read-write`` (also its state-changing endpoints).
It is shown once, when created: only its SHA-256 is stored (a token is 256 random bits, so a
fast hash is enough), with its first characters (``prefix``) to tell tokens apart in a list.
It can be revoked, may expire, and records when it was created and last used. A token never
goes into a log line or an error message: code that logs says the token's id or prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor import roles
from monitor.errors import MonitorError
from monitor.settings_types import parse_duration
from monitor.store import Store, parse_iso
from monitor.store.handoff import SCOPES, TokenRow, TokenUser

TOKEN_PREFIX = "mtk_"  # marks a monitor API token (secret scanners can look for it)
SHOWN = 8  # characters of the token kept to tell it apart (the "mtk_" and 4 random ones)
TOKEN_MAX = 200
USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


class TokenError(MonitorError):
    """A token cannot be created or revoked: no such user or token, a scope above the user's
    role, an expiry that is no duration."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_expiry(text: str | None) -> timedelta | None:
    """'90d', '12h', '2w'... or None / '' / 'never' for a token that does not expire."""
    if text is None or not text.strip() or text.strip().lower() == "never":
        return None
    try:
        return parse_duration(text.strip())
    except ValueError as exc:
        raise TokenError(f"--expires: {exc}") from None


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str  # shown once; never stored
    username: str
    scope: str
    expires_at: datetime | None


def create(store: Store, username: str, scope: str, *, name: str = "", expires: timedelta | None = None,
           by: str | None = None, allowed: bool = True) -> NewToken:
    """A new token for an enabled user. ``allowed``: whether the user's role may have a token of
    this scope (``roles``: a viewer's tokens are read-only)."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
    user = store.accounts.get_user(username)
    if user is None:
        raise TokenError(f"no enabled user {username!r} (monitor users list)")
    if not allowed:
        raise TokenError(f"{username} may not have a {scope} token (their role allows read tokens only)")
    token = new_token()
    expires_at = store.now() + expires if expires else None
    token_id = store.handoff.create_token(int(user["id"]), token_hash(token), token[:SHOWN], scope, name=name,
                                          expires_at=expires_at, by=by)
    return NewToken(token_id, token, username, scope, expires_at)


def authenticate(store: Store, token: str, now: datetime, *, touch: Store | None = None) -> TokenUser | None:
    """The user a live token acts as, or None (unknown, revoked, expired, its user disabled).
    ``touch``: the writer store to record the use on (at most once a minute)."""
    if not token or len(token) > TOKEN_MAX or not token.startswith(TOKEN_PREFIX):
        return None
    found = store.handoff.token_user(token_hash(token), now)
    if found is None:
        return None
    if touch is not None and (found["last_used_at"] is None
                              or now - parse_iso(found["last_used_at"]) >= USED_EVERY):
        touch.handoff.token_used(found["token_id"], now)
    return found


def revoke(store: Store, token_id: int, by: str | None) -> bool:
    """Revoke a token; False when it is unknown or revoked already."""
    return store.handoff.revoke_token(token_id, by)


def state(row: TokenRow, now: datetime) -> str:
    """What a listed token does now, in words: revoked, expired, inactive while its user is
    disabled (it works again if they are enabled), or active (a read-write token of a user
    whose role is now viewer only reads)."""
    if row["revoked_at"]:
        return f"revoked {row['revoked_at']}" + (f" by {row['revoked_by']}" if row["revoked_by"] else "")
    if row["expires_at"] and parse_iso(row["expires_at"]) <= now:
        return "expired"
    if row["user_disabled"]:
        return "inactive: user disabled"
    if row["scope"] == "read-write" and not roles.can(row["user_role"], "token.write"):
        return f"active, reads only ({row['username']} is a {row['user_role']})"
    return "active"

