"""GitHub issues and pull requests naming the brand, through the REST search API
(``GET /search/issues?q=<term> in:title,body,comments created:...&sort=created&order=desc``).

A token is optional (``token: ${ENV}``): without one the search limit is 10 requests a
minute, with one 30. ``base_url`` points at GitHub Enterprise (``https://host/api/v3``).

The cursor walks a time window downwards like the Hacker News source, so a run cut short
resumes where it stopped and the 1,000-result cap of one search never skips items:

    {"since": S, "upto": U, "top": T}   (epoch seconds)

Every search reaches ``OVERLAP`` seconds below ``since`` (the search index lags a little);
items fetched again are dropped by the store's unique key.

Rate limits: ``x-ratelimit-remaining: 0`` after a page ends the run (``done``); a 403 or
429 that is a rate limit (primary: ``x-ratelimit-remaining: 0``; secondary: "You have
exceeded a secondary rate limit") is a retryable SourceError whose ``retry_after`` comes
from ``retry-after`` or ``x-ratelimit-reset``; other 403s and 401 are auth failures; 422
(validation failed: a query GitHub refuses) is a SourceError naming it. ``incomplete_results``
(the search timed out on GitHub's side) is logged; the page is kept.

Text is markdown: cleaned as ``markdown_text`` (``<...>`` and code kept as typed).
Reach: ``GET /users/{login}`` -> ``followers`` (core rate limit, only when asked).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import ConfiguredSource, dump_state, parse_time, read_cursor, window_step
from monitor.collect._markdown import markdown_text
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.http_client import parse_retry_after, safe_url
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.github.com"
PER_PAGE = 100
FIRST_RUN_LOOKBACK = timedelta(days=2)
OVERLAP = 600  # seconds
MAX_CLOCK_SKEW = timedelta(hours=1)
API_VERSION = "2022-11-28"
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    upto: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore")

    login: str
    id: int | None = None
    html_url: str | None = None
    type: str | None = None


class _Issue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    number: int | None = None
    title: str | None = None
    body: str | None = None
    html_url: str | None = None
    created_at: str
    updated_at: str | None = None
    user: _User | None = None  # null for a deleted account
    pull_request: dict[str, Any] | None = None
    repository_url: str | None = None
    state: str | None = None
    comments: int | None = None


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total_count: int | None = None
    incomplete_results: bool = False
    items: list[Any]


def _github_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def search_term(term: str) -> str:
    """A brand term as a search phrase: quoted when it has spaces (or quotes of its own)."""
    inner = term.strip().strip('"').replace('"', " ").strip()
    return f'"{inner}"' if any(c.isspace() for c in inner) else inner


class GitHubSource(ConfiguredSource):
    type = "github"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def queries(self) -> list[str]:
        return list(self.terms.include)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        token = self.settings.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        return headers

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, httpx.Headers]:
        """One GET judged here (GitHub's rate limits are told by headers and bodies)."""
        url = str(httpx.URL(f"{self.base_url}{path}", params=params or {}))
        try:
            status, headers, body = self.http.send("GET", url, headers=self._headers())
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.key}: {type(exc).__name__} talking to GitHub") from None
        where = safe_url(url)
        detail = body[:300].decode("utf-8", "replace")
        if status == 401:
            raise SourceAuthError(f"{where}: HTTP 401: GitHub refused the token", status=401, detail=detail)
        if status in (403, 429):
            limited = headers.get("x-ratelimit-remaining") == "0" or "rate limit" in detail.lower() or status == 429
            if limited:
                wait = self._wait(headers)
                raise SourceError(f"{where}: HTTP {status}: GitHub rate limit"
                                  + (f", retry in {wait:.0f}s" if wait is not None else ""),
                                  retry_after=wait, status=status, detail=detail)
            raise SourceAuthError(f"{where}: HTTP 403: GitHub refused access", status=403, detail=detail)
        if status == 422:
            raise SourceError(f"{where}: HTTP 422: GitHub refused the search query (validation failed)",
                              status=422, detail=detail)
        if not 200 <= status < 300:
            raise SourceError(f"{where}: HTTP {status}", status=status, detail=detail)
        try:
            return json.loads(body), headers
        except (ValueError, RecursionError) as exc:
            raise MalformedResponseError(f"{where}: response is not valid JSON ({type(exc).__name__})") from None

    def _wait(self, headers: httpx.Headers) -> float | None:
        wait = parse_retry_after(headers.get("retry-after"))
        if wait is not None:
            return wait
        reset = headers.get("x-ratelimit-reset", "")
        if reset.isascii() and reset.isdigit() and len(reset) < 12:
            return max(0.0, int(reset) - self.now().timestamp())
        return None

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        low = _github_time(max(_EPOCH_MIN, state["since"] - OVERLAP))
        created = f"created:{low}..{_github_time(state['upto'])}" if state["upto"] is not None else f"created:>={low}"
        q = f"{search_term(query)} in:title,body,comments {created}"
        params = {"q": q, "sort": "created", "order": "desc", "per_page": PER_PAGE, "page": 1}
        data, headers = self._get("/search/issues", params)
        try:
            page = _Page.model_validate(data)
        except ValidationError:
            raise MalformedResponseError(f"{self.key}: search response has no 'items' list") from None
        if page.incomplete_results:
            logger.warning("%s: GitHub's search timed out: results of this page may be incomplete", self.key)
        mentions, skipped, times = [], 0, []
        for raw in page.items:
            try:
                issue = _Issue.model_validate(raw)
                created_at = parse_time(issue.created_at)
                if created_at > self.now() + MAX_CLOCK_SKEW:
                    raise ValueError("created_at is in the future")
                mention = self._to_mention(issue, created_at)
            except (ValidationError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed issue (%s)", self.key, type(exc).__name__)
                continue
            times.append(int(created_at.timestamp()))
            if mention is not None:
                mentions.append(mention)
        full = len(page.items) >= PER_PAGE
        next_state, done = window_step(state, times, full)
        if headers.get("x-ratelimit-remaining") == "0":
            done = True  # the rest waits for the next run (the cursor keeps the window)
        return FetchResult(mentions, dump_state(next_state), done=done, skipped=skipped)

    def _parse_cursor(self, cursor: str | None) -> dict:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return {"since": int((self.now() - FIRST_RUN_LOOKBACK).timestamp()), "upto": None, "top": None}
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state.model_dump()

    def _to_mention(self, issue: _Issue, created: datetime) -> Mention | None:
        title = markdown_text(issue.title)
        text = markdown_text(issue.body)
        if not text and not title:
            return None
        url = issue.html_url if issue.html_url and issue.html_url.startswith(("https://", "http://")) else None
        author = None
        if issue.user is not None and issue.user.login:
            user_url = issue.user.html_url
            author = Author(source=self.type, handle=issue.user.login,
                            url=user_url if user_url and user_url.startswith(("https://", "http://")) else None)
        repo = None
        if issue.repository_url and "/repos/" in issue.repository_url:
            repo = issue.repository_url.split("/repos/", 1)[1]
        extra = {"repository": repo, "number": issue.number, "state": issue.state, "comments": issue.comments,
                 "updated_at": issue.updated_at}
        return Mention(
            source=self.type,
            native_id=str(issue.id),
            brand=self.brand,
            kind="pull_request" if issue.pull_request is not None else "issue",
            title=title or None,
            text=text or title,
            created_at=created,
            url=url,
            author=author,
            extra={k: v for k, v in extra.items() if v is not None},
        )

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: walk the window from ``since`` to now again (stored items are kept)."""
        return dump_state({"since": int(since.timestamp()), "upto": None, "top": None})

    def reach(self, handle: str) -> tuple[int, str] | None:
        """Followers from ``GET /users/{login}`` (None when ``fetch_followers`` is off)."""
        if not getattr(self.settings, "fetch_followers", True):
            return None
        data, _ = self._get(f"/users/{quote(handle, safe='')}")
        followers = data.get("followers") if isinstance(data, dict) else None
        if isinstance(followers, int) and not isinstance(followers, bool):
            return followers, "followers"
        return None
