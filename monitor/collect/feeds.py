"""RSS and Atom feeds through feedparser, with presets for Google Alerts, Google News
search and Reddit's search feed (the keyless Reddit fallback).

Feeds are untrusted XML. The bytes are fetched through http_client.py (size cap,
deadline, SSRF guard) and made safe *before* feedparser sees them (``harden_feed``):

* the bytes are decoded once, here, by their byte order mark, else their XML declaration,
  else as UTF-8 (an unknown encoding name, or one the bytes cannot be in, is taken as
  UTF-8; a byte that is not valid in the encoding becomes U+FFFD, as does a character
  reference to a surrogate or a code point XML forbids, ``&#xD800;``) and handed on as
  UTF-8 that says so: a bad byte costs a character, not the feed;
* entity declarations (billion laughs, external entities) reject the document;
  a plain DOCTYPE is dropped;
* author-like fields are cut to ``AUTHOR_CAP`` characters, because feedparser runs a
  quadratic e-mail regex over them (kurtmckee/feedparser#562); other text is cut to
  ``TEXT_CAP``.

Every pass is linear in the size of the feed (tests/test_source_fuzz.py counts the work).
An entry whose date cannot be read is dated when it was fetched, marked
``extra["date_guessed"] = "fetched"``.

Queries: a feed URL per query (generic, google_alerts) or a search term per query
(google_news, reddit_search). The cursor records the newest entry seen; entries are
deduplicated by the store. The cursor also keeps the last response's ETag and Last-Modified,
sent back as If-None-Match / If-Modified-Since: a 304 is "nothing new", its entries
counted as unchanged (alive, not silent).
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import logging
import re
from datetime import datetime
from urllib.parse import quote, quote_plus

import feedparser
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from pydantic import BaseModel, ConfigDict, Field

from monitor.collect._common import (
    ConfiguredSource,
    canonical_url,
    dump_state,
    read_cursor,
    strip_html,
    time_or_none,
    unwrap_redirect,
)
from monitor.errors import MalformedResponseError
from monitor.records import Author, FetchResult, Mention
from monitor.textutil import safe_text

logger = logging.getLogger(__name__)

AUTHOR_CAP = 256
TEXT_CAP = 200_000
_AUTHORISH = {"author", "creator", "managingeditor", "webmaster", "publisher", "owner", "name", "email",
              "contributor"}
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_CDATA_OPEN, _CDATA_END = re.compile(rb"<!\[CDATA\["), re.compile(rb"\]\]>")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_DOCTYPE_STOP = re.compile(rb"[\[>]")
_SUBSET_END = re.compile(rb"\]\s*>")
_XML_DECL = re.compile(rb"^[ \t\r\n]*<\?xml\b[^<>?]{0,400}\?>")
_XML_DECL_TEXT = re.compile(r"^[ \t\r\n]*<\?xml\b[^<>?]{0,400}\?>")
_DECL_ENCODING = re.compile(rb"""\bencoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z0-9._:-]{1,40})["']""")
_CHARREF = re.compile(r"&((?:amp;)*)#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
# codecs that transform text rather than encode a character set (names as codecs.lookup gives them)
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_BOMLESS = ((b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00?\x00", "utf-16-le"),
            (b"\x00<\x00?", "utf-16-be"))
_AUTHOR_TEXT = re.compile(
    rb"(<(?:[\w.-]{1,50}:)?(?:author|creator|managingEditor|webMaster|publisher|owner|name|email|contributor)"
    rb"\b[^<>]{0,500}>)([^<]{" + str(AUTHOR_CAP).encode() + rb"})[^<]*", re.IGNORECASE)
_REDDIT_FOOTER = re.compile(r"\s*submitted by\s+/u/")

GOOGLE_NEWS = "https://news.google.com"
REDDIT = "https://www.reddit.com"


def _xml_char(m: re.Match) -> str:
    """A numeric character reference (escaped any number of times) to a code point XML
    allows, or to U+FFFD."""
    digits = (m.group(2) or m.group(3)).lstrip("0") or "0"
    code = int(digits, 16 if m.group(2) else 10) if len(digits) <= 8 else -1
    allowed = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or \
        0x10000 <= code <= 0x10FFFF
    return m.group() if allowed else f"&{m.group(1)}#xFFFD;"


def _encoding_of(data: bytes) -> tuple[str, int, str | None]:
    """(codec, length of the byte order mark, the declared name when it was not usable)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom), None
    for start, name in _BOMLESS:
        if data.startswith(start):
            return name, 0, None
    decl = _XML_DECL.match(data)
    found = _DECL_ENCODING.search(decl.group()) if decl else None
    if found is None:
        return "utf-8", 0, None
    declared = found.group(1).decode("ascii")
    try:  # a text encoding in which this ASCII declaration reads as written (not utf-16, rot13 or hex)
        name = codecs.lookup(declared).name
        usable = "<?xml".encode(name) == b"<?xml" and name not in _NOT_CHARSETS
    except (LookupError, ValueError, UnicodeError):
        usable = False
    return (name, 0, None) if usable else ("utf-8", 0, declared)


def _as_utf8(data: bytes) -> bytes:
    """The feed decoded (``_encoding_of``), made of characters XML allows, as UTF-8 whose
    declaration says so. Never raises: what cannot be decoded becomes U+FFFD."""
    name, bom, unusable = _encoding_of(data)
    if unusable is not None:
        logger.warning("feed declares an encoding that cannot be used (%r); read as UTF-8", unusable)
    body = data[bom:]
    try:
        text = body.decode(name)
    except (UnicodeError, LookupError, ValueError):
        fallback = "cp1252" if name in ("utf-8", "ascii") else name  # as feedparser: then Windows-1252
        try:
            text = body.decode(fallback)
        except (UnicodeError, LookupError, ValueError):
            try:
                fallback, text = f"{name} with replacement characters", body.decode(name, errors="replace")
            except (UnicodeError, LookupError, ValueError):  # a codec without "replace" (idna)
                fallback, text = "UTF-8 with replacement characters", body.decode("utf-8", errors="replace")
        logger.warning("feed bytes are not valid %s; read as %s", name, fallback)
    text = safe_text(text, len(text) + 1)  # lone surrogates (utf-7, utf-16) to U+FFFD, control characters out
    if "&" in text:
        text = _CHARREF.sub(_xml_char, text)
    return b'<?xml version="1.0" encoding="utf-8"?>' + _XML_DECL_TEXT.sub("", text, count=1).encode("utf-8")


def _escape_cdata(data: bytes) -> bytes:
    """CDATA sections as escaped text, in one forward scan (the first unterminated one refuses the feed)."""
    out, pos = [], 0
    while (start := _CDATA_OPEN.search(data, pos)) is not None:
        end = _CDATA_END.search(data, start.end())
        if end is None:
            raise MalformedResponseError("feed has unterminated CDATA sections: refused")
        body = data[start.end():end.start()].replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
        out += [data[pos:start.start()], body]
        pos = end.end()
    if not out:
        return data
    out.append(data[pos:])
    return b"".join(out)


def _drop_doctypes(data: bytes) -> bytes:
    """``<!DOCTYPE ...>`` and ``<!DOCTYPE ... [...]>`` removed, in one forward scan: the first
    ``[`` or ``>`` after a DOCTYPE is found once for every DOCTYPE before it."""
    out, pos, scan, stop = [], 0, 0, None
    while (m := _DOCTYPE.search(data, scan)) is not None:
        scan = m.end()
        if stop is None or stop.start() < scan:
            stop = _DOCTYPE_STOP.search(data, scan)
            if stop is None:
                break
        if stop.group() == b">":
            end = stop.end()
        else:
            close = _SUBSET_END.search(data, stop.end())
            if close is None:  # an internal subset never closed: nothing after can be dropped either
                break
            end = close.end()
        out.append(data[pos:m.start()])
        pos = scan = end
    if not out:
        return data
    out.append(data[pos:])
    return b"".join(out)


def harden_feed(data: bytes) -> bytes:
    """Feed bytes (UTF-8) that feedparser can parse in bounded time; MalformedResponseError for
    hostile XML (entity declarations, external references)."""
    data = _as_utf8(data)
    if _ENTITY_DECL.search(data):
        raise MalformedResponseError("feed declares XML entities (hostile XML): refused")
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedResponseError(f"hostile XML refused ({type(exc).__name__})") from None
    except (SafeET.ParseError, ValueError, LookupError):
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
    data = _escape_cdata(_drop_doctypes(data))
    return _AUTHOR_TEXT.sub(rb"\1\2", data)


def _when(entry) -> datetime | None:
    """The entry's first readable date (published, updated, created), or None."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # not entry.get: feedparser maps a missing "updated" with a warning
        if value:
            try:
                found = time_or_none(calendar.timegm(value))
            except (TypeError, ValueError, OverflowError):
                found = None
            if found is not None:
                return found
    return None


def _article_text(entry) -> str:
    """The entry's article as text. feedparser files ``media:description`` (an image caption)
    under ``content`` too, ahead of the description when it follows it, with nothing left to
    tell it apart: so the longest of the contents (``content:encoded``, Atom content) and the
    summary is taken, the article being longer than a caption or an excerpt of it."""
    bodies = [c.get("value") for c in entry.get("content") or [] if isinstance(c, dict)]
    best = ""
    for body in [*bodies, entry.get("summary")]:
        if isinstance(body, str) and body:
            text = strip_html(body)
            if len(text) > len(best):
                best = text
    return best


def _language(value) -> str | None:
    """A declared language tag (``en-us``, ``fr``), or None when there is none worth keeping."""
    if isinstance(value, str) and 0 < len(value.strip()) <= 35:
        return value.strip()
    return None


def _entry_language(entry) -> str | None:
    """The entry's own ``xml:lang`` (on its content, summary or title), if it declares one."""
    details = [c for c in entry.get("content") or [] if isinstance(c, dict)]
    details += [entry.get("summary_detail"), entry.get("title_detail")]
    for detail in details:
        found = _language(detail.get("language")) if isinstance(detail, dict) else None
        if found:
            return found
    return None


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    newest: str = Field(default="", max_length=64)
    # the last full response's validators, sent back so an unchanged feed answers 304, and its entry count
    etag: str | None = Field(default=None, max_length=500)
    modified: str | None = Field(default=None, max_length=100)
    entries: int = Field(default=0, ge=0)


def _validator(value: str | None, limit: int) -> str | None:
    """A response's ETag or Last-Modified, if it can be sent back as a header."""
    if not value or len(value) > limit or not value.isascii() or not value.isprintable():
        return None
    return value


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
        state = (read_cursor(_Cursor, cursor, self.key) or _Cursor()).model_dump()  # CursorError when unreadable
        url = self.feed_url(query)
        headers = {"Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("modified"):
            headers["If-Modified-Since"] = state["modified"]
        status, answer, data = self.http.get_conditional(url, headers=headers)
        if status == 304:  # nothing new since the last run: the feed is alive, its entries as they were
            logger.info("%s: feed not modified since the last run", self.key)
            return FetchResult([], dump_state(state), done=True, unchanged=state.get("entries", 0))
        state["etag"] = _validator(answer.get("etag"), 500)
        state["modified"] = _validator(answer.get("last-modified"), 100)
        safe = harden_feed(data)
        try:
            parsed = feedparser.parse(safe, sanitize_html=True, resolve_relative_uris=False)
        except Exception as exc:  # feedparser's own bugs (a surrogate reference in escaped HTML...): this feed only
            raise MalformedResponseError(f"{self.key}: not a feed (the parser failed: {type(exc).__name__})") from None
        if parsed.get("bozo") and not parsed.entries:
            bozo = parsed.get("bozo_exception")
            raise MalformedResponseError(f"{self.key}: not a feed ({type(bozo).__name__ if bozo else 'unparsable'})")
        mentions, skipped = [], 0
        if parsed.get("bozo"):  # recovered by the lenient parser: keep what parsed, count the damage
            skipped += 1
            bozo = parsed.get("bozo_exception")
            logger.warning("%s: feed is not well-formed (%s); kept %d entries", self.key,
                           type(bozo).__name__ if bozo else "unknown", len(parsed.entries))
        feed = parsed.get("feed")
        language = _language(feed.get("language")) if isinstance(feed, dict) else None  # the channel's <language>
        for entry in parsed.entries[: self.settings.max_entries]:
            try:
                mention = self._to_mention(entry, language)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed feed entry (%s)", self.key, type(exc).__name__)
                continue
            if mention is None:
                skipped += 1
                logger.warning("%s: skipped a feed entry with neither title nor text", self.key)
                continue
            mentions.append(mention)
        state["entries"] = len(mentions) + skipped
        newest = max((m.created_at for m in mentions), default=None)
        if newest is not None and newest.isoformat() > state.get("newest", ""):
            state["newest"] = newest.isoformat()
        return FetchResult(mentions, dump_state(state), done=True, skipped=skipped)

    def _to_mention(self, entry, feed_language: str | None = None) -> Mention | None:
        title = strip_html(entry.get("title"))
        text = _article_text(entry)
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
        # FeedBurner (TechCrunch...) links through feedproxy.google.com; the article's own address
        # is feedburner:origLink, the one other sources' copies share
        link = _http_url(entry.get("feedburner_origlink")) or _http_url(entry.get("link"))
        url = unwrap_redirect(link) if self.preset in ("google_alerts", "google_news") else link
        native = entry.get("id") or url or hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:32]
        if not isinstance(native, str):
            raise TypeError("entry id is not text")
        author = None
        name = entry.get("author")
        if isinstance(name, str) and name.strip():
            handle = name.strip().removeprefix("/u/").removeprefix("u/")
            profile = f"https://www.reddit.com/user/{quote(handle)}" if self.preset == "reddit_search" else None
            author = Author(source=self.item_source, handle=handle, url=profile)
        created, guessed = _when(entry), None
        if created is None:
            created, guessed = self.now(), "fetched"
        return Mention(
            source=self.item_source,
            native_id=native,
            brand=self.brand,
            kind="post" if self.preset == "reddit_search" else "article",
            title=title or None,
            text=text or title,
            created_at=created,
            url=url,
            canonical_url=canonical_url(url) if self.preset != "reddit_search" else None,
            author=author,
            lang=_entry_language(entry) or feed_language,
            extra={"preset": self.preset, **({"date_guessed": guessed} if guessed else {})},
        )
