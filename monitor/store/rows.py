"""The rows the store hands to other layers, one TypedDict per query shape.

Callers index them like the dicts they are (``row["brand"]``, ``row.get("author")``), and
mypy checks every key: a column renamed or dropped here breaks at type-checking, not in
production. Timestamps are ISO 8601 UTC strings as stored (``parse_iso`` reads them);
SQLite booleans are 0/1 integers. Where a column comes from a LEFT JOIN it may be None.
"""

from __future__ import annotations

from typing import Any, TypedDict

# ----------------------------------------------------------------------------- mentions


class MentionText(TypedDict):
    """A stored mention's text fields (``monitor preview`` re-matches them)."""

    id: int
    brand: str
    source: str
    source_key: str
    kind: str
    title: str | None
    text: str
    url: str | None
    created_at: str
    matched_term: str | None


class PendingMention(TypedDict):
    """A mention waiting for a model: ``seen`` 0 when no model classified it yet (it may
    alert), 1 when an earlier model did (history; it never alerts)."""

    id: int
    title: str | None
    text: str
    kind: str
    rating: int | None
    brand: str
    lang: str | None  # the language the source declared
    seen: int


class MentionRow(TypedDict):
    """A mention with its author and one classification (``Store.mentions``)."""

    id: int
    brand: str
    source: str
    source_key: str
    kind: str
    title: str | None
    text: str
    url: str | None
    created_at: str
    rating: int | None
    duplicate_of: int | None
    author: str | None
    reach: int | None
    reach_kind: str | None
    model: str | None
    sentiment: str | None
    sentiment_p: float | None
    advocacy: str | None
    advocacy_p: float | None
    uncertain: int | None
    status: str | None
    classified_lang: str | None
    relevance: float | None  # monitor.relevance: P(about the brand); None: not scored
    off_topic: int  # 1: under the brand's threshold or marked not about it


class ClassifiedMention(TypedDict):
    """A mention with its latest classification and its author, as alert rules read it;
    the probabilities are decoded (label -> probability)."""

    id: int
    brand: str
    source: str
    source_key: str
    kind: str
    title: str | None
    text: str
    url: str | None
    created_at: str
    collected_at: str
    rating: int | None
    lang: str | None
    duplicate_of: int | None
    author_id: int | None
    author: str | None
    reach: int | None
    reach_kind: str | None
    model: str
    sentiment: str | None
    sentiment_p: float | None
    sentiment_probs: dict[str, float]
    advocacy: str | None
    advocacy_p: float | None
    advocacy_probs: dict[str, float]
    uncertain: int
    status: str
    detected_lang: str | None


class SourceRun(TypedDict):
    id: int
    source_key: str
    started_at: str
    finished_at: str | None
    fetched: int
    new: int
    skipped: int
    ok: int
    error: str | None
    auth_failed: int


# ------------------------------------------------------------------------------- alerts


class AlertRow(TypedDict):
    """A stored alert; ``mention_ids`` and ``data`` are JSON text."""

    id: int
    rule: str
    key: str
    severity: str
    brand: str | None
    title: str
    body: str
    mention_ids: str
    data: str
    created_at: str


class DueDelivery(AlertRow):
    """A pending delivery whose time has come, with its alert."""

    delivery_id: int
    channel: str
    attempts: int


class AlertBrief(TypedDict):
    id: int
    rule: str
    severity: str
    brand: str | None
    title: str
    created_at: str


class AlertDetail(AlertBrief):
    """One alert for its page: ``mention_ids`` decoded (ids only); ``explanation``: why a
    windowed alert fired (``alerts.explain``), None for the others."""

    body: str
    mention_ids: list[int]
    explanation: dict[str, Any] | None


class Hold(TypedDict):
    """A match held for a group or a digest."""

    id: int
    rule: str
    kind: str  # "group" or "digest"
    group_key: str
    mention_id: int
    held_at: str


class DeliveryRow(TypedDict):
    id: int
    channel: str
    status: str  # pending, sent, dead
    attempts: int
    next_attempt_at: str
    last_error: str | None
    delivered_at: str | None
    rule: str
    key: str
    severity: str
    title: str
    created_at: str


