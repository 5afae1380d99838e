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
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.collect._common import canonical_url
from monitor.errors import MalformedResponseError
from monitor.records import Author, FetchResult, Mention
from monitor.textutil import safe_text

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://hn.algolia.com/api/v1"
HITS_PER_PAGE = 100
FIRST_RUN_LOOKBACK = timedelta(days=2)
OVERLAP = 600  # seconds: more than Algolia's indexing delay
MAX_CLOCK_SKEW = timedelta(hours=1)


_TAG = re.compile(r"<[^>]+>")
_DROP_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_PARA = re.compile(r"<p\s*/?>", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def html_to_text(value: str | None) -> str:
    """HN comment HTML (<p>, <a>, <i>, <pre><code>, entities) -> plain text.

    HN escapes a comment's text exactly once, so an entity decoded here is text the
    author typed ("Vec&lt;String&gt;" is "Vec<String>"): unlike feeds (strip_html), it is
    never decoded or stripped a second time."""
    if not value:
        return ""
    text = _BREAK.sub("\n", _PARA.sub("\n\n", _DROP_BLOCKS.sub(" ", value)))
    return html.unescape(_TAG.sub("", text)).strip()


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


class HackerNewsSource:
    type = "hackernews"

    def __init__(self, *, brand, settings, http_factory, now) -> None:
        self.brand = brand.name
        self.settings = settings
        self.key = f"{brand.name}:{settings.name or settings.type}"
        self.base_url = settings.base_url or DEFAULT_BASE_URL
        self.http = http_factory()
        self.now = now
        self._terms = settings.terms or brand.terms

    def queries(self) -> list[str]:
        return list(self._terms.include)

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)
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
            except (ValidationError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed hit (%s)", self.key, type(exc).__name__)
                continue
            times.append(hit.created_at_i)
            if mention is not None:
                mentions.append(mention)
        full = len(page.hits) >= HITS_PER_PAGE
        top = state["top"] if state["top"] is not None else (max(times) if times else None)
        if full and times:
            upto = min(times)
            if state["upto"] is not None and upto >= state["upto"]:
                upto = state["upto"] - 1  # >100 hits in one second: move on rather than loop
            next_state = {"since": state["since"], "upto": upto, "top": top}
            done = False
        else:
            next_state = {"since": max(state["since"], top or 0), "upto": None, "top": None}
            done = True
        return FetchResult(mentions, json.dumps(next_state), done=done, skipped=skipped)

    def _parse_cursor(self, cursor: str | None) -> dict:
        if cursor:
            try:
                state = json.loads(cursor)
                return {"since": int(state["since"]), "upto": state.get("upto"), "top": state.get("top")}
            except (ValueError, KeyError, TypeError):
                logger.warning("%s: unreadable cursor, starting from the lookback window", self.key)
        since = int((self.now() - FIRST_RUN_LOOKBACK).timestamp())
        return {"since": since, "upto": None, "top": None}

    def _to_mention(self, hit: _Hit, raw: dict) -> Mention | None:
        tags = raw.get("_tags") or []
        is_comment = "comment" in tags or hit.comment_text is not None
        created = datetime.fromtimestamp(hit.created_at_i, UTC)
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
            title=safe_text(title, 500) if title else None,
            text=safe_text(text or title or ""),
            created_at=created,
            url=item_url,
            canonical_url=canonical_url(hit.url) if not is_comment else None,
            author=author,
            extra={k: v for k, v in {"points": hit.points, "story_id": hit.story_id,
                                     "num_comments": hit.num_comments}.items() if v is not None},
        )

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: walk the window from ``since`` to now again (stored items are kept)."""
        return json.dumps({"since": int(since.timestamp()), "upto": None, "top": None})

    def reach(self, handle: str) -> tuple[int, str] | None:
        """Author karma from ``GET /users/<name>`` (None when ``fetch_karma`` is off)."""
        if not getattr(self.settings, "fetch_karma", True):
            return None
        data = self.http.get_json(f"{self.base_url}/users/{quote(handle, safe='')}")
        karma = data.get("karma") if isinstance(data, dict) else None
        if isinstance(karma, int) and not isinstance(karma, bool):
            return karma, "karma"
        return None
