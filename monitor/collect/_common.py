"""Helpers shared by the sources: HTML to text, canonical URLs, time parsing, cursors.

Canonical URLs link the same story arriving from several sources (the store marks the
later copies ``duplicate_of`` the first). A source sets ``canonical_url`` only when the
mention *is* a story about a web page: a feed entry (its link), an HN story or a
Reddit link post (the page they point to). Posts and comments that merely talk about
a page (Mastodon, Bluesky, HN/Reddit comments, reviews) set none.

HTML cleaning runs in time linear in its input, whatever the input: no pattern here can
backtrack over more than a bounded stretch, and every scan moves forward (a block without
its closing tag is searched for once, not once per opening tag). tests/test_source_fuzz.py
counts the work to keep it so.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from monitor.errors import CursorError
from monitor.records import TIME_MAX, TIME_MIN, utc_time

if TYPE_CHECKING:
    from monitor.http_client import HttpClient

logger = logging.getLogger(__name__)

# What reading one item of a page can raise when the item is malformed: the item is skipped and
# logged, never the page (``except ITEM_ERRORS``).
ITEM_ERRORS = (ValidationError, ValueError, TypeError, KeyError, AttributeError, OverflowError)

TAG_MAX = 2_000  # characters inside one "<...>" of strip_html at most; a longer stretch is text
BLOCKS = ("script", "style", "template", "noscript")  # elements dropped with their content
_BLOCK_OPEN: dict[tuple[str, ...], re.Pattern[str]] = {
    names: re.compile(rf"<({'|'.join(names)})\b[^<>]*>", re.IGNORECASE) for names in (BLOCKS, ("script", "style"))}
_BLOCK_END = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in BLOCKS}
_LT, _GT = re.compile("<"), re.compile(">")  # patterns, not str.find: the fuzz suite counts what they scan
_TAG_NAME = re.compile(r"(\s*)(/?)(\w+)")
_HEADING = re.compile(r"h\d")
_SPACES = re.compile(r"[ \t\f\v]+")
_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)
# Real HTML element tags (and comments), for text that is not HTML: "<b>", "</div>", "<img src=x ...>" go,
# "Vec<T>", "<praw.Config object at 0x7f...>", "<your-token>" stay.
_HTML_ELEMENT = re.compile(
    r"<!--.{0,2000}?-->|</?(?:a|abbr|applet|audio|b|base|big|blockquote|body|br|button|center|code|details|dialog|"
    r"div|em|embed|font|form|frame|frameset|h[1-6]|head|hr|html|i|iframe|img|input|label|li|link|marquee|math|"
    r"meta|noscript|object|ol|option|p|pre|s|script|select|small|source|span|strike|strong|style|sub|summary|"
    r"sup|svg|table|tbody|td|template|textarea|th|thead|tr|u|ul|video)(?=[\s/>])[^<>]{0,2000}>",
    re.IGNORECASE | re.DOTALL)

# Query parameters that only track the visit; dropped from canonical URLs.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid",
    "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "ref_src", "ref_url",
    "cmpid", "s_cid", "ncid", "ocid", "sr_share", "spm", "share", "rss", "feature", "at_medium", "at_campaign",
})


def drop_blocks(text: str, names: tuple[str, ...] = BLOCKS) -> str:
    """``<script ...>...</script>`` (and the other ``names``) removed with their content, each
    block to a space; an opening tag that is never closed stays (for the tag pass to remove).
    Linear: a closing tag is looked for once per block, and once at most per name in vain."""
    opener, unclosed = _BLOCK_OPEN[names], set()
    out, pos, scan = [], 0, 0
    while (m := opener.search(text, scan)) is not None:
        name, scan = m.group(1).lower(), m.end()
        if name in unclosed:
            continue
        end = _BLOCK_END[name].search(text, scan)
        if end is None:  # no closing tag after this one: none after any later one either
            unclosed.add(name)
            continue
        out += [text[pos:m.start()], " "]
        pos = scan = end.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def replace_tags(text: str, replace: Callable[[str], str], tag_max: int | None = None) -> str:
    """Each ``<...>`` (a ``<``, the first ``>`` after it, at most ``tag_max`` characters
    between them) replaced by ``replace(what is between)``; as ``re.sub(r"<[^>]{0,tag_max}>")``
    but linear: the next ``>`` is found once for all the ``<`` before it."""
    out, pos, scan, gt = [], 0, 0, -1
    while (lt_at := _LT.search(text, scan)) is not None:
        lt = lt_at.start()
        if gt < lt:
            gt_at = _GT.search(text, lt + 1)
            if gt_at is None:
                break
            gt = gt_at.start()
        if tag_max is not None and gt - lt - 1 > tag_max:
            scan = gt - tag_max - 1  # a "<" before this one is too far from this ">" too
            continue
        out += [text[pos:lt], replace(text[lt + 1:gt])]
        pos = scan = gt + 1
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def has_tag(text: str, tag_max: int = TAG_MAX) -> bool:
    """Whether ``replace_tags(text, ..., tag_max)`` would find a tag (linear)."""
    scan, gt = 0, -1
    while (lt_at := _LT.search(text, scan)) is not None:
        lt = lt_at.start()
        if gt < lt:
            gt_at = _GT.search(text, lt + 1)
            if gt_at is None:
                return False
            gt = gt_at.start()
        if gt - lt - 1 <= tag_max:
            return True
        scan = gt - tag_max - 1
    return False


def _tag_to_break(tag: str) -> str:
    """A line break for <br>, <p>, </p>, </div>, </li>, </hN>; nothing for other tags."""
    m = _TAG_NAME.match(tag)
    if m is None:
        return ""
    name = m.group(3).lower()
    if m.group(2):
        return "\n" if name in ("p", "div", "li") or _HEADING.fullmatch(name) else ""
    return "\n" if name in ("br", "p") else ""


def strip_html(value: str | None) -> str:
    """HTML fragment -> plain text: script/style blocks dropped, tags removed, entities
    decoded (twice-escaped feeds are decoded once more), whitespace tidied. Linear time."""
    if not value:
        return ""
    text = html.unescape(replace_tags(drop_blocks(value), _tag_to_break, TAG_MAX))
    if "<" in text and has_tag(text):  # "&lt;b&gt;" in a type="html" title: escaped markup
        text = html.unescape(replace_tags(drop_blocks(text), lambda tag: "", TAG_MAX))
    text = text.replace("<", "‹").replace(">", "›") if has_tag(text) else text
    text = _SPACES.sub(" ", text)
    return _LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


def drop_html_tags(text: str, *, entities: bool = False) -> str:
    """Plain or markdown text with any HTML in it made inert: script/style blocks and real HTML
    element tags removed, every other ``<...>`` kept as typed. ``entities``: decode character
    references too (markdown does), then drop the tags that decoding revealed."""
    text = _HTML_ELEMENT.sub("", drop_blocks(text))
    if entities and "&" in text:
        text = _HTML_ELEMENT.sub("", drop_blocks(html.unescape(text)))
    return text


def tidy_text(text: str) -> str:
    """Whitespace of plain text: line ends to "\\n", blanks at line ends dropped, 3+ newlines
    to 2, ends stripped. Indentation and runs of spaces are kept (code blocks)."""
    text = _TRAILING.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _LINES.sub("\n\n", text).strip()


def unwrap_redirect(url: str | None) -> str | None:
    """``https://www.google.com/url?...&url=<target>`` (Google Alerts) or ``?q=<target>``
    -> the target; other URLs unchanged."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if parts.path == "/url" and (host == "google.com" or host.endswith(".google.com")):
        params = dict(parse_qsl(parts.query))
        target = params.get("url") or params.get("q")
        if target and target.startswith(("http://", "https://")):
            return target
    return url


