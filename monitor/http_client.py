"""The one place that makes HTTP clients: timeouts, a total deadline per request, a
response size cap, retries with back-off that respect Retry-After, a User-Agent that
names the project, secret-free logging (URLs are logged without query strings), a
per-host rate limiter, redirects followed by hand (at most ``max_redirects``), and an
SSRF guard.

Total deadline: every request runs under a ``Watch``. A watchdog thread shuts down the
sockets the request uses once ``deadline`` seconds have passed, or at once when the
policy's ``stop`` event is set (SIGTERM), so a peer that drips its status line, headers
or body a byte at a time (each byte within the read timeout) cannot hold the request:
connect, headers and body together end within the deadline, and a stop request ends
them within a fraction of a second. The same watch covers the requests session PRAW uses.

SSRF guard: every TCP connection the client opens goes through ``GuardedBackend``,
which resolves the host itself, refuses the connection when any resolved address is
not public (private, loopback, link-local, CGNAT, reserved, multicast, v4-mapped
forms of those) unless it lies in ``allow_networks``, and connects to the address it
checked (no second lookup: DNS rebinding cannot slip in). Each redirect hop opens
its own connection, so it is checked again.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import logging
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
import requests

from monitor.errors import BlockedAddressError, MalformedResponseError, SourceAuthError, SourceError

logger = logging.getLogger(__name__)

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
REDIRECTS = {301, 302, 303, 307, 308}
Resolver = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the FQDN form, so search domains do not apply).
    Numeric forms such as ``2130706433`` or ``0x7f.1`` resolve to the address they spell."""
    name = host if _is_ip(host) or _is_numeric(host) or host.endswith(".") else host + "."
    infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_numeric(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALSO_BLOCKED = [ipaddress.ip_network(n) for n in ("192.0.0.0/24", "198.18.0.0/15", "100.64.0.0/10", "0.0.0.0/8")]


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable unicast address (and not one of the special ranges Sentry's
    SSRF guard blocks); v4 addresses embedded in v6 forms are judged as v4."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is None and ip in _NAT64:
            mapped = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if mapped is not None:
            return is_public(mapped)
    if any(ip in net for net in _ALSO_BLOCKED if net.version == ip.version):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback)


def literal_address(host: str) -> str | None:
    """The address a host name spells literally (``10.0.0.1``, ``[::1]``, ``2130706433``,
    ``0x7f.1``), or None for a real name."""
    bare = host.strip("[]")
    if _is_ip(bare):
        return bare
    if _is_numeric(bare):
        return socket.inet_ntoa(socket.inet_aton(bare))
    return None


class NetworkGuard:
    """Decides which addresses a client may connect to. ``allow`` lists networks (CIDR)
    or single addresses that are allowed although not public, e.g. a local mirror."""

    def __init__(self, allow: Iterable[str] = (), resolve: Resolver | None = None) -> None:
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.resolve = resolve or system_resolve

    def allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        return is_public(ip) or any(ip in net for net in self.allow if net.version == ip.version)

    def check(self, host: str, port: int) -> list[str]:
        """The addresses to connect to; BlockedAddressError if any of them is forbidden."""
        literal = literal_address(host)
        try:
            addresses = [literal] if literal else self.resolve(host, port)
        except OSError as exc:
            raise SourceError(f"{host}: cannot resolve ({exc.__class__.__name__})") from None
        if not addresses:
            raise SourceError(f"{host}: resolves to no address")
        blocked = [a for a in addresses if not self.allowed(a)]
        if blocked:
            raise BlockedAddressError(
                f"{host} resolves to {', '.join(blocked)}, a non-public address; "
                "add it to http.allow_networks in config.yaml if this is intended")
        return addresses


