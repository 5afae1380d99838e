"""YouTube comments (Data API v3, an API key): the comment threads of the new videos of
configured ``channels``, of configured ``videos``, and of videos a search for the brand's terms
finds. Queries: ``channel:<channel id>``, ``video:<video id>``, ``search:<term>``.

Each ``fetch`` makes one request, a step of a cycle kept in the query's cursor:

1. discovery (channels and searches, when due): ``channels.list?part=contentDetails`` once for
   a channel's uploads playlist, then ``playlistItems.list`` (newest first); a search is
   ``search.list?q=<term>&type=video&order=date&publishedAfter=<since>``, at most once per
   ``search_every`` (it costs 100 units). New videos join the followed ones (newest
   ``max_videos``, each followed ``video_days`` after it was published);
2. the comments of each followed video in turn: ``commentThreads.list?part=snippet,replies&
   order=time&textFormat=plainText``, newest first, page by page (``nextPageToken``) down to the
   newest comment stored last time (``after``), ``MAX_COMMENT_PAGES`` pages a video and cycle.
   A thread's top-level comment and the replies included in it are mentions
   (``https://www.youtube.com/watch?v=<video>&lc=<comment>``). Replies past the ones a thread
   includes, and new replies to threads older than ``after``, are not fetched.

Quota: ``daily_quota`` units a day (YouTube's default 10,000), each call charged before it is
sent (a refused call costs too): search.list 100, the others 1. The tally is kept in every
query's cursor (``quota_day``, ``quota_used``) and read from all of them before a run (``prime``;
the units of reach lookups after a run's last page are written with the next page's cursor),
and resets at midnight Pacific time, YouTube's quota day. A call the quota cannot pay for is not
sent: the run fails with a SourceError naming the quota and when it resets (so ``monitor
status`` and source health tell it); a 403 ``quotaExceeded`` stops every call until the reset.
A refused key (400 ``API key not valid``/``keyInvalid``, 403 ``keyInvalid``, ``accessNotConfigured``
...) is an auth failure; the key rides in the query string, which is never logged.

Reach: ``channels.list?part=statistics`` -> ``subscriberCount`` (a hidden count is no reach),
looked up through the pipeline's queue, up to 50 channels a request (1 unit).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import (
    ITEM_ERRORS,
    ConfiguredSource,
    drop_html_tags,
    dump_state,
    read_cursor,
    tidy_text,
    time_or_none,
)
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.http_client import parse_retry_after, safe_url
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention, bounded_int

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com/youtube/v3"
COST = {"search": 100, "commentThreads": 1, "channels": 1, "playlistItems": 1, "videos": 1}
MAX_COMMENT_PAGES = 10  # pages of one video per cycle; the newest come first, the rest are left
MAX_LIST_PAGES = 3  # pages of one discovery listing per cycle
REACH_BATCH = 50  # channels.list takes 50 ids at most
OVERLAP = 600  # seconds: a comment held for review appears a little after its time
MAX_CLOCK_SKEW = timedelta(hours=1)
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
CHANNEL_ID = re.compile(r"UC[A-Za-z0-9_-]{22}")
_COMMENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_TOKEN = re.compile(r"[A-Za-z0-9_=-]{1,500}")
AUTH_REASONS = {"keyInvalid", "keyExpired", "API_KEY_INVALID", "API_KEY_EXPIRED", "accessNotConfigured",
                "SERVICE_DISABLED", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED",
                "API_KEY_IP_ADDRESS_BLOCKED", "API_KEY_ANDROID_APP_BLOCKED", "ipRefererBlocked", "authError"}
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
GONE_REASONS = {"commentsDisabled", "videoNotFound", "channelNotFound", "playlistNotFound", "notFound"}
LIST_FULL = 50  # a discovery page this long may have more behind it


# ------------------------------------------------------------------------------ the quota day


def _first_sunday(year: int, month: int, day: int) -> date:
    d = date(year, month, day)
    return d + timedelta(days=(6 - d.weekday()) % 7)


def pacific_offset(when: datetime) -> timedelta:
    """UTC offset of US Pacific time at ``when`` (PDT from the second Sunday of March, 2:00
    PST, to the first Sunday of November, 2:00 PDT: the US rules since 2007). Written out, so
    the quota day needs no time zone database."""
    when = when.astimezone(UTC)
    start = datetime.combine(_first_sunday(when.year, 3, 8), datetime.min.time(), UTC) + timedelta(hours=10)
    end = datetime.combine(_first_sunday(when.year, 11, 1), datetime.min.time(), UTC) + timedelta(hours=9)
    return timedelta(hours=-7) if start <= when < end else timedelta(hours=-8)


def quota_day(when: datetime) -> str:
    """YouTube's quota day (the date in Pacific time) of ``when``."""
    return (when.astimezone(UTC) + pacific_offset(when)).date().isoformat()


