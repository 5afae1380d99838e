"""Discourse forums (any public forum): posts naming the brand, from the forum's public JSON.

Two modes:

* ``search`` (default): ``GET /search.json?q=<term> order:latest after:<date>&page=N`` returns
  ``posts[]`` (``id, username, name, created_at, blurb, topic_id, post_number, like_count``) and
  ``topics[]`` (``id, title, slug, category_id, tags``), newest first, 50 a page, with
  ``grouped_search_result.more_full_page_results`` when more are waiting. A ``blurb`` is an
  excerpt of about 200 characters around the hit; with ``full_text`` (default) the whole
  posts come from ``GET /t/<topic_id>/posts.json?post_ids[]=...`` (one request per topic of a
  page); a post stored from its blurb alone is marked ``extra.excerpt_only``.
* ``latest``: every new post of the forum, ``GET /posts.json`` (``latest_posts[]`` with
  ``cooked``), walked down with ``before=<post id>``; the brand's terms filter them as for
  any source. For a brand's own forum.

Post URL: ``<forum>/t/<slug>/<topic_id>/<post_number>`` (``/t/<topic_id>/<post_number>``
without a slug, ``/p/<id>`` without a topic). ``cooked`` is HTML rendered once, made text as
the Stack Exchange source does (code kept as written). Reach: none: the trust level (0-4)
is a standing on one forum, not an audience; it is kept in ``extra.trust_level``.

Cursors: search ``{"since", "page", "top"}`` like Stack Exchange; latest
``{"last_id", "before", "top", "since"}``: posts above ``last_id`` (the newest stored), walked
down from the newest; the first run (``last_id`` 0) goes back to ``since``.

Requests go through the project's client one at a time (``send``: the SSRF guard, the deadline,
the size cap); their status is judged here. ``Api-Key``/``Api-Username`` headers (optional,
``${ENV}``) for forums that need a login. Rate limits: 429 with ``Retry-After``, or an
``error_type: rate_limit`` body with ``extras.wait_seconds``: a short wait (<= 10 s) is waited
once, a longer one fails the run with ``retry_after`` and no request goes to the forum before
it ends. A search answered with ``grouped_search_result.error`` (Discourse's "slow down") is
treated the same. 401/403: an auth failure (a private forum, a refused key); a redirect
names where the forum lives.
"""

from __future__ import annotations

import json
import logging
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
)
from monitor.collect.stackexchange import html_to_text
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.http_client import parse_retry_after, safe_url
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention, bounded_int

logger = logging.getLogger(__name__)

PAGE = 50  # search and /posts.json both answer 50 at most
FIRST_RUN_LOOKBACK = timedelta(days=2)
OVERLAP = 600  # seconds: the search index lags a little
MAX_CLOCK_SKEW = timedelta(hours=1)
SHORT_WAIT = 10.0  # seconds: a rate limit this short is waited out once, in the run
RATE_LIMIT_WAIT = 60.0  # when a rate limit names no wait
MAX_WAIT = 3600.0
MAX_TOPICS = 25  # full-text requests per search page at most; the others keep their blurb
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())
_ID_MAX = 2**53
_NOT_JSON = object()


class _SearchCursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    page: int = Field(default=1, ge=1, le=1_000)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _LatestCursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    last_id: int = Field(default=0, ge=0, le=_ID_MAX)
    before: int | None = Field(default=None, ge=1, le=_ID_MAX)
    top: int | None = Field(default=None, ge=1, le=_ID_MAX)
    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _Post(BaseModel):
    """A post of search (``blurb``), of ``/posts.json`` or of a topic (``cooked``)."""

    model_config = ConfigDict(extra="ignore")

    id: int = Field(ge=1, le=_ID_MAX)
    topic_id: Any = None
    post_number: Any = None
    created_at: Any = None
    username: Any = None
    name: Any = None
    blurb: Any = None
    cooked: Any = None
    topic_slug: Any = None
    topic_title: Any = None
    trust_level: Any = None
    like_count: Any = None
    reply_count: Any = None
    post_type: Any = None
    hidden: Any = None
    deleted_at: Any = None
    user_deleted: Any = None
    category_id: Any = None


def _str(value: Any, limit: int = 2_000) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def search_term(term: str) -> str:
    """A brand term for Discourse search: quoted when it has spaces."""
    inner = term.strip().strip('"').replace('"', " ").strip()
    return f'"{inner}"' if any(c.isspace() for c in inner) else inner


def blurb_text(value: str | None) -> str:
    """A search blurb: plain text around the hit, perhaps with ``<span class="search-highlight">``
    markup: real HTML tags dropped, entities decoded, ``<T>`` as typed kept."""
    return tidy_text(drop_html_tags(value, entities=True)) if value else ""