def canonical_url(url: str | None) -> str | None:
    """A stable form of a web page's URL: http(s) only, lower-case host without "www." and
    default port, no fragment, tracking parameters (utm_* and TRACKING_PARAMS) removed,
    remaining parameters sorted, no trailing slash (but the root)."""
    if not url:
        return None
    try:
        parts = urlsplit(unwrap_redirect(url.strip()) or "")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().removeprefix("www.")
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS)
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit(("https", host, path, urlencode(query), ""))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_MIN, _EPOCH_MAX = (TIME_MIN - _EPOCH).total_seconds(), (TIME_MAX - _EPOCH).total_seconds()


def parse_time(value: Any) -> datetime:
    """ISO 8601 text (with Z or an offset; none: UTC) or epoch seconds -> aware UTC datetime
    within ``records.TIME_MIN``..``TIME_MAX``. The one time parser of the sources, and total:
    whatever the value (2**62, 1e17, NaN, a boolean, "9999-12-31T23:59:59-23:59", a list) it
    returns a time or raises ValueError, never OSError, OverflowError or TypeError."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        seconds = float(value) if isinstance(value, float) or abs(value) < 2**62 else math.inf
        if not _EPOCH_MIN <= seconds < _EPOCH_MAX:  # NaN too
            raise ValueError(f"epoch seconds out of range: {str(value)[:30]}")
        return _EPOCH + timedelta(seconds=seconds)
    if not isinstance(value, str):
        raise ValueError(f"not a time: {type(value).__name__}")
    if len(value) > 64:
        raise ValueError("not a time: too long")
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return utc_time(dt)


def time_or_none(value: Any) -> datetime | None:
    """``parse_time``, or None where it raises."""
    try:
        return parse_time(value)
    except ValueError:
        return None


M = TypeVar("M", bound=BaseModel)


def read_cursor(model: type[M], cursor: str | None, key: str) -> M | None:
    """A stored cursor validated against its source's ``model`` (None when there is none).
    An unreadable one raises CursorError before any request: the pipeline then reports it
    and resets the query to its start (``monitor cursor reset`` does the same by hand)."""
    if not cursor:
        return None
    try:
        return model.model_validate_json(cursor)
    except (ValidationError, ValueError, RecursionError) as exc:
        what = _first_problem(exc)
        raise CursorError(f"{key}: unreadable cursor ({what})") from None


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors(include_url=False, include_input=False)[0]
        return f"{'.'.join(str(p) for p in e['loc']) or 'cursor'}: {e['msg']}"[:200]
    return type(exc).__name__


def load_state(cursor: str | None, key: str) -> dict:
    """A JSON-object cursor, or {} when there is none; CursorError when it is unreadable."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except (ValueError, RecursionError):
        state = None
    if not isinstance(state, dict):
        raise CursorError(f"{key}: unreadable cursor (not a JSON object)")
    return state


