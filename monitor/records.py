"""Frozen records passed between stages. Datetimes are timezone-aware UTC.

``Author`` and ``Mention`` are where values from outside enter: whatever a source hands
them, what comes out is something the store can hold. Every string (text, title, ids,
handle, language, the strings of ``extra``) is cleaned here, in this one place, of lone
surrogates and control characters and cut to a length (``textutil.safe_text``); a reach
outside SQLite's int64 range is dropped as unknown and named in the mention's
``extra["out_of_range"]``; a ``created_at`` outside ``TIME_MIN``..``TIME_MAX`` or a rating
outside 1..5 (a survey score outside 0..10) cannot be built (ValueError: the source skips that item alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.textutil import MAX_TEXT, safe_text

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an SQLite INTEGER holds
TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)  # a mention's created_at, at least...
TIME_MAX = datetime(9000, 1, 1, tzinfo=UTC)  # ...and before: room for any window arithmetic
OUT_OF_RANGE = "out_of_range"  # Mention.extra key: the fields dropped as out of range


def utcnow() -> datetime:
    return datetime.now(UTC)


def bounded_int(value: Any, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int | None:
    """An int within lo..hi (an integral float too), or None: bools, NaN, infinities,
    fractions, other types and anything out of range are unknown, not errors."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and lo <= value <= hi:
        return int(value)
    return None


def utc_time(value: datetime) -> datetime:
    """An aware UTC datetime within TIME_MIN..TIME_MAX (naive is taken as UTC); ValueError
    otherwise, TypeError for what is not a datetime."""
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {type(value).__name__}")
    try:
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    if not TIME_MIN <= value < TIME_MAX:
        raise ValueError(f"time out of range: {value.year:04d}")
    return value


def _text(value: Any, limit: int) -> str:
    return safe_text(value, limit)


def _optional(value: Any, limit: int) -> str | None:
    return None if value is None else safe_text(value, limit)


def _clean_json(value: Any, depth: int = 0) -> Any:
    """``extra`` values made storable as JSON: strings cleaned, non-finite floats to None,
    containers to lists and dicts of the same (nesting capped)."""
    if isinstance(value, str):
        return safe_text(value, 2_000)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict | list | tuple):
        if depth >= 5:
            return None
        if isinstance(value, dict):
            return {safe_text(k, 200): _clean_json(v, depth + 1) for k, v in value.items()}
        return [_clean_json(v, depth + 1) for v in value]
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    if getattr(obj, name) is not value:
        object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Author:
    source: str  # e.g. "hackernews"; authors are per source
    handle: str
    display_name: str | None = None
    url: str | None = None
    reach: int | None = None  # karma, followers: whatever the source measures (int64 range, else None)
    reach_kind: str | None = None  # "karma", "followers", ...
    out_of_range: tuple[str, ...] = field(default=(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _set(self, "source", _text(self.source, 100))
        _set(self, "handle", _text(self.handle, 200))
        _set(self, "display_name", _optional(self.display_name, 200))
        _set(self, "url", _optional(self.url, 2_000))
        reach = bounded_int(self.reach)
        if reach is None and self.reach is not None:  # 1e20 followers: unknown, and said so
            _set(self, "out_of_range", ("reach",))
        _set(self, "reach", reach)
        _set(self, "reach_kind", _optional(self.reach_kind, 50) if reach is not None else None)


@dataclass(frozen=True)
class Mention:
    source: str  # source type name, e.g. "hackernews"
    native_id: str  # unique within the source
    brand: str
    text: str
    created_at: datetime
    url: str | None = None
    title: str | None = None
    author: Author | None = None
    kind: str = "post"  # post, comment, review, ...
    rating: int | None = None  # 1-5 stars for reviews
    lang: str | None = None
    matched_term: str | None = None
    canonical_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    score: int | None = None  # 0-10 survey score (NPS), from `monitor import`

    def __post_init__(self) -> None:
        for name, limit in (("source", 100), ("native_id", 500), ("brand", 200), ("kind", 50)):
            _set(self, name, _text(getattr(self, name), limit))
        _set(self, "text", _text(self.text, MAX_TEXT))
        _set(self, "title", _optional(self.title, 500) or None)
        for name, limit in (("url", 2_000), ("canonical_url", 2_000), ("lang", 64), ("matched_term", 200)):
            _set(self, name, _optional(getattr(self, name), limit))
        _set(self, "created_at", utc_time(self.created_at))
        if self.rating is not None:
            rating = bounded_int(self.rating, 1, 5)
            if rating is None:
                raise ValueError(f"rating out of range: {str(self.rating)[:20]}")
            _set(self, "rating", rating)
        if self.score is not None:
            score = bounded_int(self.score, 0, 10)
            if score is None:
                raise ValueError(f"score out of range: {str(self.score)[:20]}")
            _set(self, "score", score)
        extra = _clean_json(dict(self.extra or {}))
        dropped = [f"author.{name}" for name in (self.author.out_of_range if self.author else ())]
        if dropped:
            extra[OUT_OF_RANGE] = sorted({*extra.get(OUT_OF_RANGE, ()), *dropped})
        _set(self, "extra", extra)


@dataclass(frozen=True)
class FetchResult:
    """One page of a source: mentions, the cursor to resume from, and how many raw items
    were skipped as malformed (counted in the source's health)."""

    mentions: list[Mention]
    cursor: str | None
    done: bool = True  # False when more pages are waiting right now
    skipped: int = 0
    # items the server vouched are as they were (HTTP 304 to a conditional request): counted
    # as fetched, so an unchanged feed reads as alive in the source's health, not as silent
    unchanged: int = 0


@dataclass(frozen=True)
class LabelScore:
    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        return self.probabilities.get(self.label, 0.0)


@dataclass(frozen=True)
class Classification:
    sentiment: LabelScore
    advocacy: LabelScore
    model: str  # name@version
    uncertain: bool = False  # top probability under the configured threshold
    lang: str | None = None
    status: str = "ok"  # ok, unsupported_language, empty
    stance: int | None = None  # -2..+2 toward the target brand (models with a stance head)
    stance_score: float | None = None  # its calibrated expectation, -2.0..+2.0
    # the encoder's sentence vector (monitor.vectors: int8 direction, 384 bytes for MiniLM);
    # None where the engine gives none (a generic hub model, a fake)
    embedding: bytes | None = field(default=None, repr=False, compare=False)
    # monitor.relevance: P(about the mention's brand), None where the brand has no relevance
    # model; off_topic: under the brand's threshold (kept, left out of figures and alerts)
    relevance: float | None = None
    off_topic: bool = False


@dataclass(frozen=True)
class Alert:
    rule: str
    key: str  # idempotency/dedupe key, stable across retries and restarts
    severity: str
    title: str
    body: str
    brand: str | None = None
    mention_ids: tuple[int, ...] = ()
    created_at: datetime = field(default_factory=utcnow)
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