def quota_reset(when: datetime) -> datetime:
    """The next midnight, Pacific time, after ``when`` (in UTC): when the daily quota resets."""
    local = when.astimezone(UTC) + pacific_offset(when)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), UTC)
    guess = midnight - pacific_offset(when)
    return midnight - pacific_offset(guess)  # a DST change between now and midnight


# ------------------------------------------------------------------------------ models


class _Video(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=VIDEO_ID.pattern)
    published: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)
    after: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)  # newest comment of the last walk
    title: str | None = Field(default=None, max_length=300)


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)  # discovery: videos published after this
    phase: str = Field(default="list", pattern=r"^(list|comments)$")
    listed_at: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)  # the last finished discovery
    uploads: str | None = Field(default=None, pattern=_TOKEN.pattern)  # a channel's uploads playlist
    list_token: str | None = Field(default=None, pattern=_TOKEN.pattern)
    list_pages: int = Field(default=0, ge=0, le=1000)
    list_top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)
    videos: list[_Video] = Field(default=[], max_length=1000)
    at: int = Field(default=0, ge=0, le=1000)  # the video whose comments are walked
    page_token: str | None = Field(default=None, pattern=_TOKEN.pattern)
    pages: int = Field(default=0, ge=0, le=1000)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)  # newest comment of this walk
    quota_day: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    quota_used: int = Field(default=0, ge=0, le=10**9)


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[Any]
    nextPageToken: Any = None


class _Comment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_COMMENT_ID.pattern)
    snippet: dict[str, Any]


class _Gone(SourceError):
    """A video, channel or playlist that is not there (any more), or a video whose comments are off."""


def _str(value: Any, limit: int = 2_000) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _token(value: Any) -> str | None:
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _epoch(value: Any) -> int | None:
    when = time_or_none(value)
    return int(when.timestamp()) if when is not None else None


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def comment_text(snippet: dict[str, Any]) -> str:
    """The comment as typed (``textOriginal``; else ``textDisplay``, plain with textFormat=plainText):
    any HTML element tags and script blocks dropped, character references decoded once; "<3" stays."""
    raw = _str(snippet.get("textOriginal"), 100_000) or _str(snippet.get("textDisplay"), 100_000) or ""
    return tidy_text(drop_html_tags(raw, entities=True))


def search_phrase(term: str) -> str:
    inner = term.strip().strip('"').replace('"', " ").strip()
    return f'"{inner}"' if any(c.isspace() for c in inner) else inner


