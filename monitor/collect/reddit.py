"""Reddit through PRAW, read-only (a "script" app's client id and secret, no password:
the client-credentials grant). PRAW handles the token, Reddit's rate-limit headers and
its retries; listings are read as raw JSON (``reddit.request``) and each child is
parsed here, so one malformed child is skipped without losing its page.

Queries:
* ``search:<term>``: ``GET /r/{all|a+b}/search?q=&sort=new&t=&syntax=lucene`` (submissions;
  Reddit has no comment search);
* ``submissions`` / ``comments``: ``GET /r/a+b/new`` and ``/r/a+b/comments`` in the
  chosen subreddits, filtered locally by the brand's terms.

Cursor: ``{"since": S, "after": fullname|null, "top": T}`` (epoch seconds). A run walks
a listing newest first, page by page (``after``), until it meets an item at or before
``since``; then ``top`` (the newest item seen) becomes ``since``. Listings reach back
about 1000 items. Reach: ``total_karma`` from ``GET /user/{name}/about``.

Text is markdown (``raw_json=1``), not HTML: ``markdown_text`` keeps ``<...>`` as typed. A comment
without ``permalink`` (seen in real ``/comments`` listings) gets a URL made from ``link_id``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import praw
import prawcore
from pydantic import BaseModel, ConfigDict, Field

from monitor.collect._common import (
    ITEM_ERRORS,
    ConfiguredSource,
    canonical_url,
    dump_state,
    parse_time,
    read_cursor,
)
from monitor.collect._markdown import markdown_text
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.http_client import CappedSession, HttpPolicy
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention

logger = logging.getLogger(__name__)

PAGE = 100
FIRST_RUN_LOOKBACK = timedelta(days=2)
MAX_CLOCK_SKEW = timedelta(hours=1)
AFTER_MAX = 200  # characters of a listing's "after" (a fullname, t3_abc123) kept in the cursor
_EPOCH_MIN, _EPOCH_MAX = TIME_MIN.timestamp(), TIME_MAX.timestamp()
TOKEN_LIFETIME = 3600  # seconds, when a token answer does not say (Reddit's tokens last an hour or more)
_REDDIT_HOSTS = ("reddit.com", "redd.it")
class _Thing(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    created_utc: float
    permalink: str | None = None  # missing from some /comments listings: derived from link_id
    link_id: str | None = None
    author: str | None = None
    subreddit: str | None = None
    title: str | None = None
    selftext: str | None = None
    body: str | None = None
    url: str | None = None
    is_self: bool | None = None
    link_title: str | None = None
    score: int | None = None
    num_comments: int | None = None
    over_18: bool | None = None


class RedditSession(CappedSession):
    """The capped, guarded session, mending a token answer PRAW would fail on: without a
    usable ``expires_in`` (PRAW raises a bare KeyError) it gets ``TOKEN_LIFETIME``, without
    ``scope`` it gets ``*``, and a warning says so."""

    def finish(self, url: str, response, body: bytes) -> bytes:
        if response.status_code != 200 or not urlsplit(url).path.endswith("/api/v1/access_token"):
            return body
        try:
            token = json.loads(body)
        except (ValueError, RecursionError):
            return body  # PRAW reports it as not JSON
        if not isinstance(token, dict) or "access_token" not in token or "error" in token:
            return body
        mended = []
        expires = token.get("expires_in")
        if not isinstance(expires, int | float) or isinstance(expires, bool) or not 0 < expires < 10**7:
            token["expires_in"] = TOKEN_LIFETIME
            mended.append("expires_in")
        if not isinstance(token.get("scope"), str):
            token["scope"] = "*"
            mended.append("scope")
        if not mended:
            return body
        logger.warning("Reddit's token answer has no usable %s; assuming %s", " or ".join(mended),
                       f"a lifetime of {TOKEN_LIFETIME} s" if "expires_in" in mended else "scope *")
        return json.dumps(token).encode("utf-8")


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    since: float = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    after: str | None = Field(default=None, max_length=AFTER_MAX)
    top: float | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class RedditSource(ConfiguredSource):
    type = "reddit"

    def __init__(self, *, policy: HttpPolicy | None = None, **kwargs) -> None:
        super().__init__(**{**kwargs, "http_factory": None})
        s = self.settings
        policy = policy or getattr(kwargs.get("http_factory"), "policy", None) or HttpPolicy()
        extra: dict[str, Any] = {}
        if s.base_url:  # a replay or proxy: both Reddit hosts at once
            extra = {"oauth_url": s.base_url, "reddit_url": s.base_url}
        self.reddit = praw.Reddit(
            client_id=s.client_id.get_secret_value(),
            client_secret=s.client_secret.get_secret_value(),
            user_agent=s.user_agent or policy.user_agent,
            check_for_updates=False,
            requestor_kwargs={"session": RedditSession(policy)},
            **extra,
        )

    def queries(self) -> list[str]:
        out = [f"search:{t}" for t in self.terms.include] if self.settings.search else []
        return out + list(self.settings.watch)

    def _path(self, query: str) -> tuple[str, dict]:
        subs = "+".join(quote(r, safe="") for r in self.settings.subreddits) or "all"
        if query.startswith("search:"):
            return f"/r/{subs}/search", {"q": query[7:], "sort": "new", "t": self.settings.time_filter,
                                          "syntax": "lucene", "restrict_sr": subs != "all", "raw_json": 1}
        return (f"/r/{subs}/new" if query == "submissions" else f"/r/{subs}/comments"), {"raw_json": 1}

    def _get(self, path: str, params: dict) -> Any:
        try:
            return self.reddit.request(method="GET", path=path, params=params)
        except (prawcore.OAuthException, prawcore.InvalidToken, prawcore.Forbidden) as exc:
            raise SourceAuthError(f"{self.key}: Reddit refused the credentials ({type(exc).__name__})") from None
        except prawcore.ResponseException as exc:
            status = exc.response.status_code
            if status == 401:
                raise SourceAuthError(f"{self.key}: Reddit refused the credentials (HTTP 401)", status=401) from None
            raise SourceError(f"{self.key}: HTTP {status} from Reddit", status=status) from None
        except prawcore.BadJSON:
            raise MalformedResponseError(f"{self.key}: Reddit sent a response that is not valid JSON") from None
        except prawcore.RequestException as exc:
            original = exc.original_exception
            if isinstance(original, SourceError):
                raise original from None
            raise SourceError(f"{self.key}: {type(original).__name__} talking to Reddit") from None
        except prawcore.PrawcoreException as exc:
            raise SourceError(f"{self.key}: {type(exc).__name__} from Reddit") from None
        except (KeyError, TypeError, ValueError) as exc:  # PRAW reading an answer of an unexpected shape
            raise MalformedResponseError(
                f"{self.key}: Reddit's answer lacks what PRAW needs ({type(exc).__name__}: {exc})") from None

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        since = state["since"]
        path, params = self._path(query)
        params = {**params, "limit": PAGE}
        if state.get("after"):
            params["after"] = state["after"]
        data = self._get(path, params)
        listing = data.get("data") if isinstance(data, dict) else None
        children = listing.get("children") if isinstance(listing, dict) else None
        if not isinstance(children, list):
            raise MalformedResponseError(f"{self.key}: response is not a Reddit listing")
        mentions, skipped, reached = [], 0, False
        top, now = state["top"], self.now()
        for child in children:
            try:
                if not isinstance(child, dict) or child.get("kind") not in ("t1", "t3"):
                    raise TypeError("listing child is not a comment or a submission")
                thing = _Thing.model_validate(child.get("data"))
                created = parse_time(thing.created_utc)
                if thing.created_utc <= since:
                    reached = True
                    continue
                if created > now + MAX_CLOCK_SKEW:  # would move the cursor past every item to come
                    raise ValueError("created_utc is in the future")
                mention = self._to_mention(child["kind"], thing, created)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed listing child (%s)", self.key, type(exc).__name__)
                continue
            top = thing.created_utc if top is None else max(top, thing.created_utc)
            if mention is not None:
                mentions.append(mention)
        after = listing.get("after") if isinstance(listing, dict) else None
        if not reached and isinstance(after, str) and 0 < len(after) <= AFTER_MAX and len(children) >= PAGE:
            return FetchResult(mentions, dump_state({"since": since, "after": after, "top": top}), done=False,
                               skipped=skipped)
        return FetchResult(mentions, dump_state({"since": max(since, top or 0), "after": None, "top": None}),
                           skipped=skipped)

    def _parse_cursor(self, cursor: str | None) -> dict:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return {"since": (self.now() - FIRST_RUN_LOOKBACK).timestamp(), "after": None, "top": None}
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():  # would wait for the future forever
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state.model_dump()

    def _to_mention(self, kind: str, t: _Thing, created: datetime) -> Mention | None:
        if kind == "t3":
            title, text = markdown_text(t.title), markdown_text(t.selftext)
        else:
            title, text = markdown_text(t.link_title), markdown_text(t.body)
        if text in ("[deleted]", "[removed]"):
            return None
        if not text and not title:
            return None
        permalink = _permalink(kind, t)
        canonical = None
        if kind == "t3" and not t.is_self and t.url:
            host = (canonical_url(t.url) or "").split("/")[2:3]
            if host and not host[0].endswith(_REDDIT_HOSTS):
                canonical = canonical_url(t.url)
        author = None
        if t.author and t.author not in ("[deleted]", "AutoModerator"):
            author = Author(source=self.type, handle=t.author,
                            url=f"https://www.reddit.com/user/{quote(t.author, safe='')}")
        return Mention(
            source=self.type,
            native_id=t.name,
            brand=self.brand,
            kind="post" if kind == "t3" else "comment",
            title=title or None,
            text=text or title,
            created_at=created,
            url=permalink,
            canonical_url=canonical,
            author=author,
            extra={k: v for k, v in {"subreddit": t.subreddit, "score": t.score, "num_comments": t.num_comments,
                                     "over_18": t.over_18}.items() if v is not None},
        )

    def reach(self, handle: str) -> tuple[int, str] | None:
        if not self.settings.fetch_karma:
            return None
        data = self._get(f"/user/{quote(handle, safe='')}/about", {"raw_json": 1})
        about = data.get("data") if isinstance(data, dict) else None
        if not isinstance(about, dict):
            return None
        karma = about.get("total_karma")
        if not isinstance(karma, int) or isinstance(karma, bool):
            parts = [about.get("link_karma"), about.get("comment_karma")]
            if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
                return None
            karma = sum(p for p in parts if isinstance(p, int))
        return karma, "karma"

    def cursor_since(self, query: str, since: datetime) -> str | None:
        return dump_state({"since": since.timestamp(), "after": None, "top": None})


def _permalink(kind: str, t: _Thing) -> str | None:
    """``https://www.reddit.com`` + ``permalink``; a comment without one gets
    ``/r/{subreddit}/comments/{post id}/_/{id}/`` from ``link_id`` (t3_...), or no URL when that
    cannot be made. A submission without one is skipped (ValueError: only that item)."""
    if t.permalink is not None:
        return f"https://www.reddit.com{t.permalink}" if t.permalink.startswith("/") else None
    if kind == "t3":
        raise ValueError("submission without a permalink")
    post = (t.link_id or "").removeprefix("t3_")
    if not t.subreddit or not post or post == t.link_id or not t.id:
        return None
    parts = (quote(p, safe="") for p in (t.subreddit, post, t.id))
    return "https://www.reddit.com/r/{}/comments/{}/_/{}/".format(*parts)
