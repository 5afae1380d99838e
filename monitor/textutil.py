"""Making untrusted scraped text safe to store and show; the text of a stored mention as the
classifier reads it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_TEXT = 100_000  # characters kept per text field; the rest is cut with a marker
TRUNCATED = " [truncated]"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def safe_text(value: object, limit: int = MAX_TEXT) -> str:
    """A str that SQLite, JSON and every channel accept: lone surrogates become U+FFFD,
    control characters (but tab and newline) are dropped, length is bounded: at most
    ``limit`` characters, the marker included (so cleaning twice changes nothing)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATE.sub("\ufffd", text)
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > limit:
        text = text[:limit - len(TRUNCATED)] + TRUNCATED if limit > len(TRUNCATED) else text[:limit]
    return text


def safe_optional(value: object, limit: int = 2_000) -> str | None:
    return None if value is None else safe_text(value, limit)


def mention_text(row: Mapping[str, Any]) -> str:
    """A stored mention's title and text as one string, exactly as the pipeline classifies it
    (the title left out where the text already starts with it)."""
    title, text = (row.get("title") or "").strip(), (row.get("text") or "").strip()
    if title and text and not text.startswith(title):
        return f"{title}. {text}"
    return text or title