class AttemptRow(TypedDict):
    id: int
    delivery_id: int
    attempt: int
    started_at: str
    finished_at: str | None
    outcome: str  # started, sent, retry, dead, interrupted
    error: str | None
    retry_at: str | None
    channel: str
    rule: str
    key: str


# ----------------------------------------------------------------------------- accounts


class User(TypedDict):
    id: int
    username: str
    password_hash: str
    created_at: str
    disabled: int
    role: str


class UserListing(TypedDict):
    id: int
    username: str
    created_at: str
    disabled: int
    role: str
    open_items: int  # inbox items assigned to them and not closed or dismissed


class Session(TypedDict):
    """A live session of an enabled user."""

    token_hash: str
    csrf: str
    expires_at: str
    user_id: int
    username: str
    role: str


class Mark(TypedDict):
    author_id: int
    brand: str
    mark: str
    note: str | None
    set_by: str
    set_at: str


class Correction(TypedDict):
    """The newest correction of one mention's field, with the mention's text."""

    id: int
    mention_id: int
    field: str
    label: str
    model_label: str | None
    model: str | None
    set_by: str
    created_at: str
    brand: str
    source: str
    kind: str
    title: str | None
    text: str


# ----------------------------------------------------------------------------- advocacy


class Watermark(TypedDict):
    """The highest mention, classification and correction ids an aggregate has seen."""

    m: int
    c: int
    k: int


class WeeklyRow(TypedDict):
    """advocacy_weekly: counts per brand, ISO week (its Monday), source, signal and basis."""

    brand: str
    week: str
    source: str
    signal: str  # relationship, transactional
    basis: str  # text, stars
    mentions: int
    classified: int
    promoters: float
    passives: float
    detractors: float
    positive: float
    neutral: float
    negative: float


# One authored mention and its effective labels (a user's correction, else the model's):
# (id, author_id, person_id, brand, source, kind, rating, created_at, advocacy, sentiment, corrected)
StanceTuple = tuple[int, int, int, str, str, str, int | None, str, str | None, str | None, int | None, int | None]


class TimelineRow(TypedDict):
    id: int
    author_id: int
    brand: str
    source: str
    kind: str
    rating: int | None
    created_at: str
    title: str | None
    text: str
    url: str | None
    advocacy: str | None
    sentiment: str | None
    corrected: int | None
    score: int | None  # 0-10 survey score (imported)


class AlertWait(TypedDict):
    """A rule's match waiting for its author's reach (``store.alerts.waits_ready``)."""

    rule: str
    mention_id: int
    until: str
    reach: int | None
    lookup_pending: int


class ReachLookup(TypedDict):
    """An author queued for a reach lookup (``Store.reach_lookups_due``)."""

    author_id: int
    handle: str
    attempts: int


class AuthorRow(TypedDict):
    """The authors table."""

    id: int
    source: str
    handle: str
    display_name: str | None
    url: str | None
    reach: int | None
    reach_kind: str | None
    reach_checked_at: str | None
    first_seen: str
    last_seen: str


class AuthorStats(TypedDict):
    """author_stats: one person's figures and scores for one brand (``explain`` is JSON)."""

    person_id: int
    brand: str
    source: str
    handle: str
    sources: str
    mentions: int
    promoters: int
    passives: int
    detractors: int
    reach: int | None
    first_at: str
    last_at: str
    last_promoter_at: str | None
    last_detractor_at: str | None
    weeks_active: int
    promoter_weeks: int
    detractor_weeks: int
    stance: str
    flips: int
    last_flip: str | None
    last_flip_at: str | None
    advocate_score: float
    detractor_score: float
    flag: str | None
    explain: str
    updated_at: str


class AuthorListing(AuthorStats):
    """A row of the advocates (or detractors) list: the stats, the score the list sorts
    by, and the person's marks for the brand (comma-separated, or None)."""

    score: float
    marks: str | None


