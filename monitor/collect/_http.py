"""The one place that makes HTTP clients: timeouts, a total deadline per request, a
response size cap, retries with back-off that respect Retry-After, a User-Agent that
names the project, and secret-free logging (URLs are logged without query strings)."""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.errors import MalformedResponseError, SourceAuthError, SourceError

logger = logging.getLogger(__name__)

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class HttpPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 30.0  # whole request, body included: a dripping response cannot hang a job
    max_bytes: int = 10 * 1024 * 1024
    retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0  # longer than this: give up now, the next scheduled run retries
    user_agent: str = "monitor/0.1 (self-hosted brand monitor)"
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


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

    def get_json(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        body = self.get_bytes(url, params=params, headers=headers)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting, bad UTF-8
            raise MalformedResponseError(f"{safe_url(url)}: response is not valid JSON ({type(exc).__name__})") from None

    def _request(self, method: str, url: str, **kwargs: Any) -> bytes:
        p = self.policy
        attempt = 0
        while True:
            attempt += 1
            try:
                status, headers, body = self._once(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError, _DeadlineExceeded) as exc:
                if attempt > p.retries:
                    raise SourceError(f"{safe_url(url)}: {describe(exc)} after {attempt} attempts") from None
                delay = self._backoff(attempt)
                logger.warning("%s: %s; retrying in %.1fs", safe_url(url), describe(exc), delay)
                p.sleep(delay)
                continue
            if 200 <= status < 300:
                return body
            if status in (401, 403):
                raise SourceAuthError(f"{safe_url(url)}: HTTP {status}: credentials refused or missing")
            if status in RETRYABLE:
                retry_after = parse_retry_after(headers.get("retry-after"))
                if attempt > p.retries or (retry_after is not None and retry_after > p.max_retry_after):
                    raise SourceError(f"{safe_url(url)}: HTTP {status} after {attempt} attempts", retry_after=retry_after)
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                logger.warning("%s: HTTP %d; retrying in %.1fs", safe_url(url), status, delay)
                p.sleep(delay)
                continue
            raise SourceError(f"{safe_url(url)}: HTTP {status}")

    def _backoff(self, attempt: int) -> float:
        p = self.policy
        return min(p.backoff_max, p.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311

    def _once(self, method: str, url: str, **kwargs: Any) -> tuple[int, httpx.Headers, bytes]:
        p = self.policy
        started = time.monotonic()
        with self.client.stream(method, url, **kwargs) as response:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > p.max_bytes:
                raise MalformedResponseError(f"{safe_url(url)}: response of {declared} bytes is over the {p.max_bytes} cap")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > p.max_bytes:
                    raise MalformedResponseError(f"{safe_url(url)}: response is over the {p.max_bytes} byte cap")
                if time.monotonic() - started > p.deadline:
                    raise _DeadlineExceeded(f"response took over {p.deadline:.0f}s")
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)


class _DeadlineExceeded(Exception):
    pass


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {text}" if text else name
