"""Helpers shared by the sources: HTML to text, canonical URLs, time parsing, cursors.

Canonical URLs link the same story arriving from several sources (the store marks the
later copies ``duplicate_of`` the first). A source sets ``canonical_url`` only when the
mention *is* a story about a web page: a feed entry (its link), an HN story or a
Reddit link post (the page they point to). Posts and comments that merely talk about
a page (Mastodon, Bluesky, HN/Reddit comments, reviews) set none.
"""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from monitor.http_client import HttpClient

logger = logging.getLogger(__name__)

_DROP_BLOCKS = re.compile(r"<(script|style|template|noscript)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<\s*(br|/p|p|/div|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{0,2000}>")
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


def strip_html(value: str | None) -> str:
    """HTML fragment -> plain text: script/style blocks dropped, tags removed, entities
    decoded (twice-escaped feeds are decoded once more), whitespace tidied."""
    if not value:
        return ""
    text = _DROP_BLOCKS.sub(" ", value)
    text = _BREAKS.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    if "<" in text and _TAG.search(text):  # "&lt;b&gt;" in a type="html" title: escaped markup
        text = html.unescape(_TAG.sub("", _DROP_BLOCKS.sub(" ", text)))
    text = text.replace("<", "‹").replace(">", "›") if _TAG.search(text) else text
    text = _SPACES.sub(" ", text)
    return _LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


def drop_html_tags(text: str, *, entities: bool = False) -> str:
    """Plain or markdown text with any HTML in it made inert: script/style blocks and real HTML
    element tags removed, every other ``<...>`` kept as typed. ``entities``: decode character
    references too (markdown does), then drop the tags that decoding revealed."""
    text = _HTML_ELEMENT.sub("", _DROP_BLOCKS.sub(" ", text))
    if entities and "&" in text:
        text = _HTML_ELEMENT.sub("", _DROP_BLOCKS.sub(" ", html.unescape(text)))
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


def parse_time(value: Any) -> datetime:
    """ISO 8601 text (with Z or an offset) or epoch seconds -> aware UTC datetime."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str):
        raise TypeError(f"not a time: {type(value).__name__}")
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def load_state(cursor: str | None, key: str) -> dict:
    """A JSON-object cursor, or {} when there is none or it is unreadable (logged)."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        logger.warning("%s: unreadable cursor, starting afresh", key)
        return {}
    return state


def dump_state(state: dict) -> str:
    return json.dumps(state, sort_keys=True)


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
