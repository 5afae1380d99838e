"""Lemmy (any instance, API v3): posts and comments naming the brand, through the public search
``GET /api/v3/search?q=<term>&type_=All&sort=New&listing_type=All&page=N&limit=50``, newest
first. No login for public content. The response carries ``posts[]`` (PostView: ``post``,
``creator``, ``community``, ``counts``) and ``comments[]`` (CommentView: ``comment``, ``post``,
``creator``, ``community``, ``counts``), each list paged alike.

Ids: ``ap_id`` (the ActivityPub URL on the home instance) is the global id and the URL, so a
post federated to several instances is stored once; without one, ``<instance>/post/<id>``.
Text is markdown (``post.body``, ``comment.content``), cleaned as ``markdown_text``. Times:
``published`` (0.19 ends in ``Z``; 0.18 wrote naive UTC), else ``counts.published``, else the
fetch time marked ``extra.created_at_estimated`` (never moving the cursor).

The cursor walks the pages of one window newest first and then moves ``since`` to the newest
item, like the Stack Exchange source: ``{"since": S, "page": P, "top": T}``. A page leads to
the next while one of its lists is full and its oldest item is newer than ``since``.

Only API v3 is read (Lemmy 0.19 and most instances). Lemmy 1.0 serves ``/api/v4`` (cursor
pagination); an instance without v3 answers 404, reported as such (not yet supported).

Rate limits are per instance (Lemmy's default allows 60 searches in 10 minutes per IP): the
source makes at most ``search_budget`` searches in any 10 minutes (default 50) and then
ends the run, its cursor kept; a 429 (after the client's retries, which honour Retry-After) or
a ``rate_limit_error`` body means no request to the instance until the wait is over.

Reach: none. Lemmy has no follower counts; a post's votes are kept in ``extra``.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import ITEM_ERRORS, ConfiguredSource, canonical_url, dump_state, parse_time, read_cursor
from monitor.collect._markdown import markdown_text
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention, bounded_int

logger = logging.getLogger(__name__)

PAGE = 50  # the most v3 search returns per list
FIRST_RUN_LOOKBACK = timedelta(days=2)
OVERLAP = 600  # seconds: federation brings items in a little after they were published
MAX_CLOCK_SKEW = timedelta(hours=1)
THROTTLE_WINDOW = 600.0  # seconds: search_budget counts within this window
RATE_LIMIT_WAIT = 60.0  # seconds, after a rate_limit_error body that names no wait
MAX_WAIT = 3600.0
AUTH_ERRORS = {"not_logged_in", "instance_is_private", "incorrect_login"}  # a private instance: login needed
TYPES = {("comments", "posts"): "All", ("posts",): "Posts", ("comments",): "Comments"}
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    page: int = Field(default=1, ge=1, le=1_000)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _Object(BaseModel):
    """``post`` or ``comment`` of a view: every field optional, checked where it is used."""

    model_config = ConfigDict(extra="ignore")

    id: Any = None
    ap_id: Any = None
    published: Any = None
    name: Any = None  # post title
    body: Any = None  # post text (markdown)
    content: Any = None  # comment text (markdown)
    url: Any = None  # a link post's link
    deleted: Any = None
    removed: Any = None
    nsfw: Any = None


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore")

    post: Any = None
    comment: Any = None
    creator: Any = None
    community: Any = None
    counts: Any = None


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    posts: list[Any] = []
    comments: list[Any] = []


def _str(value: Any, limit: int = 2_000) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _http_url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) < 2_000 \
        else None


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _counts(raw: Any, *names: str) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    out = {name: bounded_int(raw.get(name)) for name in names}
    return {k: v for k, v in out.items() if v is not None}


class LemmySource(ConfiguredSource):
    type = "lemmy"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.instance: str = self.settings.instance
        self._searches: deque[float] = deque()  # epoch seconds of this process's recent searches
        self._wait_until = 0.0  # a 429 or rate_limit_error: no request to the instance before

    def queries(self) -> list[str]:
        return list(self.terms.include)

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        now = self.now().timestamp()
        if now < self._wait_until:
            logger.info("%s: rate limited by the instance for %.0fs more", self.key, self._wait_until - now)
            return FetchResult([], dump_state(state), done=True)
        while self._searches and self._searches[0] <= now - THROTTLE_WINDOW:
            self._searches.popleft()
        if len(self._searches) >= self.settings.search_budget:
            logger.info("%s: %d searches in 10 minutes made: the rest waits for the next run", self.key,
                        len(self._searches))
            return FetchResult([], dump_state(state), done=True)
        self._searches.append(now)
        types = tuple(sorted(set(self.settings.types)))
        params = {"q": query, "type_": TYPES[types], "sort": "New", "listing_type": self.settings.listing_type,
                  "page": state.page, "limit": PAGE}
        try:
            data = self.http.get_json(f"{self.instance}/api/v3/search", params=params)
        except CursorError:
            raise
        except SourceError as exc:
            raise self._api_error(exc, now) from None
        if isinstance(data, dict) and "error" in data and not any(k in data for k in ("posts", "comments")):
            raise self._api_error(SourceError(f"{self.key}: error response", status=200,
                                              detail=json.dumps(data)[:300]), now)
        if not isinstance(data, dict) or not any(isinstance(data.get(k), list) for k in ("posts", "comments")):
            raise MalformedResponseError(f"{self.key}: search response has no 'posts' or 'comments' list")
        try:
            page = _Page.model_validate({k: data[k] for k in ("posts", "comments") if isinstance(data.get(k), list)})
        except ValidationError:
            raise MalformedResponseError(f"{self.key}: search response has no 'posts' or 'comments' list") from None
        mentions, skipped, times = [], 0, []
        more = False
        for kind, items in (("post", page.posts), ("comment", page.comments)):
            oldest: int | None = None
            for raw in items:
                try:
                    mention, when = self._to_mention(kind, raw)
                except ITEM_ERRORS as exc:
                    skipped += 1
                    logger.warning("%s: skipped a malformed %s (%s)", self.key, kind, type(exc).__name__)
                    continue
                if when is not None:
                    times.append(when)
                    oldest = when if oldest is None else min(oldest, when)
                if mention is not None:
                    mentions.append(mention)
            if len(items) >= PAGE and (oldest is None or oldest > state.since - OVERLAP):
                more = True  # this list may hold more of the window on the next page
        top = state.top if state.top is not None else (max(times) if times else None)
        if more and state.page < 1_000:
            return FetchResult(mentions, dump_state(_Cursor(since=state.since, page=state.page + 1, top=top)),
                               done=False, skipped=skipped)
        closed = _Cursor(since=max(state.since, top or 0), page=1, top=None)
        return FetchResult(mentions, dump_state(closed), done=True, skipped=skipped)

    def _api_error(self, exc: SourceError, now: float) -> SourceError:
        """What an HTTP error from the instance means; the wait it asks for is kept."""
        detail = exc.detail or ""
        if exc.status == 404:
            return SourceError(
                f"{self.key}: {self.instance} has no Lemmy API v3 (HTTP 404 from /api/v3/search): Lemmy 1.0 and "
                "later serve only /api/v4, which this source does not read yet; or the instance URL is wrong",
                status=404)
        limited = exc.status == 429 or "rate_limit" in detail
        if limited or exc.retry_after is not None:  # 429, a rate_limit_error body, or a 503 naming its wait
            wait = min(exc.retry_after if exc.retry_after is not None else RATE_LIMIT_WAIT, MAX_WAIT)
            self._wait_until = max(self._wait_until, now + wait)
            why = f"rate limited by {self.instance}" if limited else f"{self.instance} unavailable (HTTP {exc.status})"
            return SourceError(f"{self.key}: {why}, retry in {wait:.0f}s", retry_after=wait, status=exc.status)
        error = None
        try:
            body = json.loads(detail) if detail.startswith("{") else None
            error = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            pass
        if isinstance(error, str) and error.isprintable() and len(error) < 100:
            text = f"{self.key}: Lemmy error {error!r}" + (f" (HTTP {exc.status})" if exc.status else "")
            if isinstance(exc, SourceAuthError) or error in AUTH_ERRORS:
                return SourceAuthError(text, status=exc.status)
            return SourceError(text, status=exc.status)
        return exc

    def _parse_cursor(self, cursor: str | None) -> _Cursor:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return _Cursor(since=int((self.now() - FIRST_RUN_LOOKBACK).timestamp()))
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state

    def _time(self, obj: _Object, counts: Any) -> datetime | None:
        """``published`` of the object, else of its counts; None when neither is a time of the past."""
        latest = self.now() + MAX_CLOCK_SKEW
        for value in (obj.published, counts.get("published") if isinstance(counts, dict) else None):
            try:
                when = parse_time(value)
            except ValueError:
                continue
            if when <= latest:
                return when
        return None

    def _to_mention(self, kind: str, raw: Any) -> tuple[Mention | None, int | None]:
        """One view -> (mention or None for a deleted or empty one, its time for the cursor or None
        when estimated). ValueError when it has no id or no text at all."""
        view = _View.model_validate(raw)
        obj = _Object.model_validate(view.post if kind == "post" else view.comment)
        if obj.deleted is True or obj.removed is True:
            return None, None
        local_id = bounded_int(obj.id, 1)
        ap_id = _http_url(obj.ap_id)
        if ap_id is None and local_id is None:
            raise ValueError(f"a {kind} without ap_id or id")
        url = ap_id or f"{self.instance}/{kind}/{local_id}"
        extra: dict[str, Any] = {}
        if ap_id is None:
            extra["id_derived"] = True
        when = self._time(obj, view.counts)
        if when is None:
            created, extra["created_at_estimated"] = self.now(), True
        else:
            created = when
        post = view.post if isinstance(view.post, dict) else {}
        if kind == "post":
            title = markdown_text(_str(obj.name, 10_000)) or None
            text = markdown_text(_str(obj.body, 500_000))
            link = _http_url(obj.url)
            if link:
                extra["link"] = link
        else:
            title = None
            text = markdown_text(_str(obj.content, 500_000))
            link = None
            post_title = markdown_text(_str(post.get("name"), 10_000))
            if post_title:
                extra["post_title"] = post_title[:500]
            post_url = _http_url(post.get("ap_id"))
            if post_url:
                extra["post_url"] = post_url
        if not text and not title:
            if (obj.content is None) if kind == "comment" else (obj.name is None and obj.body is None):
                raise ValueError(f"a {kind} without text")  # malformed, not merely empty
            return None, None
        community = view.community if isinstance(view.community, dict) else {}
        community_name = _str(community.get("name"), 200)
        community_host = _host(_http_url(community.get("actor_id")))
        if community_name:
            extra["community"] = f"{community_name}@{community_host}" if community_host else community_name
        extra.update(_counts(view.counts, "score", "upvotes", "downvotes", "comments", "child_count"))
        if obj.nsfw is True or post.get("nsfw") is True:
            extra["nsfw"] = True
        mention = Mention(
            source=self.type,
            native_id=url,
            brand=self.brand,
            kind=kind,
            title=title,
            text=text or title or "",
            created_at=created,
            url=url,
            canonical_url=canonical_url(link) if link else None,
            author=self._author(view.creator),
            extra=extra,
        )
        return mention, (int(when.timestamp()) if when is not None else None)

    def _author(self, raw: Any) -> Author | None:
        if not isinstance(raw, dict):
            return None
        name = _str(raw.get("name"), 200)
        if not name or raw.get("deleted") is True:
            return None
        actor = _http_url(raw.get("actor_id"))
        host = _host(actor) or _host(self.instance)
        display = raw.get("display_name")
        return Author(source=self.type, handle=f"{name}@{host}" if host else name,
                      display_name=display if isinstance(display, str) and display else None, url=actor)

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: walk the window from ``since`` to now again (stored items are kept)."""
        return dump_state(_Cursor(since=int(since.timestamp())))