class YouTubeSource(ConfiguredSource):
    type = "youtube"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._quota_day: str | None = None
        self._quota_used = 0
        self._exhausted_day: str | None = None  # a 403 quotaExceeded was seen on this quota day
        self._pending: dict[str, None] = {}  # channels seen without reach, for batched lookups
        self._reach: dict[str, tuple[int, str] | None] = {}

    def queries(self) -> list[str]:
        s = self.settings
        return ([f"channel:{c}" for c in s.channels] + [f"video:{v}" for v in s.videos]
                + ([f"search:{t}" for t in self.terms.include] if s.search else []))

    # -------------------------------------------------------------- quota

    def prime(self, cursors: dict[str, str | None]) -> None:
        """Before a run: the quota tally from every query's stored cursor (each holds the tally
        as it was when it was written; the highest of today is the latest)."""
        for cursor in cursors.values():
            try:
                state = json.loads(cursor) if cursor else None
            except (ValueError, RecursionError):
                continue
            if isinstance(state, dict):
                self._note_tally(state.get("quota_day"), state.get("quota_used"))

    def _note_tally(self, day: Any, used: Any) -> None:
        today = quota_day(self.now())
        if day != today or not isinstance(used, int) or isinstance(used, bool) or not 0 <= used <= 10**9:
            return
        if self._quota_day != today:
            self._quota_day, self._quota_used = today, 0
        self._quota_used = max(self._quota_used, used)

    def quota_used(self) -> int:
        """Units charged on the current quota day."""
        return self._quota_used if self._quota_day == quota_day(self.now()) else 0

    def _spend(self, cost: int) -> None:
        now = self.now()
        today = quota_day(now)
        if self._quota_day != today:
            self._quota_day, self._quota_used = today, 0
        quota = self.settings.daily_quota
        wait = (quota_reset(now) - now).total_seconds()
        resets = f"resets at midnight Pacific time, in {wait / 3600:.1f} h"
        if self._exhausted_day == today:
            raise SourceError(f"{self.key}: YouTube refused the daily quota (403 quotaExceeded); "
                              f"no request until it {resets}", retry_after=wait)
        if self._quota_used + cost > quota:
            raise SourceError(f"{self.key}: YouTube daily quota: {self._quota_used} of {quota} units used, the next "
                              f"call needs {cost}; it {resets}", retry_after=wait)
        self._quota_used += cost

    def _with_tally(self, state: _Cursor) -> str:
        state.quota_day, state.quota_used = quota_day(self.now()), self.quota_used()
        return dump_state(state)

    # -------------------------------------------------------------- requests

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        """One API call, charged to the quota first; its errors judged here (the reason is in the body)."""
        self._spend(COST[method])
        key = self.settings.key.get_secret_value()
        url = str(httpx.URL(f"{self.base_url}/{method}", params={**params, "key": key}))
        try:
            status, headers, body = self.http.send("GET", url)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.key}: {type(exc).__name__} talking to YouTube") from None
        if not 200 <= status < 300:
            raise self._error(method, status, headers, body)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponseError(
                f"{safe_url(url)}: response is not valid JSON ({type(exc).__name__})") from None

    def _error(self, method: str, status: int, headers: httpx.Headers, body: bytes) -> SourceError:
        reasons, message = _error_body(body)
        key = self.settings.key.get_secret_value()
        if key:
            message = message.replace(key, "***")
        what = f"{self.key}: YouTube {method}: HTTP {status}" + (f" {'/'.join(sorted(reasons))}" if reasons else "")
        text = what + (f": {message}" if message else "")
        detail = body[:300].decode("utf-8", "replace").replace(key, "***") if key else None
        if reasons & QUOTA_REASONS:
            self._exhausted_day = quota_day(self.now())
            wait = (quota_reset(self.now()) - self.now()).total_seconds()
            return SourceError(f"{text}; no request until the quota resets at midnight Pacific time",
                               retry_after=wait, status=status, detail=detail)
        if status == 429 or reasons & RATE_REASONS:
            return SourceError(text, retry_after=parse_retry_after(headers.get("retry-after")), status=status,
                               detail=detail)
        key_refused = status in (400, 403) and ("api key" in message.lower() or bool(reasons & AUTH_REASONS))
        if status == 401 or key_refused:
            return SourceAuthError(f"{text} (YouTube refused the API key: check `key` in config.yaml)",
                                   status=status, detail=detail)
        if status in (403, 404) and (reasons & GONE_REASONS or (method == "commentThreads" and status == 403)):
            return _Gone(text, status=status, detail=detail)  # one video's comments: private, off, or gone
        if status == 403:
            return SourceAuthError(text, status=status, detail=detail)
        return SourceError(text, status=status, detail=detail)

    # -------------------------------------------------------------- fetch

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        kind, _, arg = query.partition(":")
        if kind not in ("channel", "video", "search") or not arg:
            raise SourceError(f"{self.key}: unknown query {query!r}")
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        self._note_tally(state.quota_day, state.quota_used)
        if kind == "video":
            if not VIDEO_ID.fullmatch(arg):
                raise SourceError(f"{self.key}: {arg!r} is not a YouTube video id")
            if not state.videos or state.videos[0].id != arg:
                state.videos = [_Video(id=arg)]
            state.phase = "comments"
        if state.phase == "list" and self._discovery_due(kind, state):
            return self._discover(kind, arg, state)
        state.phase = "comments"
        return self._comments(kind, state)

    def _discovery_due(self, kind: str, state: _Cursor) -> bool:
        if kind != "search" or state.list_token is not None or state.listed_at is None:
            return True
        return self.now().timestamp() - state.listed_at >= self.settings.search_every.total_seconds()

    def _discover(self, kind: str, arg: str, state: _Cursor) -> FetchResult:
        """One page of a channel's uploads or of a search: new videos join the followed ones."""
        low = max(_EPOCH_MIN, state.since - OVERLAP)
        if kind == "channel" and state.uploads is None:
            data = self._call("channels", {"part": "contentDetails", "id": arg, "maxResults": 1})
            uploads = None
            for item in _page(data, self.key, items_required=False).items:
                details = item.get("contentDetails") if isinstance(item, dict) and item.get("id") == arg else None
                playlists = details.get("relatedPlaylists") if isinstance(details, dict) else None
                uploads = _token(playlists.get("uploads")) if isinstance(playlists, dict) else uploads
            if uploads is None:
                raise SourceError(f"{self.key}: YouTube knows no channel {arg} (or it has no uploads playlist)")
            state.uploads = uploads
            return FetchResult([], self._with_tally(state), done=False)
        if kind == "channel":
            params: dict[str, Any] = {"part": "snippet,contentDetails", "playlistId": state.uploads, "maxResults": 50}
            method = "playlistItems"
        else:
            params = {"part": "snippet", "q": search_phrase(arg), "type": "video", "order": "date",
                      "publishedAfter": _rfc3339(low), "maxResults": 50}
            method = "search"
        if state.list_token:
            params["pageToken"] = state.list_token
        try:
            data = self._call(method, params)
        except _Gone as exc:  # a channel without its uploads playlist: the operator must hear it
            raise SourceError(str(exc), status=exc.status) from None
        page = _page(data, self.key)
        found, skipped, oldest = [], 0, None
        for raw in page.items:
            video = _listed_video(raw)
            if video is None:
                skipped += 1
                continue
            if video.published is not None:
                oldest = video.published if oldest is None else min(oldest, video.published)
                if video.published < low:
                    continue
                state.list_top = max(state.list_top or video.published, video.published)
            found.append(video)
        self._follow(state, found)
        token = _token(page.nextPageToken)
        state.list_pages += 1
        full = len(page.items) >= LIST_FULL and (oldest is None or oldest >= low)
        if token and full and state.list_pages < MAX_LIST_PAGES:
            state.list_token = token
        else:
            state.since = max(state.since, state.list_top or state.since)
            state.list_token, state.list_top, state.list_pages = None, None, 0
            state.listed_at = int(self.now().timestamp())
            state.phase, state.at, state.page_token, state.pages, state.top = "comments", 0, None, 0, None
        if skipped:
            logger.warning("%s: %d listed videos unreadable", self.key, skipped)
        return FetchResult([], self._with_tally(state), done=False, skipped=skipped)

    def _follow(self, state: _Cursor, found: list[_Video]) -> None:
        """Add newly found videos; keep the newest ``max_videos`` published within ``video_days``."""
        videos, known = list(state.videos), {v.id for v in state.videos}
        for v in found:
            if v.id not in known:
                known.add(v.id)
                videos.append(v)
        cutoff = self.now().timestamp() - self.settings.video_days * 86_400
        videos = [v for v in videos if v.published is None or v.published >= cutoff]
        videos.sort(key=lambda v: v.published or 0, reverse=True)
        state.videos = videos[: self.settings.max_videos]
        state.at = 0

    def _comments(self, kind: str, state: _Cursor) -> FetchResult:
        """One page of comment threads of the video being walked."""
        if state.at >= len(state.videos):
            return self._cycle_done(kind, state, [], 0)
        video = state.videos[state.at]
        params: dict[str, Any] = {"part": "snippet,replies", "videoId": video.id, "order": "time",
                                  "maxResults": 100, "textFormat": "plainText"}
        if state.page_token:
            params["pageToken"] = state.page_token
        try:
            data = self._call("commentThreads", params)
        except _Gone as exc:  # comments off, or the video went: stop following it
            logger.info("%s: %s; video %s no longer followed", self.key, exc, video.id)
            if kind != "video":
                del state.videos[state.at]
            else:
                state.at += 1
            state.page_token, state.pages, state.top = None, 0, None
            return self._next_video(kind, state, [], 0)
        page = _page(data, self.key)
        cutoff = video.after - OVERLAP if video.after is not None else None
        mentions, skipped, times = [], 0, []
        for raw in page.items:
            try:
                found, bad, when = self._thread(raw, video)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed comment thread (%s)", self.key, type(exc).__name__)
                continue
            skipped += bad
            if when is not None:
                times.append(when)
            mentions += [m for m in found if cutoff is None or m.extra.get("date_guessed")
                         or m.created_at.timestamp() > cutoff]
        if times:
            state.top = max(state.top or max(times), max(times))
        state.pages += 1
        token = _token(page.nextPageToken)
        older = cutoff is not None and bool(times) and min(times) <= cutoff
        if token and not older and state.pages < MAX_COMMENT_PAGES and page.items:
            state.page_token = token
            return FetchResult(mentions, self._with_tally(state), done=False, skipped=skipped)
        if state.top is not None:
            video.after = max(video.after or state.top, state.top)
        state.at += 1
        state.page_token, state.pages, state.top = None, 0, None
        return self._next_video(kind, state, mentions, skipped)

    def _next_video(self, kind: str, state: _Cursor, mentions: list[Mention], skipped: int) -> FetchResult:
        if state.at < len(state.videos):
            return FetchResult(mentions, self._with_tally(state), done=False, skipped=skipped)
        return self._cycle_done(kind, state, mentions, skipped)

    def _cycle_done(self, kind: str, state: _Cursor, mentions: list[Mention], skipped: int) -> FetchResult:
        state.at, state.page_token, state.pages, state.top = 0, None, 0, None
        state.phase = "comments" if kind == "video" else "list"
        return FetchResult(mentions, self._with_tally(state), done=True, skipped=skipped)

    # -------------------------------------------------------------- items

    def _thread(self, raw: Any, video: _Video) -> tuple[list[Mention], int, int | None]:
        """A comment thread -> its top-level comment and included replies as mentions, the
        replies that were unreadable, and the top-level comment's time (None when guessed)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("snippet"), dict):
            raise ValueError("a thread without a snippet")
        snippet = raw["snippet"]
        top = snippet.get("topLevelComment")
        if not isinstance(top, dict):
            raise ValueError("a thread without its top-level comment")
        if not isinstance(top.get("id"), str) and isinstance(raw.get("id"), str):
            top = {**top, "id": raw["id"]}  # the thread's id is its top-level comment's
        comment = _Comment.model_validate(top)
        replies = bounded_int(snippet.get("totalReplyCount"), 0)
        first = self._to_mention(comment, video, None, replies)
        out = [first] if first is not None else []
        bad = 0
        listed = raw.get("replies", {}).get("comments") if isinstance(raw.get("replies"), dict) else None
        for reply in listed if isinstance(listed, list) else []:
            try:
                m = self._to_mention(_Comment.model_validate(reply), video, comment.id, None)
            except ITEM_ERRORS as exc:
                bad += 1
                logger.warning("%s: skipped a malformed reply (%s)", self.key, type(exc).__name__)
                continue
            if m is not None:
                out.append(m)
        published = time_or_none(comment.snippet.get("publishedAt"))  # a thread without text still dates its page
        when = int(published.timestamp()) if published is not None and published <= self.now() + MAX_CLOCK_SKEW \
            else None
        return out, bad, when

    def _to_mention(self, comment: _Comment, video: _Video, parent: str | None,
                    replies: int | None) -> Mention | None:
        s = comment.snippet
        text = comment_text(s)
        if not text:
            return None
        created, guessed = time_or_none(s.get("publishedAt")), None
        if created is not None and created > self.now() + MAX_CLOCK_SKEW:
            created = None
        if created is None:
            updated = time_or_none(s.get("updatedAt"))
            created, guessed = (updated, "updated") if updated and updated <= self.now() else (self.now(), "fetched")
        parent_id = parent or (s.get("parentId") if isinstance(s.get("parentId"), str) else None)
        extra = {"video_id": video.id, "video_title": video.title, "like_count": bounded_int(s.get("likeCount"), 0),
                 "reply_count": replies, "parent_id": parent_id if parent_id and _COMMENT_ID.fullmatch(parent_id)
                 else None, "updated_at": _str(s.get("updatedAt"), 40), "date_guessed": guessed}
        return Mention(
            source=self.type,
            native_id=comment.id,
            brand=self.brand,
            kind="reply" if parent else "comment",
            text=text,
            created_at=created,
            url=f"https://www.youtube.com/watch?v={video.id}&lc={comment.id}",
            author=self._author(s),
            extra={k: v for k, v in extra.items() if v is not None},
        )

    def _author(self, s: dict[str, Any]) -> Author | None:
        channel = s.get("authorChannelId")
        channel_id = channel.get("value") if isinstance(channel, dict) else None
        name = _str(s.get("authorDisplayName"), 200)
        if isinstance(channel_id, str) and CHANNEL_ID.fullmatch(channel_id):
            handle = channel_id
        elif name and name.startswith("@") and " " not in name:
            handle = name  # no channel id: the @handle is unique too (no reach lookup for it)
        else:
            return None
        url = _str(s.get("authorChannelUrl"), 500)
        if url and url.startswith("http://"):
            url = "https://" + url[len("http://"):]
        if handle.startswith("UC") and handle not in self._reach and len(self._pending) < 10_000:
            self._pending[handle] = None
        return Author(source=self.type, handle=handle, display_name=name,
                      url=url if url and url.startswith("https://") else None)

    # -------------------------------------------------------------- reach, cursors

    def reach(self, handle: str) -> tuple[int, str] | None:
        """Subscribers of a commenter's channel (None when hidden or off). Looked up with up to
        49 other channels seen without reach, one request (1 unit) for all of them."""
        if not self.settings.fetch_subscribers or not CHANNEL_ID.fullmatch(handle):
            return None
        if handle not in self._reach:
            batch = [handle] + [c for c in self._pending if c != handle][: REACH_BATCH - 1]
            data = self._call("channels", {"part": "statistics", "id": ",".join(batch), "maxResults": REACH_BATCH})
            if len(self._reach) > 20_000:
                self._reach.clear()
            found = _subscribers(data, self.key)
            for c in batch:  # a channel not in the answer (closed) has no reach
                self._reach[c] = found.get(c)
                self._pending.pop(c, None)
        return self._reach.get(handle)

    def _parse_cursor(self, cursor: str | None) -> _Cursor:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return _Cursor(since=int(self.now().timestamp()) - self.settings.video_days * 86_400)
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: discover videos published since then again (their comments are walked anew)."""
        return dump_state(_Cursor(since=int(since.timestamp())))


