"""Hacker News through the Algolia HN Search API (https://hn.algolia.com/api).

``GET /search_by_date?query=...&tags=(story,comment)&numericFilters=created_at_i>N``
returns hits newest first. The cursor walks a time window downwards so that a run
cut short (max_pages, a crash, an outage) resumes where it stopped and never skips:

    {"since": S, "upto": U, "top": T}

* ``since``: everything at or before S is stored.
* ``upto``: while a window is being walked, items newer than U are stored too.
* ``top``: the newest item of the window; when the walk reaches ``since`` it becomes
  the next ``since``.

Every query also reaches ``OVERLAP`` seconds below ``since``: Algolia indexes an item
a little after it was created, so an item older than the newest one seen can appear
later. Items fetched again are dropped by the store's unique key.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import (
    ITEM_ERRORS,
    ConfiguredSource,
    canonical_url,
    drop_blocks,
    dump_state,
    parse_time,
    read_cursor,
    replace_tags,
    window_step,
)
from monitor.errors import CursorError, MalformedResponseError
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://hn.algolia.com/api/v1"
HITS_PER_PAGE = 100
FIRST_RUN_LOOKBACK = timedelta(days=2)
OVERLAP = 600  # seconds: more than Algolia's indexing delay
MAX_CLOCK_SKEW = timedelta(hours=1)


_PARA = re.compile(r"p\s*/?", re.IGNORECASE)
_BREAK = re.compile(r"br\s*/?", re.IGNORECASE)
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())


def _hn_tag(tag: str) -> str:
    if _PARA.fullmatch(tag):
        return "\n\n"
    if _BREAK.fullmatch(tag):
        return "\n"
    return "<>" if not tag else ""


def html_to_text(value: str | None) -> str:
    """HN comment HTML (<p>, <a>, <i>, <pre><code>, entities) -> plain text.

    HN escapes a comment's text exactly once, so an entity decoded here is text the
    author typed ("Vec&lt;String&gt;" is "Vec<String>"): unlike feeds (strip_html), it is
    never decoded or stripped a second time. Linear time (collect/_common.py)."""
    if not value:
        return ""
    return html.unescape(replace_tags(drop_blocks(value, ("script", "style")), _hn_tag)).strip()


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    upto: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _Hit(BaseModel):
    model_config = ConfigDict(extra="ignore")

    objectID: str
    created_at_i: int
    author: str | None = None
    title: str | None = None
    url: str | None = None
    story_text: str | None = None
    comment_text: str | None = None
    story_id: int | None = None
    story_title: str | None = None
    points: int | None = None
    num_comments: int | None = None
    _tags: list[str] = []


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hits: list[Any]
    nbPages: int | None = None
    page: int | None = None


class HackerNewsSource(ConfiguredSource):
    type = "hackernews"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = self.settings.base_url or DEFAULT_BASE_URL

    def queries(self) -> list[str]:
        return list(self.terms.include)

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        filters = f"created_at_i>{max(0, state['since'] - OVERLAP)}"
        if state["upto"] is not None:
            filters += f",created_at_i<={state['upto']}"
        tags = self.settings.tags
        params = {
            "query": query,
            "tags": f"({','.join(tags)})" if len(tags) > 1 else tags[0],
            "numericFilters": filters,
            "hitsPerPage": HITS_PER_PAGE,
        }
        data = self.http.get_json(f"{self.base_url}/search_by_date", params=params)
        try:
            page = _Page.model_validate(data)
        except ValidationError:
            raise MalformedResponseError(f"{self.key}: search response has no 'hits' list") from None
        mentions, skipped, times = [], 0, []
        for raw in page.hits:
            try:
                hit = _Hit.model_validate(raw)
                mention = self._to_mention(hit, raw)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed hit (%s)", self.key, type(exc).__name__)
                continue
            times.append(hit.created_at_i)
            if mention is not None:
                mentions.append(mention)
        full = len(page.hits) >= HITS_PER_PAGE
        next_state, done = window_step(state, times, full)
        return FetchResult(mentions, dump_state(next_state), done=done, skipped=skipped)

    def _parse_cursor(self, cursor: str | None) -> dict:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            since = int((self.now() - FIRST_RUN_LOOKBACK).timestamp())
            return {"since": since, "upto": None, "top": None}
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():  # would wait for the future forever
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state.model_dump()

    def _to_mention(self, hit: _Hit, raw: dict) -> Mention | None:
        tags = raw.get("_tags") or []
        is_comment = "comment" in tags or hit.comment_text is not None
        created = parse_time(hit.created_at_i)
        if created > self.now() + MAX_CLOCK_SKEW:  # would move the cursor past every future item
            raise ValueError(f"created_at_i {hit.created_at_i} is in the future")
        text = html_to_text(hit.comment_text if is_comment else hit.story_text)
        title = hit.story_title if is_comment else hit.title
        if not text and not title:
            return None
        item_url = f"https://news.ycombinator.com/item?id={hit.objectID}"
        author = None
        if hit.author:
            author = Author(source=self.type, handle=hit.author, url=f"https://news.ycombinator.com/user?id={hit.author}")
        return Mention(
            source=self.type,
            native_id=hit.objectID,
            brand=self.brand,
            kind="comment" if is_comment else "story",
            title=title or None,
            text=text or title or "",
            created_at=created,
            url=item_url,
            canonical_url=canonical_url(hit.url) if not is_comment else None,
            author=author,
            extra={k: v for k, v in {"points": hit.points, "story_id": hit.story_id,
                                     "num_comments": hit.num_comments}.items() if v is not None},
        )

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: walk the window from ``since`` to now again (stored items are kept)."""
        return dump_state({"since": int(since.timestamp()), "upto": None, "top": None})

    def reach(self, handle: str) -> tuple[int, str] | None:
        """Author karma from ``GET /users/<name>`` (None when ``fetch_karma`` is off)."""
        if not getattr(self.settings, "fetch_karma", True):
            return None
        data = self.http.get_json(f"{self.base_url}/users/{quote(handle, safe='')}")
        karma = data.get("karma") if isinstance(data, dict) else None
        if isinstance(karma, int) and not isinstance(karma, bool):
            return karma, "karma"
        return None
