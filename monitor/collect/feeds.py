"""RSS and Atom feeds through feedparser, with presets for Google Alerts, Google News
search and Reddit's search feed (the keyless Reddit fallback).

Feeds are untrusted XML. The bytes are fetched through http_client.py (size cap,
deadline, SSRF guard) and made safe *before* feedparser sees them (``harden_feed``):

* entity declarations (billion laughs, external entities) reject the document;
  a plain DOCTYPE is dropped;
* author-like fields are cut to ``AUTHOR_CAP`` characters, because feedparser runs a
  quadratic e-mail regex over them (kurtmckee/feedparser#562); other text is cut to
  ``TEXT_CAP``.

Queries: a feed URL per query (generic, google_alerts) or a search term per query
(google_news, reddit_search). The cursor records the newest entry seen; entries are
deduplicated by the store, so a feed is simply read whole on every run.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

import feedparser
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from monitor.collect._common import ConfiguredSource, canonical_url, dump_state, load_state, strip_html, unwrap_redirect
from monitor.errors import MalformedResponseError
from monitor.records import Author, FetchResult, Mention
from monitor.textutil import safe_text

logger = logging.getLogger(__name__)

AUTHOR_CAP = 256
TEXT_CAP = 200_000
_AUTHORISH = {"author", "creator", "managingeditor", "webmaster", "publisher", "owner", "name", "email",
              "contributor"}
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]{0,2000}(\[[^\]]{0,100000}\])?\s*>", re.IGNORECASE)
_AUTHOR_TEXT = re.compile(
    rb"(<(?:[\w.-]{1,50}:)?(?:author|creator|managingEditor|webMaster|publisher|owner|name|email|contributor)"
    rb"\b[^<>]{0,500}>)([^<]{" + str(AUTHOR_CAP).encode() + rb"})[^<]*", re.IGNORECASE)
_CDATA = re.compile(rb"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_REDDIT_FOOTER = re.compile(r"\s*submitted by\s+/u/")

GOOGLE_NEWS = "https://news.google.com"
REDDIT = "https://www.reddit.com"


def _escape_cdata(m: re.Match) -> bytes:
    return m.group(1).replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")


def harden_feed(data: bytes) -> bytes:
    """Feed bytes that feedparser can parse in bounded time; MalformedResponseError for
    hostile XML (entity declarations, external references)."""
    if _ENTITY_DECL.search(data):
        raise MalformedResponseError("feed declares XML entities (hostile XML): refused")
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedResponseError(f"hostile XML refused ({type(exc).__name__})") from None
    except SafeET.ParseError:
        root = None
    if root is not None:  # well-formed: cap in the tree (CDATA and entities already decoded)
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            local = el.tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()
            cap = AUTHOR_CAP if local in _AUTHORISH else TEXT_CAP
            if el.text and len(el.text) > cap:
                el.text = el.text[:cap]
            if el.tail and len(el.tail) > TEXT_CAP:
                el.tail = el.tail[:TEXT_CAP]
        return SafeET.tostring(root, encoding="utf-8")
    # Not well-formed (feedparser's lenient parser will try): cap by pattern, in linear time.
    if data.count(b"<![CDATA[") != data.count(b"]]>"):
        raise MalformedResponseError("feed has unterminated CDATA sections: refused")
    data = _DOCTYPE.sub(b"", data)
    data = _CDATA.sub(_escape_cdata, data)
    return _AUTHOR_TEXT.sub(rb"\1\2", data)


def _when(entry) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _http_url(value) -> str | None:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


class FeedSource(ConfiguredSource):
    type = "feed"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        s = self.settings
        self.preset = s.preset
        self.item_source = {"generic": "feed", "reddit_search": "reddit"}.get(s.preset, s.preset)
        default = GOOGLE_NEWS if s.preset == "google_news" else REDDIT
        self.base_url = s.base_url or default

    def queries(self) -> list[str]:
        if self.preset in ("generic", "google_alerts"):
            return list(self.settings.urls)
        return list(self.terms.include)

    def feed_url(self, query: str) -> str:
        s = self.settings
        if self.preset == "google_news":
            lang = s.language.split("-")[0]
            return (f"{self.base_url}/rss/search?q={quote_plus(query)}&hl={quote(s.language)}&gl={quote(s.country)}"
                    f"&ceid={quote(s.country)}:{quote(lang)}")
        if self.preset == "reddit_search":
            where = f"/r/{'+'.join(quote(r, safe='') for r in s.subreddits)}" if s.subreddits else ""
            restrict = "&restrict_sr=on" if s.subreddits else ""
            return f"{self.base_url}{where}/search.rss?q={quote_plus(query)}&sort=new{restrict}"
        return query

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        state = load_state(cursor, self.key)
        url = self.feed_url(query)
        data = self.http.get_bytes(url, headers={"Accept": "application/atom+xml, application/rss+xml, "
                                                           "application/xml;q=0.9, */*;q=0.5"})
        parsed = feedparser.parse(harden_feed(data), sanitize_html=True, resolve_relative_uris=False)
        if parsed.get("bozo") and not parsed.entries:
            bozo = parsed.get("bozo_exception")
            raise MalformedResponseError(f"{self.key}: not a feed ({type(bozo).__name__ if bozo else 'unparsable'})")
        mentions, skipped = [], 0
        if parsed.get("bozo"):  # recovered by the lenient parser: keep what parsed, count the damage
            skipped += 1
            bozo = parsed.get("bozo_exception")
            logger.warning("%s: feed is not well-formed (%s); kept %d entries", self.key,
                           type(bozo).__name__ if bozo else "unknown", len(parsed.entries))
        for entry in parsed.entries[: self.settings.max_entries]:
            try:
                mention = self._to_mention(entry)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed feed entry (%s)", self.key, type(exc).__name__)
                continue
            if mention is None:
                skipped += 1
                logger.warning("%s: skipped a feed entry with neither title nor text", self.key)
                continue
            mentions.append(mention)
        newest = max((m.created_at for m in mentions), default=None)
        if newest is not None and newest.isoformat() > state.get("newest", ""):
            state["newest"] = newest.isoformat()
        return FetchResult(mentions, dump_state(state), done=True, skipped=skipped)

    def _to_mention(self, entry) -> Mention | None:
        title = strip_html(entry.get("title"))
        content = entry.get("content") or []
        body = content[0].get("value") if content and isinstance(content[0], dict) else None
        text = strip_html(body or entry.get("summary"))
        if self.preset == "google_news" and title:
            source = entry.get("source") or {}
            suffix = f" - {source.get('title')}" if isinstance(source, dict) and source.get("title") else ""
            if suffix and title.endswith(suffix):
                title = title[: -len(suffix)]
            if text.startswith(title):  # the description repeats the title and the outlet
                text = ""
        if self.preset == "reddit_search":  # drop the "submitted by /u/x [link] [comments]" footer
            text = _REDDIT_FOOTER.split(text)[0].strip()
        if not title and not text:
            return None
        link = _http_url(entry.get("link"))
        url = unwrap_redirect(link) if self.preset in ("google_alerts", "google_news") else link
        native = entry.get("id") or url or hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:32]
        if not isinstance(native, str):
            raise TypeError("entry id is not text")
        author = None
        name = entry.get("author")
        if isinstance(name, str) and name.strip():
            handle = name.strip().removeprefix("/u/").removeprefix("u/")
            profile = f"https://www.reddit.com/user/{quote(handle)}" if self.preset == "reddit_search" else None
            author = Author(source=self.item_source, handle=safe_text(handle, 200), url=profile)
        created = _when(entry) or self.now()
        return Mention(
            source=self.item_source,
            native_id=safe_text(native, 500),
            brand=self.brand,
            kind="post" if self.preset == "reddit_search" else "article",
            title=safe_text(title, 500) or None,
            text=safe_text(text or title),
            created_at=created,
            url=url,
            canonical_url=canonical_url(url) if self.preset != "reddit_search" else None,
            author=author,
            extra={"preset": self.preset},
        )
