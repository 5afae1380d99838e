"""Stack Exchange (API 2.3, any site): questions and answers naming the brand.

``GET /2.3/search/excerpts?q=<term>&site=<site>&sort=creation&order=desc&fromdate=<epoch>``
returns questions and answers (``item_type``) newest first, with ``body`` (HTML, the
``withbody`` filter), ``excerpt`` and ``owner{user_id, display_name, reputation, link}``:
the reputation is the author's reach, no extra request. Every response is wrapped:
``{"items": [...], "has_more", "quota_max", "quota_remaining", "backoff"?}``.

The cursor walks the pages of one window and then moves ``since`` to the newest item:

    {"since": S, "page": P, "top": T, "wait_until": W}

* ``since``: items created at or before S are stored (each query reaches ``OVERLAP`` below).
* ``page``: the next page of the window (1 when none is being walked); ``top``: its newest item.
* ``wait_until``: a ``backoff`` (or a throttle ban) asked for no request to the method
  before that time: a fetch before it makes none and returns the cursor unchanged.

Errors come as ``{"error_id", "error_name", "error_message"}`` (often under HTTP 400 whatever
the error): a refused or missing key (400 ``key``, 401-406) is an auth failure, 502
``throttle_violation`` waits the seconds the message names.
"""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.collect._common import (
    ITEM_ERRORS,
    TAG_MAX,
    ConfiguredSource,
    drop_blocks,
    dump_state,
    parse_time,
    read_cursor,
    replace_tags,
    tidy_text,
)
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.records import TIME_MAX, TIME_MIN, Author, FetchResult, Mention

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.stackexchange.com/2.3"
METHOD = "search/excerpts"
PAGE_SIZE = 100
FIRST_RUN_LOOKBACK = timedelta(days=2)
OVERLAP = 600  # seconds: search indexes a new post a little after it was created
MAX_CLOCK_SKEW = timedelta(hours=1)
THROTTLE_WAIT = 600.0  # seconds, when a throttle_violation names no wait
MAX_WAIT = 2 * 86_400.0  # a longer backoff is capped (a ban of "82128 seconds" is ~23 hours)
AUTH_ERRORS = {401, 402, 403, 405, 406}  # access_token_required, invalid_access_token, access_denied, ...
# Sites whose domain is not <site>.stackexchange.com.
SITE_DOMAINS = {"stackoverflow": "stackoverflow.com", "superuser": "superuser.com", "serverfault": "serverfault.com",
                "askubuntu": "askubuntu.com", "mathoverflow.net": "mathoverflow.net", "stackapps": "stackapps.com",
                "stackexchange": "stackexchange.com"}
_EPOCH_MIN, _EPOCH_MAX = int(TIME_MIN.timestamp()), int(TIME_MAX.timestamp())
_ERROR_ID = re.compile(r'"error_id"\s*:\s*(\d{1,6})')
_ERROR_NAME = re.compile(r'"error_name"\s*:\s*"([a-z_]{1,60})"')
_ERROR_MESSAGE = re.compile(r'"error_message"\s*:\s*"([^"\\]{0,200})')
_SECONDS = re.compile(r"(\d{1,9}) seconds")
_TAG = re.compile(r"\s*(/?)\s*([a-zA-Z][a-zA-Z0-9]{0,15})")
_BREAK_OPEN = frozenset({"br", "p", "li", "pre", "blockquote", "hr", "h1", "h2", "h3", "h4", "h5", "h6"})
_BREAK_CLOSE = frozenset({"p", "li", "pre", "blockquote", "div", "h1", "h2", "h3", "h4", "h5", "h6"})


def _se_tag(tag: str) -> str:
    m = _TAG.match(tag)
    if m is None:
        return "<>" if not tag else ""
    name = m.group(2).lower()
    return "\n" if name in (_BREAK_CLOSE if m.group(1) else _BREAK_OPEN) else ""


def html_to_text(value: str | None) -> str:
    """A post's HTML (rendered from markdown: <p>, <pre><code>, <a>, <li>, entities) -> plain text.

    The API escapes a post's text exactly once, so an entity decoded here is text the author
    typed ("List&lt;String&gt;" is "List<String>", a question about generics): unlike feeds
    (strip_html) it is never decoded or stripped a second time. Code keeps its indentation.
    Linear time (collect/_common.py)."""
    if not value:
        return ""
    return tidy_text(html.unescape(replace_tags(drop_blocks(value), _se_tag, TAG_MAX)))


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(ge=_EPOCH_MIN, le=_EPOCH_MAX)
    page: int = Field(default=1, ge=1, le=10_000)
    top: int | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)
    wait_until: float | None = Field(default=None, ge=_EPOCH_MIN, le=_EPOCH_MAX)