def _page(data: Any, key: str, *, items_required: bool = True) -> _Page:
    """A list response; channels.list leaves ``items`` out when it found nothing."""
    if isinstance(data, dict) and "error" in data and "items" not in data:
        reasons, message = _error_body(json.dumps(data).encode())
        raise SourceError(f"{key}: YouTube error response {'/'.join(sorted(reasons))}: {message}".rstrip(": "))
    if not items_required and isinstance(data, dict) and "items" not in data:
        return _Page(items=[])
    try:
        return _Page.model_validate(data)
    except ValidationError:
        raise MalformedResponseError(f"{key}: YouTube response has no 'items' list") from None


def _listed_video(raw: Any) -> _Video | None:
    """A video of a playlistItems or search result (None when unreadable)."""
    if not isinstance(raw, dict):
        return None
    snippet, details = _dict(raw.get("snippet")), _dict(raw.get("contentDetails"))
    ident, resource = raw.get("id"), _dict(snippet.get("resourceId"))
    video_id = next((v for v in (details.get("videoId"), ident.get("videoId") if isinstance(ident, dict) else None,
                                 resource.get("videoId")) if isinstance(v, str) and VIDEO_ID.fullmatch(v)), None)
    if video_id is None:
        return None
    published = _epoch(details.get("videoPublishedAt")) or _epoch(snippet.get("publishedAt")) \
        or _epoch(snippet.get("publishTime"))
    title = _str(snippet.get("title"), 300)
    return _Video(id=video_id, published=published, title=tidy_text(drop_html_tags(title, entities=True))
                  if title else None)


def _subscribers(data: Any, key: str) -> dict[str, tuple[int, str] | None]:
    found: dict[str, tuple[int, str] | None] = {}
    for item in _page(data, key, items_required=False).items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        stats = _dict(item.get("statistics"))
        count = stats.get("subscriberCount")
        if isinstance(count, str) and count.isascii() and count.isdigit() and len(count) < 20:
            count = int(count)
        n = bounded_int(count, 0)
        found[item["id"]] = None if stats.get("hiddenSubscriberCount") is True or n is None else (n, "subscribers")
    return found


def _error_body(body: bytes) -> tuple[set[str], str]:
    """The reasons (``errors[].reason``, ``details[].reason``, ``status``) and message of a
    Google API error body; ({}, "") when it is not one."""
    try:
        data = json.loads(body[:100_000])
    except (ValueError, RecursionError):
        return set(), ""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return set(), (_str(error, 200) or "") if isinstance(error, str) else ""
    reasons: set[str] = set()
    for group in ("errors", "details"):
        entries = error.get(group)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("reason"), str):
                reasons.add(entry["reason"][:60])
    message = _str(error.get("message"), 300) or ""
    message = tidy_text(drop_html_tags(message, entities=True))[:200]
    return {r for r in reasons if r.isprintable()}, message
