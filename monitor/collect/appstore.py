"""Apple App Store customer reviews: the public JSON feed, per app and country.

``GET https://itunes.apple.com/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json``
returns up to 50 reviews per page, 10 pages at most, newest first. Every value sits in
``{"label": ...}``; ``feed.entry`` is a list, a single object when there is one review,
and absent when there are none. Old responses start with an entry describing the app
itself (no ``im:rating``): it is not a review and is passed over.

Some storefronts (seen on ``jp``) send entries without ``updated``. The date then comes
from the entry's other date fields (``published``, ``im:releaseDate``), else the feed's own
``updated``, else the fetch time; a guessed date is marked in ``Mention.extra["date_guessed"]``
(``"feed"`` or ``"fetched"``). One optional field missing never costs the review: a
title, text or version whose ``{"label": ...}`` wrapper is empty or of another type reads
as absent (only the id and the star rating are required, and some text).

A review with a rating but no text (neither title nor content) is passed over, not counted
as malformed: it cannot be a mention, yet it is no sign of a changed feed. Reviews already
stored (ids at or below the cursor's) count as fetched but unchanged, so a quiet app whose
newest page holds only known reviews reads as alive, and a few odd reviews among known ones
are not taken for a changed API.

Query: ``"<app id>:<country>"``. Cursor: ``{"last_id": N}``, the newest review id
stored; a run walks pages until it meets it. Star ratings land in ``Mention.rating``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import (
    ITEM_ERRORS,
    ConfiguredSource,
    dump_state,
    parse_time,
    read_cursor,
    strip_html,
    time_or_none,
)
from monitor.errors import MalformedResponseError
from monitor.records import INT64_MAX, Author, FetchResult, Mention

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://itunes.apple.com"
MAX_PAGE = 10
ENTRY_DATE_FIELDS = ("updated", "published", "im:releaseDate")  # an entry's own dates, in order of trust


class _Label(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str


class _Review(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: _Label
    rating: _Label | None = None
    title: str | None = None  # optional fields: read leniently (_label), an odd wrapper is an absent value
    content: str | None = None
    version: str | None = None
    author: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: Any) -> _Review:
        if not isinstance(raw, dict):
            raise TypeError("review entry is not an object")
        data = {"id": raw.get("id"), "rating": raw.get("im:rating"), "title": _label(raw.get("title")),
                "content": _label(raw.get("content")), "version": _label(raw.get("im:version")),
                "author": raw.get("author")}
        return cls.model_validate(data)


class _NoText(ValueError):
    """A review with a rating but neither title nor text: passed over, not malformed."""


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    last_id: int = Field(default=0, ge=0, le=INT64_MAX)
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    top: int = Field(default=0, ge=0, le=INT64_MAX)


def _label(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("label"), str):
        return node["label"]
    return None


def _date_of(node: Any) -> datetime | None:
    """A ``{"label": "<ISO time>"}`` node -> aware UTC datetime; None when absent or unreadable."""
    text = _label(node)
    return time_or_none(text) if text else None


def _entry_date(raw: dict) -> datetime | None:
    """The entry's own date: the first of ``ENTRY_DATE_FIELDS`` present and readable.
    A present but unreadable ``updated`` is a malformed review, not a missing date."""
    if raw.get("updated") is not None:
        return parse_time(_label(raw["updated"]))
    for name in ENTRY_DATE_FIELDS[1:]:
        found = _date_of(raw.get(name))
        if found is not None:
            return found
    return None


def _describe(exc: Exception) -> str:
    """An exception as text for the log, without the input values (review text, ids)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(entry)'}: {e['msg']}"
                         for e in exc.errors(include_url=False, include_input=False)[:3])
    return f"{type(exc).__name__}: {exc}"[:200]