class _Owner(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: int | None = None
    display_name: str | None = None
    reputation: int | None = None
    link: str | None = None
    user_type: str | None = None


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question_id: int = Field(ge=1)
    answer_id: int | None = Field(default=None, ge=1)
    item_type: str | None = None
    creation_date: int
    title: str | None = None
    body: str | None = None
    excerpt: str | None = None
    link: str | None = None
    score: Any = None  # optional fields: a wrong type costs the field, never the item
    tags: Any = None
    is_answered: Any = None
    owner: Any = None


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[Any]
    has_more: bool = False
    quota_max: int | None = None
    quota_remaining: int | None = None
    backoff: int | None = None


def site_domain(site: str) -> str:
    """The web domain of an API ``site`` name (for links when an item carries none)."""
    if site in SITE_DOMAINS:
        return SITE_DOMAINS[site]
    head, _, rest = site.partition(".")
    if head == "meta" and rest:  # meta.unix -> unix.meta.stackexchange.com
        return f"meta.{SITE_DOMAINS[rest]}" if rest in SITE_DOMAINS else f"{rest}.meta.stackexchange.com"
    if rest == "stackoverflow":  # ru.stackoverflow, pt.stackoverflow, ...
        return f"{site}.com"
    return site if rest else f"{site}.stackexchange.com"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63 else None


def _tags(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [t[:100] for t in value if isinstance(t, str) and t.isprintable() and _utf8(t)][:50] or None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


class StackExchangeSource(ConfiguredSource):
    type = "stackexchange"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = self.settings.base_url or DEFAULT_BASE_URL
        self.site: str = self.settings.site
        self._wait_until = 0.0  # epoch seconds: no request to METHOD before (a backoff seen in this process)

    def queries(self) -> list[str]:
        return list(self.terms.include)

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = self._parse_cursor(cursor)  # before any request: CursorError when unreadable
        now = self.now().timestamp()
        wait_until = max(self._wait_until, state.wait_until or 0.0)
        if now < wait_until:
            logger.info("%s: backing off %s for %.0fs more", self.key, METHOD, wait_until - now)
            return FetchResult([], dump_state(state), done=True)
        params: dict[str, Any] = {
            "q": query, "site": self.site, "sort": "creation", "order": "desc", "filter": "withbody",
            "fromdate": max(0, state.since - OVERLAP), "pagesize": PAGE_SIZE, "page": state.page}
        key = self.settings.key
        if key is not None:
            params["key"] = key.get_secret_value()
        try:
            data = self.http.get_json(f"{self.base_url}/{METHOD}", params=params)
        except CursorError:
            raise
        except SourceError as exc:
            raise self._api_error(exc) from None
        if isinstance(data, dict) and "error_id" in data:
            raise self._api_error(SourceError(f"{self.key}: error response", detail=json.dumps(data)[:300]))
        try:
            page = _Page.model_validate(data)
        except ValidationError:
            raise MalformedResponseError(f"{self.key}: search response has no 'items' list") from None
        mentions, skipped, times = [], 0, []
        for raw in page.items:
            try:
                item = _Item.model_validate(raw)
                mention = self._to_mention(item)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed item (%s)", self.key, type(exc).__name__)
                continue
            times.append(item.creation_date)
            if mention is not None:
                mentions.append(mention)
        self._note_quota(page, now)
        top = state.top if state.top is not None else (max(times) if times else None)
        if page.has_more and state.page < 10_000:
            next_state = _Cursor(since=state.since, page=state.page + 1, top=top)
            done = False
        else:
            next_state = _Cursor(since=max(state.since, top or 0), page=1, top=None)
            done = True
        if self._wait_until > now:
            next_state.wait_until = self._wait_until
            done = True  # the next page must wait too
        return FetchResult(mentions, dump_state(next_state), done=done, skipped=skipped)

    def _note_quota(self, page: _Page, now: float) -> None:
        if page.backoff is not None and page.backoff > 0:
            self._wait_until = max(self._wait_until, now + min(float(page.backoff), MAX_WAIT))
            logger.info("%s: the API asks for a backoff of %ds", self.key, page.backoff)
        if page.quota_remaining is not None and page.quota_remaining <= 0:
            tomorrow = (self.now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            self._wait_until = max(self._wait_until, tomorrow.timestamp())  # the daily quota resets at UTC midnight
            logger.warning("%s: daily quota used up (quota_max %s)", self.key, page.quota_max)
        elif page.quota_remaining is not None and page.quota_max and page.quota_remaining < page.quota_max // 10:
            logger.warning("%s: %d of %d requests of the daily quota left", self.key, page.quota_remaining,
                           page.quota_max)

    def _api_error(self, exc: SourceError) -> SourceError:
        """An HTTP error with a Stack Exchange error body -> the error it means; others unchanged."""
        detail = exc.detail or ""
        m = _ERROR_ID.search(detail)
        if m is None:
            return exc
        error_id = int(m.group(1))
        name_m, msg_m = _ERROR_NAME.search(detail), _ERROR_MESSAGE.search(detail)
        name = name_m.group(1) if name_m else "error"
        message = msg_m.group(1) if msg_m else ""
        key = self.settings.key
        if key is not None and key.get_secret_value():
            message = message.replace(key.get_secret_value(), "***")
        text = f"{self.key}: Stack Exchange error {error_id} {name}" + (f": {message}" if message else "")
        if error_id in AUTH_ERRORS or (error_id == 400 and message.strip().lower() in ("key", "access_token")):
            return SourceAuthError(text, status=exc.status)
        if error_id == 502:
            seconds = _SECONDS.search(message)
            wait = min(float(seconds.group(1)), MAX_WAIT) if seconds else THROTTLE_WAIT
            self._wait_until = max(self._wait_until, self.now().timestamp() + wait)
            return SourceError(text, retry_after=wait, status=exc.status)
        return SourceError(text, retry_after=exc.retry_after, status=exc.status)

    def _parse_cursor(self, cursor: str | None) -> _Cursor:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return _Cursor(since=int((self.now() - FIRST_RUN_LOOKBACK).timestamp()))
        if state.since > (self.now() + MAX_CLOCK_SKEW).timestamp():  # would wait for the future forever
            raise CursorError(f"{self.key}: unreadable cursor (since is in the future)")
        return state

    def _to_mention(self, item: _Item) -> Mention | None:
        created = parse_time(item.creation_date)
        if created > self.now() + MAX_CLOCK_SKEW:  # would move the cursor past every future item
            raise ValueError(f"creation_date {item.creation_date} is in the future")
        is_answer = item.answer_id is not None or item.item_type == "answer"
        if is_answer and item.answer_id is None:
            raise ValueError("an answer without answer_id")
        text = html_to_text(item.body or item.excerpt)
        title = html_to_text(item.title) or None
        if not text and not title:
            return None
        domain = site_domain(self.site)
        url = f"https://{domain}/a/{item.answer_id}" if is_answer else f"https://{domain}/q/{item.question_id}"
        if item.link and item.link.startswith("https://"):
            url = item.link
        return Mention(
            source=self.type,
            native_id=f"{self.site}:{'a' if is_answer else 'q'}{item.answer_id if is_answer else item.question_id}",
            brand=self.brand,
            kind="answer" if is_answer else "question",
            title=title,
            text=text or title or "",
            created_at=created,
            url=url,
            author=self._author(item.owner),
            extra={k: v for k, v in {"score": _int_or_none(item.score), "question_id": item.question_id,
                                     "site": self.site, "tags": _tags(item.tags),
                                     "is_answered": item.is_answered if isinstance(item.is_answered, bool) else None,
                                     }.items() if v is not None},
        )

    def _author(self, raw: Any) -> Author | None:
        try:
            owner = _Owner.model_validate(raw) if raw is not None else None
        except ValidationError:
            logger.info("%s: unreadable owner, stored without an author", self.key)
            return None
        if owner is None or owner.user_id is None or owner.user_type == "does_not_exist":
            return None
        link = owner.link if owner.link and owner.link.startswith(("https://", "http://")) else None
        return Author(source=self.type, handle=f"{self.site}:{owner.user_id}",
                      display_name=html_to_text(owner.display_name) or None, url=link, reach=owner.reputation,
                      reach_kind="reputation" if owner.reputation is not None else None)

    def cursor_since(self, query: str, since: datetime) -> str:
        """Backfill: walk the window from ``since`` to now again (stored items are kept)."""
        return dump_state(_Cursor(since=int(since.timestamp())))
