"""Passwords, session tokens, CSRF, security headers and safe links for the web page."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import math
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# scrypt parameters: n=2**15, r=8, p=1 uses 32 MiB and ~0.1 s per check
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def hash_password(password: str, *, n: int = _N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=_MAXMEM, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@functools.cache
def dummy_hash() -> str:
    """A hash to check against when the user does not exist, made once (lazily) with the
    same scrypt parameters as ``hash_password``'s, so a login for an unknown name does the
    same work as a wrong password for a real one and timing does not reveal names."""
    return hash_password(secrets.token_hex(16))


def check_login(password: str, stored: str | None) -> bool:
    """Verify ``password`` against a user's stored hash, or against the dummy hash when
    there is no such user (then always False). CPU-bound (~0.1 s): call it off the event loop."""
    ok = verify_password(password, stored if stored is not None else dummy_hash())
    return ok and stored is not None


@dataclass(frozen=True)
class LoginBlock:
    """Why a login is refused without checking the password, and for how long."""

    scope: str  # "account" or "address"
    retry_after: timedelta

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds() / 60))

    @property
    def message(self) -> str:
        where = "for this account" if self.scope == "account" else "from your address"
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"Too many failed logins {where}; try again in {self.minutes} {unit}."


class LoginThrottle:
    """Failed logins counted in memory per user name and per client address, in a sliding
    window. A name or address with ``max_per_*`` failures in the last ``window`` is refused
    (without a password check) until the oldest of them leaves the window; refused attempts
    are not counted, so a block always expires by itself. A limit of 0 turns that count off.

    Every attempt is counted as a failure when it starts (``begin``), so concurrent guesses
    cannot all slip in before the first one fails; ``succeeded`` then forgets the name's
    failures and takes back that attempt's address entry (the address's earlier failures
    stay until they expire). Unknown names are counted like real ones: a block reveals nothing.
    Memory is bounded: past ``max_keys`` names (or addresses), expired ones are dropped, then
    the oldest. Thread-safe; the clock is injected (the app's ``now``).
    """

    def __init__(self, *, max_per_name: int, max_per_address: int, window: timedelta,
                 now: Callable[[], datetime], max_keys: int = 100_000) -> None:
        self.limits = {"account": max_per_name, "address": max_per_address}
        self.window = window
        self.now = now
        self.max_keys = max_keys
        self._failures: dict[str, dict[str, deque[datetime]]] = {"account": {}, "address": {}}
        self._announced: dict[tuple[str, str], datetime] = {}  # (scope, key) -> the block reported by reached()
        self._lock = threading.Lock()

    def _keys(self, name: str, address: str) -> dict[str, str]:
        return {"account": name.casefold(), "address": address}

    def _recent(self, scope: str, key: str, now: datetime) -> deque[datetime] | None:
        times = self._failures[scope].get(key)
        if times is not None:
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._failures[scope][key]
                self._announced.pop((scope, key), None)
                return None
        return times

    def blocked(self, name: str, address: str) -> LoginBlock | None:
        with self._lock:
            return self._blocked(self._keys(name, address), self.now())

    def _blocked(self, keys: dict[str, str], now: datetime) -> LoginBlock | None:
        worst: LoginBlock | None = None
        for scope, key in keys.items():
            limit = self.limits[scope]
            times = self._recent(scope, key, now) if limit else None
            if times is not None and len(times) >= limit:
                # allowed again when the failure that is limit-th from the newest leaves the window
                block = LoginBlock(scope, times[-limit] + self.window - now)
                if worst is None or block.retry_after > worst.retry_after:
                    worst = block
        return worst

    def begin(self, name: str, address: str) -> LoginBlock | datetime:
        """A block, or the time stamp of this attempt, now counted as a failure."""
        with self._lock:
            now = self.now()
            keys = self._keys(name, address)
            block = self._blocked(keys, now)
            if block is not None:
                return block
            for scope, key in keys.items():
                if self.limits[scope]:
                    table = self._failures[scope]
                    if key not in table and len(table) >= self.max_keys:
                        self._evict(scope, now)
                    table.setdefault(key, deque()).append(now)
            return now

    def reached(self, name: str, address: str) -> list[str]:
        """The scopes whose limit this name/address has reached, each block reported once
        (for a log line after a failed attempt)."""
        with self._lock:
            now = self.now()
            out = []
            for scope, key in self._keys(name, address).items():
                limit = self.limits[scope]
                times = self._recent(scope, key, now) if limit else None
                if times is not None and len(times) >= limit and self._announced.get((scope, key)) != times[-limit]:
                    self._announced[(scope, key)] = times[-limit]
                    out.append(scope)
            return out

    def succeeded(self, name: str, address: str, started: datetime) -> None:
        with self._lock:
            keys = self._keys(name, address)
            self._failures["account"].pop(keys["account"], None)
            self._announced.pop(("account", keys["account"]), None)
            times = self._failures["address"].get(keys["address"])
            if times is not None:
                with contextlib.suppress(ValueError):
                    times.remove(started)
                if not times:
                    del self._failures["address"][keys["address"]]
                    self._announced.pop(("address", keys["address"]), None)

    def _evict(self, scope: str, now: datetime) -> None:
        table = self._failures[scope]
        for key in list(table):
            self._recent(scope, key, now)
        while len(table) >= self.max_keys:  # still full of live entries: drop the oldest-inserted
            key = next(iter(table))
            del table[key]
            self._announced.pop((scope, key), None)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def safe_href(url: object) -> str | None:
    """An http(s) URL fit for an href, or None (javascript:, data:, relative and odd URLs)."""
    if not isinstance(url, str) or len(url) > 2000:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c in url for c in "\x00\n\r\t\\ "):
        return None
    return url


class SecurityHeaders:
    """Adds the security headers (strict CSP) to every response; pages are not cached."""

    def __init__(self, app: ASGIApp, *, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for k, v in HEADERS.items():
                    if k.encode() not in present:
                        headers.append((k.encode(), v.encode()))
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if self.secure:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def _host_name(host: str) -> str | None:
    """A host as the allow-list compares it: lower case; an IP address in its canonical form
    (IPv6 without brackets, compressed); None when it is neither an address nor a name."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if "%" in host:
            return None  # a zone id names a local interface, never a site
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return None
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    if not host or any(c in host for c in "[]%/\\@ ") or ":" in host:
        return None
    return host


def parse_host(header: str | None) -> str | None:
    """The host of a Host header (``name``, ``name:port``, ``[v6]``, ``[v6]:port``), as
    ``_host_name`` gives it; None when the header is missing or malformed."""
    if not header:
        return None
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        host, port = header[:end + 1], header[end + 1:]
    else:
        host, _, port = header.partition(":")
        port = ":" + port if _ else ""
    if port and not (port.startswith(":") and port[1:].isdigit() and len(port) <= 6 and int(port[1:]) <= 65535):
        return None
    return _host_name(host)


class HostAllowList:
    """The Host header allow-list (against DNS rebinding): a request whose Host is not in
    ``allowed_hosts`` gets 400. Entries are names (``localhost``), IPv4 or IPv6 addresses
    (``::1`` or ``[::1]``: browsers send ``Host: [::1]:8470``), ``*.example.com`` for every
    sub-domain, or ``*`` for any host."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        entries = [h.strip() for h in allowed_hosts]
        self.allow_any = "*" in entries
        self.suffixes = tuple(h[1:].lower() for h in entries if h.startswith("*."))
        self.hosts = {name for h in entries if not h.startswith("*") and (name := _host_name(h)) is not None}

    def allows(self, header: str | None) -> bool:
        host = parse_host(header)
        if host is None:
            return False
        return self.allow_any or host in self.hosts or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(Headers(scope=scope).get("host")):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)