class AppStoreReviewsSource(ConfiguredSource):
    type = "appstore"
    match_all = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = self.settings.base_url or DEFAULT_BASE_URL

    def queries(self) -> list[str]:
        return [f"{app}:{country}" for app in self.settings.app_ids for country in self.settings.countries]

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        app, country = query.split(":", 1)
        state = read_cursor(_Cursor, cursor, self.key) or _Cursor()  # CursorError when unreadable
        last_id, page, top = state.last_id, state.page, state.top
        url = f"{self.base_url}/{country}/rss/customerreviews/page={page}/id={app}/sortby=mostrecent/json"
        data = self.http.get_json(url)
        feed = data.get("feed") if isinstance(data, dict) else None
        if not isinstance(feed, dict):
            raise MalformedResponseError(f"{self.key}: response has no 'feed' object")
        entries = feed.get("entry", [])
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            raise MalformedResponseError(f"{self.key}: 'feed.entry' is neither a list nor an object")
        feed_date = _date_of(feed.get("updated"))
        fetched_at = self.now() if self.now is not None else datetime.now(UTC)
        mentions, skipped, known, reached_known = [], 0, 0, False
        for raw in entries:
            if isinstance(raw, dict) and "im:rating" not in raw and "im:name" in raw:
                continue  # the app's own description, not a review
            try:
                review = _Review.parse(raw)
                rid = int(review.id.label)
                if not 0 <= rid <= INT64_MAX:
                    raise ValueError("review id out of range")
                if rid <= last_id:  # stored in an earlier run: read, unchanged
                    reached_known = True
                    known += 1
                    continue
                mention = self._to_mention(review, raw, app, country, feed_date, fetched_at)
            except _NoText:
                top = max(top, rid)  # passed over for good: the cursor moves past it
                logger.debug("%s: passed over a review without text", self.key)
                continue
            except ITEM_ERRORS as exc:
                skipped += 1
                if skipped == 1:  # one sample a page, what failed and where, never the values
                    logger.warning("%s: skipped a malformed review, first on page %d: %s", self.key, page,
                                   _describe(exc))
                continue
            top = max(top, rid)
            mentions.append(mention)
        if skipped > 1:
            logger.warning("%s: skipped %d malformed reviews of %d on page %d", self.key, skipped, len(entries),
                           page)
        more = len(entries) >= 50 and page < MAX_PAGE and not reached_known
        next_state = {"last_id": last_id, "page": page + 1, "top": top} if more else {"last_id": max(last_id, top)}
        return FetchResult(mentions, dump_state(next_state), done=not more, skipped=skipped, unchanged=known)

    def _to_mention(self, r: _Review, raw: dict, app: str, country: str, feed_date: datetime | None,
                    fetched_at: datetime) -> Mention:
        if r.rating is None:
            raise ValueError("review without a rating")
        rating = int(r.rating.label)
        if not 1 <= rating <= 5:
            raise ValueError("rating out of range")
        created, guessed = _entry_date(raw), None
        if created is None:
            created, guessed = (feed_date, "feed") if feed_date is not None else (fetched_at, "fetched")
        title = strip_html(r.title)
        text = strip_html(r.content)
        if not title and not text:
            raise _NoText("review without text")
        author = None
        name = _label((r.author or {}).get("name"))
        if name:
            author = Author(source=self.type, handle=name, url=_label((r.author or {}).get("uri")))
        link = raw.get("link")
        attributes = link.get("attributes") if isinstance(link, dict) else None
        href = attributes.get("href") if isinstance(attributes, dict) else None
        return Mention(
            source=self.type,
            native_id=f"{r.id.label}",
            brand=self.brand,
            kind="review",
            title=title or None,
            text=text or title,
            created_at=created,
            url=href if isinstance(href, str) and href.startswith("https://") else
            f"https://apps.apple.com/{country}/app/id{app}?see-all=reviews",
            rating=rating,
            author=author,
            extra={"app_id": app, "country": country, "version": r.version or None,
                   "votes": _label(raw.get("im:voteCount")),
                   **({"date_guessed": guessed} if guessed else {})},
        )

    def cursor_since(self, query: str, since: datetime) -> str | None:
        return dump_state({"last_id": 0})  # the feed has no date filter: walk all 10 pages again