def dump_state(state: dict | BaseModel) -> str:
    if isinstance(state, BaseModel):
        state = state.model_dump()
    return json.dumps(state, sort_keys=True)


def window_step(state: dict[str, Any], times: list[int], full: bool) -> tuple[dict[str, Any], bool]:
    """The next cursor of a newest-first walk down a time window (``since`` .. ``upto``, with
    ``top`` the newest item seen), from one page's item times: a full page moves ``upto``
    below its oldest item; the last page closes the window at ``top``. Returns (state, done)."""
    top = state["top"] if state["top"] is not None else (max(times) if times else None)
    if full and times:
        upto = min(times)
        if state["upto"] is not None and upto >= state["upto"]:
            upto = state["upto"] - 1  # a full page within one second: move on rather than loop
        return {"since": state["since"], "upto": upto, "top": top}, False
    return {"since": max(state["since"], top or 0), "upto": None, "top": None}, True


class ConfiguredSource:
    """What every source built from config shares (brand, key, terms, client, clock)."""

    type = ""
    match_all = False  # True: every item is about the brand (its own app's reviews, its own feed)

    def __init__(self, *, brand, settings, http_factory, now) -> None:
        self.brand = brand.name
        self.settings = settings
        self.key = f"{brand.name}:{settings.name or settings.type}"
        self.terms = settings.terms or brand.terms
        self._http = http_factory() if http_factory is not None else None
        self.now = now
        self.match_all = bool(getattr(settings, "match_all", False) or type(self).match_all)

    @property
    def http(self) -> HttpClient:
        """The source's HTTP client (a source that fetches over HTTP is built with an ``http_factory``)."""
        if self._http is None:
            raise TypeError(f"{self.key}: built without an http_factory")
        return self._http

    def cursor_since(self, query: str, since: datetime) -> str | None:
        """A cursor that makes the next fetch start at ``since`` (backfill); None when the
        source cannot go back in time."""
        return None
