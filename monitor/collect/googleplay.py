"""Google Play reviews of an app, per language and country, newest first. Experimental and
unofficial: Google offers no public reviews API for other people's apps (the Developer API's
``reviews.list`` covers only your own app's last week), and Google Play's terms do not allow
automated access. Opt in knowingly.

The request and the reading of the answer follow ``google-play-scraper`` 1.2.7 (JoMingyu,
``reviews(app_id, lang, country, sort=Sort.NEWEST, count, continuation_token)``), re-done here
on the project's HTTP client. The package is not imported, on purpose: importing it runs
``ssl._create_default_https_context = ssl._create_unverified_context``, which turns off TLS
certificate checks for every urllib request of the whole daemon, and its urllib requests would
bypass http_client (SSRF guard, deadline, size cap, stop on SIGTERM, local test servers).

Request: ``POST {base}/_/PlayStoreUi/data/batchexecute?hl=<lang>&gl=<country>``, form field
``f.req = [[["oCPfdb", "<args>", null, "generic"]]]`` where ``<args>`` is the JSON text
``[null,[2,2,[<count>(,null,"<token>")],null,[null x 9]],["<app id>",7]]`` (sort 2: newest).

Answer: ``)]}'`` then JSON: ``[["wrb.fr","oCPfdb","<payload JSON text>",...], ["di",..], ...]``.
The payload is ``[[review, ...], [null, "<continuation token>"](, ...)]``; a review is an array
read by position (the library's ElementSpecs): id [0], user name [1][0], stars [2], text [4],
time [5][0] (epoch seconds: UTC here; the library turns it into naive local time), thumbs-up
[6], developer reply [7] (text [7][1], time [7][2][0]), app version [10].

Drift is reported, never a silent zero: a missing ``)]}'`` prefix, no ``oCPfdb`` row (the RPC
renamed), a payload of another shape, or a page whose every review lacks a field that the
reading needs raises ``ApiChangedError``: the run is marked ``api changed`` and health alerts
at once. A ``PlayGatewayError`` in the answer (the library's throttling sign) or HTTP 429 fails
the run and keeps this source from asking again before the wait is over.

No review has a URL of its own: ``url`` is the app's page with ``reviewId`` added, marked
``extra["url_kind"] = "app_page"``. Reviewers have no public reach. Anonymous reviews
("A Google user") have no author: one such name is many people.

Query: ``"<app id>:<lang>:<country>"``. Cursor: ``{"since", "token", "top", "wait_until"}``:
reviews at or after ``since`` are stored; ``token`` continues a walk down the pages (``top``: the
newest review time of that walk, which becomes ``since`` when the walk meets older reviews or
ends); ``wait_until``: no request before it (throttled). Reviews older than ``since`` on a page
count as fetched (``FetchResult.unchanged``): the answer was whole, only nothing was new.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from monitor.collect._common import (
    ConfiguredSource,
    drop_html_tags,
    dump_state,
    parse_time,
    read_cursor,
    tidy_text,
    time_or_none,
)
from monitor.errors import ApiChangedError, CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.health import API_CHANGED_PAGE_MIN
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://play.google.com"
PATH = "/_/PlayStoreUi/data/batchexecute"
RPC = "oCPfdb"
PREFIX = ")]}'"
SORT_NEWEST = 2
PAGE_SIZE = 100  # the library's default count (it asks 199 at most a request)
FIRST_RUN_LOOKBACK = timedelta(days=7)
MAX_CLOCK_SKEW = timedelta(hours=1)
THROTTLE_WAIT = 300.0  # seconds, when a throttled answer names no wait
MAX_WAIT = 86_400.0
ANONYMOUS = frozenset({"A Google user", "Un utilisateur de Google", "Ein Google-Nutzer", "Un usuario de Google"})
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())
_TOKEN = r"^[A-Za-z0-9_\-+/=.:]{1,4096}$"
_GATEWAY_ERROR = re.compile(rb"PlayGatewayError")
# Positions of a review's fields (google-play-scraper 1.2.7 ElementSpecs.Review); required ones
# cost the review when absent, and cost the page (an API change) when every review lacks them.
FIELDS = {"reviewId": (0,), "score": (2,), "content": (4,), "at": (5, 0)}


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    token: str | None = Field(default=None, pattern=_TOKEN)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)
    wait_until: float | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _Throttled(SourceError):
    """The answer carries the library's throttling sign (PlayGatewayError) instead of reviews."""