class DiscourseSource(ConfiguredSource):
    type = "discourse"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.forum: str = self.settings.forum
        self._wait_until = 0.0  # epoch seconds: no request to the forum before (a rate limit)

    def queries(self) -> list[str]:
        return ["latest"] if self.settings.mode == "latest" else list(self.terms.include)

    # ---------------------------------------------------------------------------- HTTP

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key, user = self.settings.api_key, self.settings.api_username
        if key is not None and user is not None:
            headers["Api-Key"] = key.get_secret_value()
            headers["Api-Username"] = user.get_secret_value()
        return headers

    def _get(self, path: str, params: list[tuple[str, Any]] | dict[str, Any] | None = None) -> Any:
        """One GET judged here: rate limits (waited once when short), auth, redirects, JSON."""
        url = str(httpx.URL(f"{self.forum}{path}", params=params or {}))
        where = safe_url(url)
        for attempt in (1, 2):
            try:
                status, headers, body = self.http.send("GET", url, headers=self._headers())
            except SourceError:
                raise
            except httpx.HTTPError as exc:
                raise SourceError(f"{where}: {type(exc).__name__} talking to the forum") from None
            detail = body[:300].decode("utf-8", "replace")
            data = self._json(body)
            limited = status == 429 or (isinstance(data, dict) and data.get("error_type") == "rate_limit")
            if limited:
                wait = self._rate_limit_wait(headers, data)
                if attempt == 1 and wait <= SHORT_WAIT:
                    logger.info("%s: rate limited, waiting %.0fs", where, wait)
                    self.http.policy.sleep(wait)
                    continue
                self._wait_until = max(self._wait_until, self.now().timestamp() + wait)
                raise SourceError(f"{where}: HTTP {status}: the forum's rate limit, retry in {wait:.0f}s",
                                  retry_after=wait, status=status, detail=detail)
            if status in (401, 403):
                why = "the API key was refused" if self.settings.api_key is not None else \
                    "the forum needs a login (set api_key and api_username)"
                raise SourceAuthError(f"{where}: HTTP {status}: {why}", status=status, detail=detail)
            if status in (301, 302, 303, 307, 308):
                location = headers.get("location") or ""
                to = safe_url(httpx.URL(url).join(location)) if location else "elsewhere"
                raise SourceError(f"{where}: HTTP {status}: the forum redirects to {to}; set forum to where it "
                                  "lives", status=status)
            if status == 404:
                raise SourceError(f"{where}: HTTP 404: not found (is {self.forum} a Discourse forum?)",
                                  status=404, detail=detail)
            if not 200 <= status < 300:
                raise SourceError(f"{where}: HTTP {status}", status=status, detail=detail,
                                  retry_after=parse_retry_after(headers.get("retry-after")))
            if data is _NOT_JSON:
                raise MalformedResponseError(f"{where}: response is not valid JSON")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # JSONDecodeError, huge ints, deep nesting, bad UTF-8
            return _NOT_JSON

    @staticmethod
    def _rate_limit_wait(headers: httpx.Headers, data: Any) -> float:
        wait = parse_retry_after(headers.get("retry-after"))
        if wait is None and isinstance(data, dict) and isinstance(data.get("extras"), dict):
            seconds = data["extras"].get("wait_seconds")
            if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 <= seconds < 1e9:
                wait = float(seconds)
        return min(wait if wait is not None else RATE_LIMIT_WAIT, MAX_WAIT)

    # ---------------------------------------------------------------------------- fetch

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        if self.settings.mode == "latest":
            latest = self._latest_cursor(cursor)  # before any request: CursorError when unreadable
            if self._waiting():
                return FetchResult([], dump_state(latest), done=True)
            return self._fetch_latest(latest)
        state = self._search_cursor(cursor)
        if self._waiting():
            return FetchResult([], dump_state(state), done=True)
        return self._fetch_search(query, state)

    def _waiting(self) -> bool:
        left = self._wait_until - self.now().timestamp()
        if left > 0:
            logger.info("%s: rate limited by the forum for %.0fs more", self.key, left)
        return left > 0

    def _fetch_search(self, query: str, state: _SearchCursor) -> FetchResult:
        after = datetime.fromtimestamp(max(_EPOCH_MIN, state.since - OVERLAP), UTC) - timedelta(days=1)
        q = f"{search_term(query)} order:latest after:{after:%Y-%m-%d}"
        data = self._get("/search.json", {"q": q, "page": state.page})
        if not isinstance(data, dict) or not isinstance(data.get("posts", []), list) or (
                "posts" not in data and not isinstance(data.get("grouped_search_result"), dict)):
            raise MalformedResponseError(f"{self.key}: search response has no 'posts' list")
        grouped = data.get("grouped_search_result")
        grouped = grouped if isinstance(grouped, dict) else {}
        error = grouped.get("error")
        if error:  # "You’ve performed this action too many times": the search's own rate limit
            self._wait_until = max(self._wait_until, self.now().timestamp() + RATE_LIMIT_WAIT)
            raise SourceError(f"{self.key}: the forum's search refused: {str(error)[:200]}",
                              retry_after=RATE_LIMIT_WAIT)
        topics = {t["id"]: t for t in data.get("topics") or [] if isinstance(t, dict)
                  and isinstance(t.get("id"), int) and not isinstance(t.get("id"), bool)}
        raws: list[Any] = data.get("posts") or []
        posts: list[_Post | None] = []
        skipped = 0
        for raw in raws:
            try:
                posts.append(_Post.model_validate(raw))
            except ValidationError as exc:
                posts.append(None)
                skipped += 1
                logger.warning("%s: skipped a malformed post (%s)", self.key, type(exc).__name__)
        full = self._full_posts([p for p in posts if p is not None]) if self.settings.full_text else {}
        mentions, times = [], []
        for post in posts:
            if post is None:
                continue
            try:
                mention, when = self._to_mention(post, topics.get(bounded_int(post.topic_id)), full.get(post.id))
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed post (%s)", self.key, type(exc).__name__)
                continue
            if when is not None:
                times.append(when)
            if mention is not None:
                mentions.append(mention)
        top = state.top if state.top is not None else (max(times) if times else None)
        more = grouped.get("more_full_page_results") is True or (
            "more_full_page_results" not in grouped and len(raws) >= PAGE)
        if more and raws and (not times or min(times) > state.since - OVERLAP) and state.page < 1_000:
            nxt = _SearchCursor(since=state.since, page=state.page + 1, top=top)
            return FetchResult(mentions, dump_state(nxt), done=False, skipped=skipped)
        closed = _SearchCursor(since=max(state.since, top or 0), page=1, top=None)
        return FetchResult(mentions, dump_state(closed), done=True, skipped=skipped)

    def _full_posts(self, posts: list[_Post]) -> dict[int, _Post]:
        """The whole posts behind search hits, one request per topic (``MAX_TOPICS`` at most).
        A topic that cannot be read (deleted, private, a rate limit) keeps its blurbs."""
        by_topic: dict[int, list[int]] = {}
        for p in posts:
            topic = bounded_int(p.topic_id, 1, _ID_MAX)
            if topic is not None:
                by_topic.setdefault(topic, []).append(p.id)
        found: dict[int, _Post] = {}
        for topic, ids in list(by_topic.items())[:MAX_TOPICS]:
            params = [("post_ids[]", i) for i in ids]
            try:
                data = self._get(f"/t/{topic}/posts.json", params)
            except SourceAuthError as exc:
                logger.info("%s: topic %d cannot be read (%s): blurbs kept", self.key, topic, exc.status)
                continue
            except SourceError as exc:
                logger.warning("%s: topic %d: %s: blurbs kept", self.key, topic, exc)
                if exc.retry_after is not None:
                    break  # rate limited: the rest keep their blurbs too
                continue
            stream = data.get("post_stream") if isinstance(data, dict) else None
            items = stream.get("posts") if isinstance(stream, dict) else None
            for raw in items if isinstance(items, list) else []:
                try:
                    post = _Post.model_validate(raw)
                except ValidationError:
                    continue
                if post.id in ids:
                    found[post.id] = post
        return found

    def _fetch_latest(self, state: _LatestCursor) -> FetchResult:
        data = self._get("/posts.json", {"before": state.before} if state.before is not None else None)
        raws = data.get("latest_posts") if isinstance(data, dict) else None
        if not isinstance(raws, list):
            raise MalformedResponseError(f"{self.key}: /posts.json has no 'latest_posts' list")
        mentions, skipped, ids, times = [], 0, [], []
        for raw in raws:
            try:
                post = _Post.model_validate(raw)
                ids.append(post.id)
                if post.id <= state.last_id:
                    continue  # stored already
                mention, when = self._to_mention(post, None, None)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed post (%s)", self.key, type(exc).__name__)
                continue
            if when is not None:
                times.append(when)
            if mention is not None:
                mentions.append(mention)
        top = state.top if state.top is not None else (max(ids) if ids else None)
        lowest = min(ids) if ids else None
        older = state.last_id == 0 and times and min(times) < state.since  # the first run's lookback reached
        if lowest is not None and lowest > state.last_id + 1 and not older \
                and (state.before is None or lowest < state.before):
            nxt = _LatestCursor(last_id=state.last_id, before=lowest, top=top, since=state.since)
            return FetchResult(mentions, dump_state(nxt), done=False, skipped=skipped)
        closed = _LatestCursor(last_id=max(state.last_id, top or 0), since=state.since)
        return FetchResult(mentions, dump_state(closed), done=True, skipped=skipped)

    # ---------------------------------------------------------------------------- items

    def _search_cursor(self, cursor: str | None) -> _SearchCursor:
        state = read_cursor(_SearchCursor, cursor, self.key)
        if state is None:
            return _SearchCursor(since=_epoch(self.now() - FIRST_RUN_LOOKBACK))
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state

    def _latest_cursor(self, cursor: str | None) -> _LatestCursor:
        state = read_cursor(_LatestCursor, cursor, self.key)
        if state is None:
            return _LatestCursor(since=_epoch(self.now() - FIRST_RUN_LOOKBACK))
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state

    def _time(self, *values: Any) -> datetime | None:
        latest = self.now() + MAX_CLOCK_SKEW
        for value in values:
            try:
                when = parse_time(value)
            except ValueError:
                continue
            if when <= latest:
                return when
        return None

    def _to_mention(self, post: _Post, topic: dict[str, Any] | None, whole: _Post | None) -> tuple[
            Mention | None, int | None]:
        """(mention or None for a hidden, deleted or empty post, its time for the cursor or None
        when estimated). ValueError for a post with no text at all."""
        if post.post_type == 3 or post.hidden is True or post.deleted_at or post.user_deleted is True:
            return None, None  # a small action ("closed the topic") or a post gone
        topic = topic or {}
        extra: dict[str, Any] = {}
        cooked = _str(post.cooked, 1_000_000) or (_str(whole.cooked, 1_000_000) if whole else None)
        if cooked is not None:
            text = html_to_text(cooked)
        elif post.blurb is not None:
            text = blurb_text(_str(post.blurb, 10_000))
            extra["excerpt_only"] = True
        else:
            raise ValueError("a post without cooked or blurb")
        topic_id = bounded_int(post.topic_id, 1, _ID_MAX)
        number = bounded_int(post.post_number, 1, _ID_MAX)
        slug = _str(post.topic_slug, 300) or _str(topic.get("slug"), 300) or (
            _str(whole.topic_slug, 300) if whole else None)
        if topic_id is None:
            url = f"{self.forum}/p/{post.id}"
        elif number is None:
            url = f"{self.forum}/t/{quote(slug, safe='') + '/' if slug else ''}{topic_id}"
        else:
            url = f"{self.forum}/t/{quote(slug, safe='') + '/' if slug else ''}{topic_id}/{number}"
        title = blurb_text(_str(post.topic_title, 1_000) or _str(topic.get("title"), 1_000)) or None
        if not text and not title:
            return None, None
        when = self._time(post.created_at, whole.created_at if whole else None,
                          topic.get("created_at") if number == 1 else None)
        if when is None:
            created, extra["created_at_estimated"] = self.now(), True
        else:
            created = when
        trust = bounded_int(post.trust_level if post.trust_level is not None else (
            whole.trust_level if whole else None), 0, 4)
        for name, value in (("topic_id", topic_id), ("post_number", number), ("trust_level", trust),
                            ("likes", bounded_int(post.like_count, 0)),
                            ("replies", bounded_int(post.reply_count, 0)),
                            ("category_id", bounded_int(post.category_id if post.category_id is not None
                                                        else topic.get("category_id"), 0))):
            if value is not None:
                extra[name] = value
        tags = topic.get("tags")
        if isinstance(tags, list):
            names = [t[:100] for t in tags if isinstance(t, str) and t][:20]
            if names:
                extra["tags"] = names
        return Mention(
            source=self.type,
            native_id=f"{self._forum_id()}:{post.id}",
            brand=self.brand,
            kind="post" if number in (None, 1) else "comment",  # a reply: only its own text can match
            title=title,
            text=text or title or "",
            created_at=created,
            url=url,
            author=self._author(post, whole),
            extra=extra,
        ), (_epoch(when) if when is not None else None)

    def _forum_id(self) -> str:
        u = httpx.URL(self.forum)
        return f"{u.host}{':' + str(u.port) if u.port else ''}{u.path.rstrip('/')}"

    def _author(self, post: _Post, whole: _Post | None) -> Author | None:
        username = _str(post.username, 200) or (_str(whole.username, 200) if whole else None)
        if not username:
            return None
        name = _str(post.name, 200) or (_str(whole.name, 200) if whole else None)
        return Author(source=self.type, handle=f"{username}@{self._forum_id()}", display_name=name,
                      url=f"{self.forum}/u/{quote(username, safe='')}")

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: search walks the window from ``since`` again; latest walks back to ``since``."""
        if self.settings.mode == "latest":
            return dump_state(_LatestCursor(since=_epoch(since)))
        return dump_state(_SearchCursor(since=_epoch(since)))