class Watch:
    """One request's total deadline and the process's stop event, enforced from outside the
    thread that waits on the network: when ``seconds`` have passed, or as soon as ``stop`` is
    set, every socket attached to the watch is shut down, which ends a blocked send or receive
    at once. ``fired`` says why ("deadline" or "stopped"). The request's code finds the watch
    of its thread with ``current_watch()``; nested watches restore the outer one on exit."""

    POLL = 0.05  # how often the stop event is looked at

    def __init__(self, seconds: float, stop: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.stop = stop
        self.fired: str | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outer: Watch | None = None

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def cap(self, timeout: float | None) -> float:
        """``timeout`` (None: none) cut to what is left of the deadline."""
        left = self.remaining()
        return left if timeout is None else min(timeout, left)

    def __enter__(self) -> Watch:
        self._outer = getattr(_WATCHES, "current", None)
        _WATCHES.current = self
        threading.Thread(target=self._run, name="http-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
        _WATCHES.current = self._outer

    def _run(self) -> None:
        while True:
            if self.stop is not None and self.stop.is_set():
                return self._fire("stopped")
            left = self.remaining()
            if left <= 0:
                return self._fire("deadline")
            if self._done.wait(min(left, self.POLL) if self.stop is not None else left):
                return

    def _fire(self, why: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.fired = why
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def attach(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the watch fires (at once if it has fired already)."""
        with self._lock:
            if not any(s is sock for s in self._sockets):
                self._sockets.append(sock)
            fired = self.fired is not None
        if fired:
            _shut(sock)

    def error(self, url: httpx.URL | str) -> SourceError:
        if self.fired == "stopped":
            return RequestStopped(f"{safe_url(url)}: stopped: the process is shutting down")
        return _DeadlineExceeded(f"no complete response within {self.seconds:g}s")


_WATCHES = threading.local()


def current_watch() -> Watch | None:
    return getattr(_WATCHES, "current", None)


def _shut(sock: socket.socket) -> None:
    """End every blocked call on ``sock`` (socket-level shutdown: for a TLS socket too,
    without touching its TLS state from this thread)."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _capped(timeout: float | None) -> float | None:
    watch = current_watch()
    return watch.cap(timeout) if watch is not None else timeout


class WatchedStream(httpcore.NetworkStream):
    """A connection's stream whose socket joins the current request's watch on every use
    (a pooled connection serves several requests, each with its own watch)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def _attach(self) -> None:
        watch = current_watch()
        if watch is not None:
            sock = self.inner.get_extra_info("socket")
            if sock is not None:
                watch.attach(sock)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._attach()
        return self.inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._attach()
        self.inner.write(buffer, timeout)

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> WatchedStream:
        self._attach()
        return WatchedStream(self.inner.start_tls(ssl_context, server_hostname, _capped(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore network backend that connects only to addresses the guard accepts (any
    address when ``guard`` is None), within what is left of the request's deadline, and
    hands out watched streams."""

    def __init__(self, guard: NetworkGuard | None) -> None:
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if self.guard is None:
            return WatchedStream(self.inner.connect_tcp(host, port, _capped(timeout), local_address, socket_options))
        last: Exception | None = None
        for address in self.guard.check(host, port):
            try:
                stream = self.inner.connect_tcp(address, port, _capped(timeout), local_address, socket_options)
            except httpcore.ConnectError as exc:  # try the next checked address
                last = exc
                continue
            return WatchedStream(stream)
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never configured
        raise BlockedAddressError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """The default transport with its connection pool built on ``GuardedBackend``; no
    environment proxies (they would bypass the guard). ``guard`` None: no address check,
    still the deadline."""

    def __init__(self, guard: NetworkGuard | None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20, max_keepalive_connections=10, keepalive_expiry=5.0,
            network_backend=GuardedBackend(guard),
        )


class RateLimiter:
    """At most one request per ``interval`` seconds to each host, shared by every client
    of the process (one instance is passed to each). Thread-safe."""

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> float:
        """Block until ``host`` may be called; returns the seconds waited."""
        if self.interval <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            at = max(now, self._next.get(host, now))
            self._next[host] = at + self.interval
        delay = at - now
        if delay > 0:
            self.sleep(delay)
        return delay


@dataclass
class HttpPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 30.0  # whole request (connect, headers, body): a dripping peer cannot hang a job
    max_bytes: int = 10 * 1024 * 1024
    retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0  # longer than this: give up now, the next scheduled run retries
    user_agent: str = "monitor/0.1 (self-hosted brand monitor)"
    max_redirects: int = 5
    guard: bool = True  # SSRF guard on every connection (see the module docstring)
    allow_networks: tuple[str, ...] = ()  # non-public networks the guard lets through
    resolve: Resolver | None = field(default=None, repr=False)  # tests inject a fake resolver
    limiter: RateLimiter | None = field(default=None, repr=False)
    sleep: Callable[[float], object] = field(default=time.sleep, repr=False)
    stop: threading.Event | None = field(default=None, repr=False)  # set: requests end now, none starts

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def network_guard(self) -> NetworkGuard:
        return NetworkGuard(self.allow_networks, self.resolve)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def safe_url(url: httpx.URL | str) -> str:
    """A URL fit for logs: no query string, no userinfo."""
    u = httpx.URL(str(url))
    return str(u.copy_with(query=None, username=None, password=None, fragment=None))


class HttpClient:
    """Wraps one httpx.Client. ``transport`` lets tests serve recorded responses."""

    def __init__(self, policy: HttpPolicy | None = None, *, transport: httpx.BaseTransport | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.policy = policy or HttpPolicy()
        p = self.policy
        if transport is None:
            transport = GuardedTransport(p.network_guard() if p.guard else None)
        self.client = httpx.Client(
            timeout=httpx.Timeout(p.read_timeout, connect=p.connect_timeout),
            headers={"User-Agent": p.user_agent, "Accept": "application/json", **(headers or {})},
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def get_bytes(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> bytes:
        return self._request("GET", url, params=params, headers=headers)

    def get_conditional(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, httpx.Headers, bytes]:
        """A GET that may be conditional (``If-None-Match`` / ``If-Modified-Since`` in
        ``headers``): (status, headers, body), where 304 Not Modified comes back like a
        success (empty body); every other status as ``get_bytes`` treats it."""
        return self._exchange("GET", url, headers=headers, not_modified=True)

    def get_json(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        body = self.get_bytes(url, params=params, headers=headers)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting, bad UTF-8
            raise MalformedResponseError(
                f"{safe_url(url)}: response is not valid JSON ({type(exc).__name__})") from None

    def post_json(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
        body = self._request("POST", url, json=payload, headers=headers)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponseError(
                f"{safe_url(url)}: response is not valid JSON ({type(exc).__name__})") from None

    def post_form(self, url: str, fields: dict[str, str], params: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> bytes:
        """A POST of form-encoded ``fields`` (application/x-www-form-urlencoded); the raw body back."""
        return self._request("POST", url, data=fields, params=params, headers=headers)

    def _request(self, method: str, url: str, **kwargs: Any) -> bytes:
        return self._exchange(method, url, **kwargs)[2]

    def _exchange(self, method: str, url: str, *, not_modified: bool = False,
                  **kwargs: Any) -> tuple[int, httpx.Headers, bytes]:
        p = self.policy
        attempt = 0
        while True:
            attempt += 1
            if p.stopping():
                raise RequestStopped(f"{safe_url(url)}: stopped: the process is shutting down")
            try:
                status, headers, body = self._follow(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError, _DeadlineExceeded) as exc:
                if attempt > p.retries:
                    raise SourceError(f"{safe_url(url)}: {describe(exc)} after {attempt} attempts") from None
                delay = self._backoff(attempt)
                logger.warning("%s: %s; retrying in %.1fs", safe_url(url), describe(exc), delay)
                p.sleep(delay)
                continue
            if 200 <= status < 300 or (status == 304 and not_modified):
                return status, headers, body
            if status in (401, 403):
                raise SourceAuthError(f"{safe_url(url)}: HTTP {status}: credentials refused or missing",
                                      status=status, detail=_detail(body))
            if status in RETRYABLE:
                retry_after = parse_retry_after(headers.get("retry-after"))
                if attempt > p.retries or (retry_after is not None and retry_after > p.max_retry_after):
                    raise SourceError(f"{safe_url(url)}: HTTP {status} after {attempt} attempts",
                                      retry_after=retry_after, status=status)
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                logger.warning("%s: HTTP %d; retrying in %.1fs", safe_url(url), status, delay)
                p.sleep(delay)
                continue
            raise SourceError(f"{safe_url(url)}: HTTP {status}", status=status, detail=_detail(body))

    def _backoff(self, attempt: int) -> float:
        p = self.policy
        return min(p.backoff_max, p.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311

    def _follow(self, method: str, url: str, **kwargs: Any) -> tuple[int, httpx.Headers, bytes]:
        """One request and its redirects, each hop a fresh (guarded) connection."""
        current = httpx.URL(url)
        for _hop in range(self.policy.max_redirects + 1):
            status, headers, body = self._once(method, current, **kwargs)
            location = headers.get("location")
            if status not in REDIRECTS or not location:
                return status, headers, body
            nxt = current.join(location)
            if nxt.scheme not in ("http", "https"):
                raise BlockedAddressError(f"{safe_url(current)}: redirect to a {nxt.scheme!r} URL refused")
            logger.debug("%s: HTTP %d redirect to %s", safe_url(current), status, safe_url(nxt))
            if (nxt.scheme, nxt.host, nxt.port) != (current.scheme, current.host, current.port):
                kwargs.pop("headers", None)  # never carry credentials to another origin
            kwargs.pop("params", None)  # the Location carries its own query
            if status == 303 or (status in (301, 302) and method == "POST"):
                method = "GET"
                kwargs.pop("json", None)
                kwargs.pop("data", None)
            current = nxt
        raise SourceError(f"{safe_url(url)}: more than {self.policy.max_redirects} redirects")

    def _once(self, method: str, url: httpx.URL | str, **kwargs: Any) -> tuple[int, httpx.Headers, bytes]:
        p = self.policy
        if p.limiter is not None:
            p.limiter.wait(httpx.URL(str(url)).host)
        with Watch(p.deadline, p.stop) as watch:
            try:
                with self.client.stream(method, url, **kwargs) as response:
                    body = _read_capped(url, response.headers.get("content-length"), response.iter_bytes(), p)
            except (httpx.HTTPError, httpcore.NetworkError, OSError):
                if watch.fired:  # the watchdog shut the socket: say why, not how the read failed
                    raise watch.error(url) from None
                raise
            if watch.fired:  # a parser may take a cut-off answer for a whole one
                raise watch.error(url)
            return response.status_code, response.headers, body

    def send(self, method: str, url: str, *, content: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, httpx.Headers, bytes]:
        """One request as it is, under the policy's deadline, size cap and stop event: no
        retries, no redirects followed (a 3xx is returned like any status). For callers that
        judge the status themselves (alert channels)."""
        if self.policy.stopping():
            raise RequestStopped(f"{safe_url(url)}: stopped: the process is shutting down")
        return self._once(method, url, content=content, headers=headers)


class _DeadlineExceeded(SourceError):
    pass


class RequestStopped(SourceError):
    """A request cut short (or never started) because the process is stopping."""


def _read_capped(url: httpx.URL | str, declared: str | None, chunks: Iterable[bytes] | Iterator[bytes],
                 p: HttpPolicy) -> bytes:
    """The body from ``chunks``: MalformedResponseError past ``p.max_bytes`` (declared or
    read). The deadline is the request's watch's."""
    if declared and declared.isdigit() and int(declared) > p.max_bytes:
        raise MalformedResponseError(f"{safe_url(url)}: response of {declared} bytes is over the {p.max_bytes} cap")
    read, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > p.max_bytes:
            raise MalformedResponseError(f"{safe_url(url)}: response is over the {p.max_bytes} byte cap")
        read.append(chunk)
    return b"".join(read)


def _detail(body: bytes) -> str:
    """The start of an error body, for matching API error codes (never logged whole)."""
    return body[:300].decode("utf-8", "replace")


def describe(exc: BaseException) -> str:
    """``Type: text`` for a log line or a stored error. A LocalProtocolError is our own request
    refused before sending (h11 quotes the offending header value: it may be a credential), so
    only its type is given."""
    name = type(exc).__name__
    if isinstance(exc, httpx.LocalProtocolError | httpcore.LocalProtocolError):
        return f"{name}: a header of the request is not valid HTTP"
    text = str(exc)
    if isinstance(exc, _DeadlineExceeded):
        return text  # "no complete response within 30s" says it all
    return f"{name}: {text}" if text else name


class _PinnedConnection:
    """Mixed into urllib3's connection classes: the connection goes to an address the
    guard checked (no second lookup by urllib3: DNS rebinding cannot slip in), while the
    Host header, TLS SNI and certificate check keep the name. Its socket joins the current
    request's watch (deadline and stop) whenever the connection is used."""

    guard: NetworkGuard | None = None

    def _new_conn(self):
        from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
        from urllib3.util.connection import create_connection

        host, port = self._dns_host, self.port
        addresses = self.guard.check(host, port) if self.guard is not None else [host]
        timeout = _capped(self.timeout) if self.timeout is None or isinstance(self.timeout, int | float) \
            else self.timeout
        last: Exception | None = None
        for address in addresses:
            try:
                sock = create_connection((address, port), timeout, source_address=self.source_address,
                                         socket_options=self.socket_options)
            except TimeoutError as exc:
                last = ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={timeout})")
                last.__cause__ = exc
            except OSError as exc:
                last = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                last.__cause__ = exc
            else:
                sys.audit("http.client.connect", self, self.host, self.port)
                _attach(sock)
                return sock
        raise last or NewConnectionError(self, f"cannot connect to {self.host}")

    def connect(self):
        super().connect()
        _attach(self.sock)  # a TLS socket replaces the plain one

    def request(self, *args, **kwargs):
        _attach(self.sock)
        return super().request(*args, **kwargs)

    def getresponse(self, *args, **kwargs):
        _attach(self.sock)
        return super().getresponse(*args, **kwargs)


def _attach(sock: socket.socket | None) -> None:
    watch = current_watch()
    if watch is not None and sock is not None:
        watch.attach(sock)


def _pinned_adapter(guard: NetworkGuard | None):
    """A requests adapter whose pools make ``_PinnedConnection`` connections, no retries."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    http = type("PinnedHTTPConnection", (_PinnedConnection, HTTPConnection), {"guard": guard})
    https = type("PinnedHTTPSConnection", (_PinnedConnection, HTTPSConnection), {"guard": guard})
    pools = {"http": type("PinnedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
             "https": type("PinnedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https})}

    class PinnedAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return PinnedAdapter(max_retries=0)


class CappedSession(requests.Session):
    """A ``requests.Session`` for libraries built on requests (PRAW): the same size cap,
    total deadline, stop event, rate limiter and SSRF guard as HttpClient (connections
    pinned to the checked address), no redirects, no environment proxies. ``finish``
    lets a subclass look at (or mend) a body before the library reads it."""

    def __init__(self, policy: HttpPolicy | None = None) -> None:
        super().__init__()
        self.policy = p = policy or HttpPolicy()
        self.trust_env = False
        self.headers["User-Agent"] = p.user_agent
        adapter = _pinned_adapter(p.network_guard() if p.guard else None)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, **kwargs):  # noqa: ANN001 - requests' signature
        p = self.policy
        if p.stopping():
            raise RequestStopped(f"{safe_url(url)}: stopped: the process is shutting down")
        if p.limiter is not None:
            p.limiter.wait(httpx.URL(str(url)).host)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        kwargs.setdefault("timeout", (p.connect_timeout, p.read_timeout))
        with Watch(p.deadline, p.stop) as watch:
            try:
                response = super().request(method, url, **kwargs)
                try:
                    body = _read_capped(url, response.headers.get("content-length"),
                                        response.iter_content(64 * 1024), p)
                finally:
                    response.close()
            except (requests.RequestException, OSError):
                if watch.fired:
                    raise self._cut_short(url, watch) from None
                raise
            if watch.fired:  # http.client takes headers cut off by the shutdown for complete ones
                raise self._cut_short(url, watch)
        response._content = self.finish(str(url), response, body)
        return response

    def finish(self, url: str, response: requests.Response, body: bytes) -> bytes:
        return body

    @staticmethod
    def _cut_short(url: str, watch: Watch) -> SourceError:
        """A SourceError, not a requests error: PRAW does not retry it."""
        error = watch.error(url)
        return error if isinstance(error, RequestStopped) else SourceError(f"{safe_url(url)}: {error}")


def requests_session(policy: HttpPolicy | None = None) -> CappedSession:
    return CappedSession(policy)


class HttpFactory:
    """Makes the clients of one process: every client shares the policy and its per-host
    rate limiter. ``policy`` is also read by sources built on requests (PRAW)."""

    def __init__(self, policy: HttpPolicy | None = None, *, transport: httpx.BaseTransport | None = None) -> None:
        self.policy = policy or HttpPolicy()
        self.transport = transport

    def __call__(self) -> HttpClient:
        return HttpClient(self.policy, transport=self.transport)