class MentionBrief(TypedDict):
    id: int
    title: str | None
    text: str
    url: str | None
    source: str
    kind: str
    rating: int | None
    brand: str
    created_at: str


class FoundMention(TypedDict):
    """A row of the mentions search: effective labels, the current model's confidences."""

    id: int
    brand: str
    source: str
    kind: str
    title: str | None
    text: str
    url: str | None
    rating: int | None
    created_at: str
    author_id: int | None
    author: str | None
    advocacy_p: float | None
    sentiment_p: float | None
    model: str | None
    advocacy: str | None
    sentiment: str | None
    corrected: int | None  # 1: a user corrected the advocacy label
    sentiment_corrected: int | None  # 1: a user corrected the sentiment label
    score: int | None  # 0-10 survey score (imported)
    relevance: float | None  # monitor.relevance: P(about the brand); None: not scored
    off_topic: int  # 1: under the threshold or marked not about the brand (left out of figures)


# --------------------------------------------------------------------------- governance


class ErasureRow(TypedDict):
    """That an erasure happened (``monitor forget``): never whose data it was."""

    id: int
    erased_at: str
    subject_hash: str  # salted SHA-256 of the handle as given, lower-cased
    source: str | None
    authors: int
    mentions: int
    rows: str  # JSON {table: rows deleted or rewritten}


class RetentionRun(TypedDict):
    """One pass of retention (``dry_run`` 1: counted, nothing deleted)."""

    id: int
    ran_at: str
    dry_run: int
    mentions: int
    rows: str  # JSON {table: rows}


class ForgetCandidate(TypedDict):
    """An author ``monitor forget`` would erase (the named handle, or one linked to it)."""

    id: int
    source: str
    handle: str
    mentions: int


class MetricsCounts(TypedDict):
    """The operational counts /metrics exposes (no text)."""

    collected: int  # new mentions the source runs stored, in all (grows; retention does not lower it)
    mentions: int
    classifications: int
    backlog: int
    deliveries_pending: int
    deliveries_failing: int
    deliveries_dead: int
    deliveries_sent: int


# ------------------------------------------------------------------------------- inbox


class InboxItem(TypedDict):
    """A response-desk item with its mention, author and latest classification."""

    id: int
    mention_id: int
    brand: str
    priority: str
    state: str  # new, assigned, responded, closed, dismissed
    assignee: str | None
    assignee_disabled: int | None  # 1: the assignee's login is disabled; None: no such user (or none)
    rule: str | None  # the alert rule that routed it here; None: added by hand (entered_by)
    entered_at: str
    entered_by: str | None
    mention_at: str
    due_at: str
    first_response_at: str | None
    responded_by: str | None
    closed_at: str | None
    dismiss_reason: str | None
    breach_alerted_at: str | None
    updated_at: str
    version: int
    source: str
    kind: str
    title: str | None
    text: str
    url: str | None
    native_id: str
    extra: str | None
    rating: int | None
    author_id: int | None
    author: str | None
    reach: int | None
    advocacy: str | None
    sentiment: str | None
    notes: int


class InboxNote(TypedDict):
    id: int
    item_id: int
    author: str
    text: str
    created_at: str


class InboxEvent(TypedDict):
    """One change of an item: who, when, what (entered, assigned, unassigned, responded, closed,
    dismissed, reopened, note, priority), the state before and after."""

    id: int
    item_id: int
    at: str
    actor: str | None
    action: str
    from_state: str | None
    to_state: str | None
    assignee: str | None
    detail: str | None


class ResponseTime(TypedDict):
    """An item's times, for the response-speed figures (``monitor.inbox.response_stats``)."""

    brand: str
    priority: str
    state: str
    mention_at: str
    entered_at: str
    due_at: str
    first_response_at: str | None


class AuditEntry(TypedDict):
    """One entry of the audit log: an ``audit_log`` row (kind ``audit``) or an inbox item's
    event (kind ``inbox``, from ``inbox_events``)."""

    kind: str
    id: int
    at: str
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    detail: str | None