class _Missing(ValueError):
    """A required field of a review is absent or of the wrong type."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} {list(FIELDS[name])} missing or of the wrong type")
        self.name = name


def at(node: Any, *path: int) -> Any:
    """``node[p0][p1]...``, or None where the path leaves the arrays (the library's nested_lookup)."""
    for index in path:
        if not isinstance(node, list) or not -len(node) <= index < len(node):
            return None
        node = node[index]
    return node


def request_body(app: str, token: str | None, count: int = PAGE_SIZE) -> dict[str, str]:
    """The form fields of one reviews request (as the library's ReviewsBodyData builds them)."""
    size: list[Any] = [count, None, token] if token else [count]
    args = [None, [2, SORT_NEWEST, size, None, [None] * 9], [app, 7]]
    freq = [[[RPC, json.dumps(args, separators=(",", ":")), None, "generic"]]]
    return {"f.req": json.dumps(freq, separators=(",", ":"))}


def parse_reply(body: bytes, key: str) -> tuple[list[Any], str | None]:
    """A batchexecute answer -> (raw reviews, continuation token or None). ApiChangedError for a
    changed shape, MalformedResponseError for a body cut short, SourceError for an error row."""
    text = body.decode("utf-8", "replace").lstrip("\ufeff")
    if not text.startswith(PREFIX):
        what = "an HTML page: a consent, sign-in or error page?" if text.lstrip()[:1] == "<" else "something else"
        raise ApiChangedError(f"{key}: the answer does not start with {PREFIX} (got {what}); "
                              "else the batchexecute format changed")
    try:
        rows = json.loads(text[len(PREFIX):])
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(f"{key}: the answer is not readable JSON ({type(exc).__name__}): "
                                     "cut short?") from None
    if not isinstance(rows, list):
        raise ApiChangedError(f"{key}: the answer is not a list of rows: the batchexecute format changed")
    data = [r for r in rows if isinstance(r, list) and len(r) >= 3 and r[0] == "wrb.fr"]
    mine = [r for r in data if r[1] == RPC]
    if (not mine or mine[0][2] is None) and _GATEWAY_ERROR.search(body):
        raise _Throttled(f"{key}: throttled")
    if not mine:
        names = sorted({str(r[1])[:20] for r in data})
        raise ApiChangedError(f"{key}: no {RPC} row in the answer" + (
            f" (rows for {', '.join(names)}): the RPC was renamed" if names else ": the batchexecute format changed"))
    row = mine[0]
    if row[2] is None:
        code = at(row, 5, 0)
        if code == 5:
            raise SourceError(f"{key}: Google Play answered NOT_FOUND: is the app id right?")
        raise SourceError(f"{key}: Google Play answered error {str(code)[:20]} for {RPC}")
    if not isinstance(row[2], str):
        raise ApiChangedError(f"{key}: the {RPC} payload is not JSON text: the format changed")
    try:
        payload = json.loads(row[2])
    except (ValueError, RecursionError):
        raise ApiChangedError(f"{key}: the {RPC} payload is not readable JSON: the format changed") from None
    if payload is None or payload == []:
        return [], None  # no reviews (an app without any in this language)
    if not isinstance(payload, list) or not (payload[0] is None or isinstance(payload[0], list)):
        raise ApiChangedError(f"{key}: the {RPC} payload has no list of reviews at [0]: the format changed")
    reviews = payload[0] or []
    # The library reads the token at [-1][-1] (a list there means none); newer answers were seen
    # with a third element after [null, token]: [1][-1] is read too.
    found = [at(payload, i, -1) for i in dict.fromkeys((len(payload) - 1, 1)) if i > 0]
    token = next((t for t in found if isinstance(t, str)), None)
    if token is not None and not re.fullmatch(_TOKEN, token):
        logger.warning("%s: unreadable continuation token: the walk ends with this page", key)
        token = None
    return reviews, token


def review_text(value: str) -> str:
    """A review's text is plain text: HTML elements anyone typed are made inert, other ``<...>`` kept."""
    return tidy_text(drop_html_tags(value, entities=True))


class GooglePlayReviewsSource(ConfiguredSource):
    type = "googleplay"
    match_all = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._wait_until = 0.0  # epoch seconds: throttled, no request before (seen in this process)

    def queries(self) -> list[str]:
        s = self.settings
        return [f"{app}:{lang}:{country}" for app in s.app_ids for lang in s.languages for country in s.countries]

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        app, lang, country = query.split(":", 2)
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        now = self.now().timestamp()
        wait_until = max(self._wait_until, state.wait_until or 0.0)
        if now < wait_until:
            logger.info("%s: throttled, no request for %.0fs more", self.key, wait_until - now)
            return FetchResult([], dump_state(state), done=True)
        try:
            body = self.http.post_form(f"{self.base_url}{PATH}", request_body(app, state.token),
                                       params={"hl": lang, "gl": country},
                                       headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})
        except (CursorError, MalformedResponseError):
            raise
        except SourceAuthError as exc:
            raise SourceAuthError(f"{self.key}: Google Play refused the request (HTTP {exc.status}); no credential "
                                  "is involved: this address may be blocked for automated access",
                                  status=exc.status) from None
        except SourceError as exc:
            if exc.status == 429:
                self._throttled(exc.retry_after)
            raise
        try:
            raws, token = parse_reply(body, self.key)
        except _Throttled:
            wait = self._throttled(None)
            raise SourceError(f"{self.key}: Google Play is throttling (PlayGatewayError); no request for "
                              f"{wait:.0f}s", retry_after=wait) from None
        mentions, skipped, times, missing = [], 0, [], Counter[str]()
        for raw in raws:
            try:
                mention = self._to_mention(raw, app, lang, country)
            except _Missing as exc:
                skipped += 1
                missing[exc.name] += 1
                continue
            except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
                skipped += 1
                missing["(value)"] += 1
                logger.warning("%s: skipped a malformed review (%s)", self.key, type(exc).__name__)
                continue
            times.append(int(mention.created_at.timestamp()))
            if int(mention.created_at.timestamp()) >= state.since:
                mentions.append(mention)
        if skipped:
            self._check_drift(missing, skipped, len(raws))
        if len(mentions) >= API_CHANGED_PAGE_MIN and not any(isinstance(at(r, 1, 0), str) for r in raws):
            logger.warning("%s: field userName [1, 0] missing in all %d reviews of the page: stored without "
                           "authors (the positions may have moved)", self.key, len(raws))
        reached_known = any(t < state.since for t in times)
        top = max([state.top or 0, *times]) or None
        if token is None and len(raws) >= PAGE_SIZE and not reached_known:
            logger.warning("%s: a full page without a continuation token: the walk ends here", self.key)
        if token is not None and not reached_known:
            next_state = _Cursor(since=state.since, token=token, top=top)
            done = False
        else:
            next_state = _Cursor(since=max(state.since, top or 0))
            done = True
        # reviews older than the cursor were read whole: counted as fetched (unchanged), so a
        # quiet app whose newest page holds only known reviews reads as alive, not as silent
        older = sum(1 for t in times if t < state.since)
        return FetchResult(mentions, dump_state(next_state), done=done, skipped=skipped, unchanged=older)

    def _check_drift(self, missing: Counter[str], skipped: int, seen: int) -> None:
        """Every review of the page failed: when one field is what they all lack, the positions
        moved (an API change, named); otherwise the pipeline counts them as skipped."""
        name, count = missing.most_common(1)[0]
        logger.warning("%s: skipped %d malformed reviews of %d (first cause: %s)", self.key, skipped, seen, name)
        if skipped == seen >= API_CHANGED_PAGE_MIN and name in FIELDS and count == seen:
            raise ApiChangedError(f"{self.key}: API changed: field {name} {list(FIELDS[name])} missing in "
                                  f"{count} of {seen} reviews")

    def _throttled(self, retry_after: float | None) -> float:
        wait = min(retry_after if retry_after is not None else THROTTLE_WAIT, MAX_WAIT)
        self._wait_until = max(self._wait_until, self.now().timestamp() + wait)
        return wait

    def _parse_cursor(self, cursor: str | None) -> _Cursor:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return _Cursor(since=int((self.now() - FIRST_RUN_LOOKBACK).timestamp()))
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state

    def _to_mention(self, raw: Any, app: str, lang: str, country: str) -> Mention:
        if not isinstance(raw, list):
            raise TypeError("a review is not an array")
        rid, score, content, seconds = (at(raw, *FIELDS[name]) for name in FIELDS)
        if not isinstance(rid, str) or not 0 < len(rid) <= 300 or not rid.isprintable():
            raise _Missing("reviewId")
        if not isinstance(score, int) or isinstance(score, bool):
            raise _Missing("score")
        if not isinstance(content, str):
            raise _Missing("content")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise _Missing("at")
        if not 1 <= score <= 5:
            raise ValueError("score out of range")
        created = parse_time(seconds)
        if created > self.now() + MAX_CLOCK_SKEW:  # would move the cursor past every later review
            raise ValueError("review time in the future")
        text = review_text(content)
        if not text:
            raise ValueError("empty review")
        name = at(raw, 1, 0)
        author = None
        if isinstance(name, str) and name.strip() and name.strip() not in ANONYMOUS:
            author = Author(source=self.type, handle=name.strip(), display_name=name.strip())
        query = urlencode({"id": app, "hl": lang, "gl": country, "reviewId": rid})
        extra: dict[str, Any] = {"app_id": app, "lang": lang, "country": country, "url_kind": "app_page"}
        thumbs = at(raw, 6)
        if isinstance(thumbs, int) and not isinstance(thumbs, bool) and 0 <= thumbs < 2**53:
            extra["thumbs_up"] = thumbs
        version = at(raw, 10)
        if isinstance(version, str) and version:
            extra["app_version"] = version[:100]
        reply = self._reply(at(raw, 7))
        if reply:
            extra["reply"] = reply
        return Mention(source=self.type, native_id=rid, brand=self.brand, kind="review", text=text,
                       created_at=created, url=f"https://play.google.com/store/apps/details?{query}",
                       rating=score, author=author, lang=lang, extra=extra)

    def _reply(self, node: Any) -> dict[str, str] | None:
        """The developer's answer to a review ([7]: [null, text, [seconds, nanos]]), when there is one."""
        text = at(node, 1)
        if not isinstance(text, str) or not text.strip():
            return None
        reply = {"text": review_text(text)}
        when = time_or_none(at(node, 2, 0))
        if when is not None:
            reply["at"] = when.isoformat()
        return reply

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: walk down from the newest review to ``since`` again (stored reviews are kept)."""
        return dump_state(_Cursor(since=int(since.timestamp())))
