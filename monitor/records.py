"""Frozen records passed between stages. Datetimes are timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Author:
    source: str  # e.g. "hackernews"; authors are per source
    handle: str
    display_name: str | None = None
    url: str | None = None
    reach: int | None = None  # karma, followers: whatever the source measures
    reach_kind: str | None = None  # "karma", "followers", ...


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


@dataclass(frozen=True)
class FetchResult:
    """One page of a source: mentions, the cursor to resume from, and how many raw items
    were skipped as malformed (counted in the source's health)."""

    mentions: list[Mention]
    cursor: str | None
    done: bool = True  # False when more pages are waiting right now
    skipped: int = 0


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
