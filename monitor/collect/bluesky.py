"""Bluesky post search over plain XRPC (httpx), logged in with an app password.

* ``POST {base}/xrpc/com.atproto.server.createSession`` {identifier, password} ->
  ``accessJwt``, ``refreshJwt``; an expired access token (``400 ExpiredToken``) is
  renewed once with ``com.atproto.server.refreshSession``, then by logging in again.
* ``GET {base}/xrpc/app.bsky.feed.searchPosts?q=&sort=latest&since=&limit=100&cursor=``
  returns ``posts`` newest first and a ``cursor`` for the next (older) page.
* Reach: ``app.bsky.actor.getProfile?actor=`` -> ``followersCount``.

Cursor: ``{"since": ISO, "page": <searchPosts cursor>|null, "top": ISO|null}``: the
window after ``since`` is walked page by page; when the walk ends ``top`` (the newest
post seen) becomes the next ``since``.

``createdAt`` is the client's clock and may be anything; a post whose ``createdAt`` cannot
be read is dated by ``indexedAt`` (the server's), marked ``extra["date_guessed"] = "indexed"``.
A post without text (an image whose alt text matched) is passed over, not counted as
malformed, and still moves ``top``: a window of only such posts is not fetched again every run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from monitor.collect._common import (
    ITEM_ERRORS,
    ConfiguredSource,
    dump_state,
    parse_time,
    read_cursor,
    strip_html,
    time_or_none,
)
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.records import Author, FetchResult, Mention

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://bsky.social"
PAGE = 100
FIRST_RUN_LOOKBACK = timedelta(days=2)
MAX_CLOCK_SKEW = timedelta(hours=1)
PAGE_CURSOR_MAX = 2_000  # characters of searchPosts' cursor kept in ours
_TOKEN_ERRORS = ("ExpiredToken", "InvalidToken")


class _PostAuthor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    did: str
    handle: str
    displayName: str | None = None
    followersCount: int | None = None


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    createdAt: str
    langs: list[str] | None = None
    reply: dict[str, Any] | None = None
    facets: Any = None  # read by _with_full_links, which ignores what it cannot use


_LINK_FACET = "app.bsky.richtext.facet#link"
_ELLIPSIS = ("...", "\u2026")


def _shown_as(display: str, uri: str) -> bool:
    """Whether ``display`` is how an app shows ``uri``: without its scheme (and www.),
    perhaps cut short with an ellipsis."""
    bare = display.strip()
    for mark in _ELLIPSIS:
        bare = bare.removesuffix(mark)
    target = uri.split("://", 1)[-1]
    return bool(bare) and (target.startswith(bare) or target.removeprefix("www.").startswith(bare))


def _with_full_links(text: str, facets: Any) -> tuple[str, list[str]]:
    """The post's text with each link's display text (apps cut it: ``acme.example.com/blog/se...``)
    replaced by the full URI from its link facet, and the URIs in order. The facet indexes
    are UTF-8 byte offsets. A display text that is not the URI shortened (words a client
    linked) is kept as written, its URI only listed, so no words are lost; a facet that is
    malformed, overlaps another or falls outside the text is ignored."""
    if not isinstance(facets, list):
        return text, []
    raw = text.encode("utf-8")
    found: list[tuple[int, int, str]] = []
    for facet in facets:
        index = facet.get("index") if isinstance(facet, dict) else None
        features = facet.get("features") if isinstance(facet, dict) else None
        if not isinstance(index, dict) or not isinstance(features, list):
            continue
        start, end = index.get("byteStart"), index.get("byteEnd")
        if type(start) is not int or type(end) is not int or not 0 <= start < end <= len(raw):
            continue
        for feature in features:
            uri = feature.get("uri") if isinstance(feature, dict) else None
            if feature.get("$type") == _LINK_FACET and isinstance(uri, str) \
                    and uri.startswith(("http://", "https://")) and len(uri) <= 2_000:
                found.append((start, end, uri))
                break
    found.sort()
    links, out, pos = [], [], 0
    for start, end, uri in found:
        if start < pos:  # overlaps the previous one
            continue
        links.append(uri)
        try:
            display = raw[start:end].decode("utf-8")
        except UnicodeDecodeError:  # not on character boundaries
            continue
        if _shown_as(display, uri):
            out += [raw[pos:start], uri.encode("utf-8")]
            pos = end
    out.append(raw[pos:])
    return b"".join(out).decode("utf-8", errors="replace"), links


class _Post(BaseModel):
    model_config = ConfigDict(extra="ignore")
    uri: str
    author: _PostAuthor
    record: _Record
    indexedAt: str | None = None
    replyCount: int | None = None
    repostCount: int | None = None
    likeCount: int | None = None
    quoteCount: int | None = None


class _NoText(ValueError):
    """A post without text (an image whose alt text matched the search): no mention, not malformed."""


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    since: str = Field(max_length=64)
    page: str | None = Field(default=None, max_length=PAGE_CURSOR_MAX)
    top: str | None = Field(default=None, max_length=64)


class BlueskySource(ConfiguredSource):
    type = "bluesky"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = self.settings.base_url or DEFAULT_BASE_URL
        self._access: str | None = None
        self._refresh: str | None = None

    def queries(self) -> list[str]:
        return list(self.terms.include)

    # ------------------------------------------------------------------ session

    def _login(self) -> None:
        try:
            data = self.http.post_json(f"{self.base_url}/xrpc/com.atproto.server.createSession",
                                       {"identifier": self.settings.handle,
                                        "password": self.settings.app_password.get_secret_value()})
        except SourceError as exc:
            if exc.status in (400, 401):
                raise SourceAuthError(f"{self.key}: login refused for {self.settings.handle} "
                                      f"(HTTP {exc.status})") from None
            raise
        if not isinstance(data, dict) or not isinstance(data.get("accessJwt"), str):
            raise MalformedResponseError(f"{self.key}: createSession returned no accessJwt")
        self._access, self._refresh = data["accessJwt"], data.get("refreshJwt")

    def _renew(self) -> None:
        if self._refresh:
            try:
                data = self.http.post_json(f"{self.base_url}/xrpc/com.atproto.server.refreshSession", None,
                                           headers={"Authorization": f"Bearer {self._refresh}"})
                if isinstance(data, dict) and isinstance(data.get("accessJwt"), str):
                    self._access, self._refresh = data["accessJwt"], data.get("refreshJwt")
                    return
            except SourceError:
                pass
        self._access = self._refresh = None
        self._login()

    def _get(self, method: str, params: dict) -> Any:
        if self._access is None:
            self._login()
        for attempt in (1, 2):
            try:
                return self.http.get_json(f"{self.base_url}/xrpc/{method}", params=params,
                                          headers={"Authorization": f"Bearer {self._access}"})
            except SourceError as exc:
                expired = exc.status in (400, 401) and any(e in (exc.detail or "") for e in _TOKEN_ERRORS)
                if attempt == 1 and expired:
                    logger.info("%s: session expired, renewing", self.key)
                    self._renew()
                    continue
                if exc.status == 400 and expired:
                    raise SourceAuthError(f"{self.key}: token refused after renewal", status=400) from None
                raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ fetching

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        since = state["since"]
        params = {"q": query, "sort": "latest", "since": since, "limit": PAGE}
        if state["page"]:
            params["cursor"] = state["page"]
        data = self._get("app.bsky.feed.searchPosts", params)
        posts = data.get("posts") if isinstance(data, dict) else None
        if not isinstance(posts, list):
            raise MalformedResponseError(f"{self.key}: searchPosts response has no 'posts' list")
        mentions, skipped = [], 0
        top = parse_time(state["top"]) if state["top"] else None
        now = self.now()
        for raw in posts:
            try:
                post = _Post.model_validate(raw)
                # indexedAt is the server's clock; createdAt is the client's and may lie (future dates)
                indexed = time_or_none(post.indexedAt)
                mention = self._to_mention(post)
                stamp = min(indexed or mention.created_at, now)
            except _NoText:  # an image-only post (its alt text matched): passed over, and the cursor moves past it
                if indexed is not None:
                    top = min(indexed, now) if top is None else max(top, min(indexed, now))
                continue
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed post (%s)", self.key, type(exc).__name__)
                continue
            top = stamp if top is None else max(top, stamp)
            mentions.append(mention)
        page_cursor = data.get("cursor")
        top_text = top.isoformat() if top else None
        if isinstance(page_cursor, str) and 0 < len(page_cursor) <= PAGE_CURSOR_MAX and len(posts) >= PAGE:
            return FetchResult(mentions, dump_state({"since": since, "page": page_cursor, "top": top_text}),
                               done=False, skipped=skipped)
        newest = max(parse_time(since), top).isoformat() if top else since
        return FetchResult(mentions, dump_state({"since": newest, "page": None, "top": None}), skipped=skipped)

    def _parse_cursor(self, cursor: str | None) -> dict:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return {"since": (self.now() - FIRST_RUN_LOOKBACK).isoformat(), "page": None, "top": None}
        since, top = time_or_none(state.since), time_or_none(state.top) if state.top else None
        if since is None or (state.top and top is None):
            raise CursorError(f"{self.key}: unreadable cursor (a time that cannot be read)")
        if since > self.now() + MAX_CLOCK_SKEW:  # would wait for the future forever
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state.model_dump()

    def _to_mention(self, p: _Post) -> Mention:
        # full URLs in the text (where the app showed them cut short), and all of them in extra["links"]
        full, links = _with_full_links(p.record.text, p.record.facets)
        text = strip_html(full)  # plain text, but stored markup-free like every source's
        if not text:
            raise _NoText("post without text")
        created, guessed = time_or_none(p.record.createdAt), None
        if created is None:
            created, guessed = parse_time(p.indexedAt), "indexed"  # neither: ValueError, the post is skipped
        rkey = p.uri.rsplit("/", 1)[-1]
        handle = p.author.handle
        return Mention(
            source=self.type,
            native_id=p.uri,
            brand=self.brand,
            kind="comment" if p.record.reply else "post",
            text=text,
            created_at=created,
            url=f"https://bsky.app/profile/{quote(handle, safe='.:')}/post/{quote(rkey, safe='')}",
            lang=p.record.langs[0] if p.record.langs else None,
            author=Author(source=self.type, handle=handle, display_name=p.author.displayName or None,
                          url=f"https://bsky.app/profile/{quote(handle, safe='.:')}",
                          reach=p.author.followersCount,
                          reach_kind="followers" if p.author.followersCount is not None else None),
            extra={k: v for k, v in {"replies": p.replyCount, "reposts": p.repostCount, "likes": p.likeCount,
                                     "quotes": p.quoteCount, "date_guessed": guessed,
                                     "links": links or None}.items() if v is not None},
        )

    def reach(self, handle: str) -> tuple[int, str] | None:
        if not self.settings.fetch_followers:
            return None
        data = self._get("app.bsky.actor.getProfile", {"actor": handle})
        count = data.get("followersCount") if isinstance(data, dict) else None
        if isinstance(count, int) and not isinstance(count, bool):
            return count, "followers"
        return None

    def cursor_since(self, query: str, since: datetime) -> str | None:
        return dump_state({"since": since.isoformat(), "page": None, "top": None})
