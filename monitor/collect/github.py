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

Discussions (``discussions: true``) are searched only by the GraphQL API
(``POST /graphql``, ``search(type: DISCUSSION)``; ``/api/graphql`` on GitHub Enterprise),
which refuses anonymous calls: without a token they are skipped (a log line, and
``monitor check`` says so). Each term then has a second query, ``discussions:<term>``, with
its own cursor walking the same ``created:`` window, 50 discussions a page. ``bodyText`` is
plain text (GitHub renders the markdown): kept as typed, HTML elements made inert, character
references decoded once (``<...>`` that is no HTML element, "<3", stays). GraphQL
answers 200 with ``errors``: ``RATE_LIMITED`` is a retryable SourceError (``x-ratelimit-reset``
or ``rateLimit.resetAt``), a field or type GitHub no longer knows (``undefinedField``,
``undefinedType``) is an ApiChangedError, any other error without data is a SourceError naming
it; errors beside data (a node hidden by an organisation's SAML policy) are logged and the rest
kept. ``rateLimit.remaining`` 0 ends the run after the page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import (
    ITEM_ERRORS,
    ConfiguredSource,
    drop_html_tags,
    dump_state,
    parse_time,
    read_cursor,
    tidy_text,
    time_or_none,
    window_step,
)
from monitor.collect._markdown import markdown_text
from monitor.errors import ApiChangedError, CursorError, MalformedResponseError, SourceAuthError, SourceError
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
DISCUSSIONS = "discussions:"  # the query of a term's discussions: "discussions:<term>"
DISCUSSIONS_PER_PAGE = 50
_SCHEMA_CODES = ("undefinedField", "undefinedType", "argumentNotAccepted")  # GraphQL: the schema moved
DISCUSSION_QUERY = """query($q: String!, $first: Int!) {
  search(query: $q, type: DISCUSSION, first: $first) {
    discussionCount
    nodes {
      ... on Discussion {
        id number url title bodyText createdAt updatedAt
        author { login url }
        repository { nameWithOwner }
        comments { totalCount }
      }
    }
  }
  rateLimit { cost remaining resetAt }
}"""


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


class _Login(BaseModel):
    model_config = ConfigDict(extra="ignore")

    login: str
    url: str | None = None


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    nameWithOwner: str | None = None


class _Count(BaseModel):
    model_config = ConfigDict(extra="ignore")

    totalCount: int | None = None


class _Discussion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    number: int | None = None
    url: str | None = None
    title: str | None = None
    bodyText: str | None = None
    createdAt: str
    updatedAt: str | None = None
    author: _Login | None = None  # null for a deleted account
    repository: _Repository | None = None
    comments: _Count | None = None


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
        terms = list(self.terms.include)
        if not getattr(self.settings, "discussions", False):
            return terms
        if self.settings.token is None:
            logger.info("%s: discussions need a token (GitHub's GraphQL API): skipped", self.key)
            return terms
        return terms + [DISCUSSIONS + t for t in terms]

    def _graphql_url(self) -> str:
        base = self.base_url
        return f"{base[:-3]}/graphql" if base.endswith("/v3") else f"{base}/graphql"  # Enterprise: /api/graphql

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        token = self.settings.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        return headers

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, httpx.Headers]:
        """One GET judged here (GitHub's rate limits are told by headers and bodies)."""
        return self._send("GET", str(httpx.URL(f"{self.base_url}{path}", params=params or {})))

    def _send(self, method: str, url: str, payload: Any = None) -> tuple[Any, httpx.Headers]:
        sent = self._headers()
        content = None
        if payload is not None:
            content = json.dumps(payload).encode()
            sent["Content-Type"] = "application/json"
        try:
            status, headers, body = self.http.send(method, url, content=content, headers=sent)
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
        if query.startswith(DISCUSSIONS):
            return self._discussions(query[len(DISCUSSIONS):], state, created)
        q = f"{search_term(query)} in:title,body,comments {created}"
        params = {"q": q, "sort": "created", "order": "desc", "per_page": PER_PAGE, "page": 1}
        data, headers = self._get("/search/issues", params)
        try:
            page = _Page.model_validate(data)
        except ValidationError:
            raise MalformedResponseError(f"{self.key}: search response has no 'items' list") from None
        if page.incomplete_results:
            logger.warning("%s: GitHub's search timed out: results of this page may be incomplete", self.key)
        mentions, skipped, times = self._read_items(
            page.items, "issue", _read_issue, self._to_mention)
        full = len(page.items) >= PER_PAGE
        next_state, done = window_step(state, times, full)
        if headers.get("x-ratelimit-remaining") == "0":
            done = True  # the rest waits for the next run (the cursor keeps the window)
        return FetchResult(mentions, dump_state(next_state), done=done, skipped=skipped)

    def _discussions(self, term: str, state: dict, created: str) -> FetchResult:
        """One page of discussions naming ``term`` (GraphQL search), newest first."""
        if self.settings.token is None:  # queries() leaves them out; a cursor of an old config may not
            raise SourceAuthError(f"{self.key}: discussions need a token (GitHub's GraphQL API)")
        q = f"{search_term(term)} in:title,body,comments {created} sort:created-desc"
        payload = {"query": DISCUSSION_QUERY, "variables": {"q": q, "first": DISCUSSIONS_PER_PAGE}}
        url = self._graphql_url()
        data, headers = self._send("POST", url, payload)
        nodes, limit = self._graphql_nodes(data, headers, url)
        # a node hidden from this token (SAML, a deleted repository) is no item
        visible = [raw for raw in nodes if raw is not None and raw != {}]
        mentions, skipped, times = self._read_items(
            visible, "discussion", _read_discussion, self._discussion_mention)
        next_state, done = window_step(state, times, len(nodes) >= DISCUSSIONS_PER_PAGE)
        if limit is not None and limit.get("remaining") == 0:
            done = True  # the rest waits for the next run (the cursor keeps the window)
        return FetchResult(mentions, dump_state(next_state), done=done, skipped=skipped)

    def _read_items(self, raws: list[Any], what: str, read: Callable[[Any], tuple[Any, datetime]],
                    to_mention: Callable[[Any, datetime], Mention | None]) -> tuple[list[Mention], int, list[int]]:
        """Mentions of one page's items, how many were malformed (each logged and skipped, never
        the page), and the creation times (epoch seconds) of the readable ones for the window."""
        mentions: list[Mention] = []
        skipped, times = 0, []
        for raw in raws:
            try:
                item, created_at = read(raw)
                if created_at > self.now() + MAX_CLOCK_SKEW:
                    raise ValueError("created in the future")
                mention = to_mention(item, created_at)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed %s (%s)", self.key, what, type(exc).__name__)
                continue
            times.append(int(created_at.timestamp()))
            if mention is not None:
                mentions.append(mention)
        return mentions, skipped, times

    def _graphql_nodes(self, data: Any, headers: httpx.Headers, url: str) -> tuple[list[Any], dict | None]:
        """``data.search.nodes`` and ``rateLimit`` of a GraphQL answer, its ``errors`` judged."""
        where = safe_url(url)
        if not isinstance(data, dict):
            raise MalformedResponseError(f"{where}: GraphQL answer is not an object")
        errors = [e for e in data.get("errors") or [] if isinstance(e, dict)] if isinstance(
            data.get("errors"), list) else []
        body = data.get("data")
        search = body.get("search") if isinstance(body, dict) else None
        limit = body.get("rateLimit") if isinstance(body, dict) and isinstance(body.get("rateLimit"), dict) else None
        if errors:
            first = errors[0]
            message = str(first.get("message") or "")[:200]
            kind = str(first.get("type") or "")
            ext = first.get("extensions")
            code = str(ext.get("code") or "") if isinstance(ext, dict) else ""
            if any(str(e.get("type") or "") == "RATE_LIMITED" for e in errors):
                wait = self._wait(headers)
                if wait is None and limit is not None:
                    reset = time_or_none(limit.get("resetAt"))
                    wait = max(0.0, (reset - self.now()).total_seconds()) if reset is not None else None
                raise SourceError(f"{where}: GitHub GraphQL rate limit"
                                  + (f", retry in {wait:.0f}s" if wait is not None else ""),
                                  retry_after=wait, detail=message)
            if code in _SCHEMA_CODES:
                raise ApiChangedError(f"{self.key}: GitHub's GraphQL schema changed: {message}")
            if search is None:
                raise SourceError(f"{where}: GitHub GraphQL refused the search: {kind or code or 'error'}: {message}",
                                  detail=message)
            logger.warning("%s: GitHub GraphQL answered with %d error(s) beside the data, first: %s", self.key,
                           len(errors), message)
        nodes = search.get("nodes") if isinstance(search, dict) else None
        if not isinstance(nodes, list):
            raise MalformedResponseError(f"{where}: GraphQL answer has no 'data.search.nodes' list")
        return nodes, limit

    def _discussion_mention(self, node: _Discussion, created: datetime) -> Mention | None:
        title = tidy_text(drop_html_tags(node.title or "", entities=True))
        text = tidy_text(drop_html_tags(node.bodyText or "", entities=True))
        if not text and not title:
            return None
        url = node.url if node.url and node.url.startswith(("https://", "http://")) else None
        author = None
        if node.author is not None and node.author.login:
            user_url = node.author.url
            author = Author(source=self.type, handle=node.author.login,
                            url=user_url if user_url and user_url.startswith(("https://", "http://")) else None)
        extra = {"repository": node.repository.nameWithOwner if node.repository else None, "number": node.number,
                 "comments": node.comments.totalCount if node.comments else None, "updated_at": node.updatedAt}
        return Mention(
            source=self.type,
            native_id=node.id,
            brand=self.brand,
            kind="discussion",
            title=title or None,
            text=text or title,
            created_at=created,
            url=url,
            author=author,
            extra={k: v for k, v in extra.items() if v is not None},
        )

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


def _read_issue(raw: Any) -> tuple[_Issue, datetime]:
    issue = _Issue.model_validate(raw)
    return issue, parse_time(issue.created_at)


def _read_discussion(raw: Any) -> tuple[_Discussion, datetime]:
    node = _Discussion.model_validate(raw)
    return node, parse_time(node.createdAt)
