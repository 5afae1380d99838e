"""Data governance: retention (``retention:`` per brand or source; the daemon's daily job and
``monitor retention run``) and erasure of a person (``monitor forget``).

Both delete mentions in batches, each batch with every row derived from it in one
transaction (``store.governance.delete_mentions``), keep the batch's figures as daily
aggregates (``retained_daily``, which the overview's weekly figures add to those of the
live mentions), then bring the advocate figures of the weeks and authors they touched up
to date. Retention applies to configured brands only: the mentions of a brand removed from
config.yaml are kept until it is configured again or they are forgotten.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from monitor import advocates
from monitor.config import Settings
from monitor.store import Store
from monitor.store.governance import Removal
from monitor.store.rows import ForgetCandidate

logger = logging.getLogger(__name__)

BATCH = 500  # mentions per transaction


@dataclass(frozen=True)
class RetentionRule:
    """Delete ``brand``'s mentions created before ``now - keep``: of ``source_keys``, or (None)
    of every source key but ``exclude_keys`` (the brand's rule; sources with their own)."""

    brand: str
    keep: timedelta
    source_keys: tuple[str, ...] | None = None
    exclude_keys: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        return ", ".join(self.source_keys) if self.source_keys is not None else f"{self.brand} (all other sources)"


@dataclass
class GovernanceResult:
    mentions: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    per_rule: list[tuple[RetentionRule, int]] = field(default_factory=list)


def retention_rules(settings: Settings) -> list[RetentionRule]:
    """One rule per source with its own ``retention``, one per brand with one (its other sources)."""
    rules: list[RetentionRule] = []
    for brand in settings.brands:
        own = [(f"{brand.name}:{s.name or s.type}", s.retention) for s in brand.sources if s.retention is not None]
        for key, keep in own:
            rules.append(RetentionRule(brand.name, keep, source_keys=(key,)))
        if brand.retention is not None:
            rules.append(RetentionRule(brand.name, brand.retention, exclude_keys=tuple(k for k, _ in own)))
    return rules


def _model(store: Store, settings: Settings) -> str | None:
    """The model whose labels the figures count (as ``advocates.refresh`` picks it)."""
    return settings.advocates.model or store.advocacy.get_state("model") or store.advocacy.newest_model()


def _refresh(store: Store, settings: Settings, model: str | None, removal: Removal) -> None:
    """The advocate figures of the weeks and authors a deletion touched (deleted rows leave
    no trace the incremental refresh would see)."""
    if removal.weeks:
        store.advocacy.rebuild_weekly(model, sorted(removal.weeks))
    if removal.authors:
        advocates.recompute_persons(store, settings.advocates, removal.authors, model)


def run_retention(store: Store, settings: Settings, *, dry_run: bool = False,
                  should_stop: Callable[[], bool] = lambda: False) -> GovernanceResult:
    """Delete every mention older than its retention, with its derived rows, batch by batch.
    ``dry_run``: count what would go (each batch is deleted and rolled back)."""
    result = GovernanceResult()
    model = _model(store, settings)
    now = store.now()
    for rule in retention_rules(settings):
        done, after = 0, 0
        while not should_stop():
            ids = store.governance.expired(rule.brand, now - rule.keep, source_keys=rule.source_keys,
                                           exclude_keys=rule.exclude_keys, after_id=after, limit=BATCH)
            if not ids:
                break
            removal = store.governance.delete_mentions(ids, model, "retention", dry_run=dry_run)
            if not dry_run:
                _refresh(store, settings, model, removal)
            after = ids[-1]
            done += removal.rows["mentions"]
            result.rows.update(removal.rows)
        result.per_rule.append((rule, done))
        result.mentions += done
    if result.mentions or dry_run:
        store.governance.record_retention(dry_run=dry_run, mentions=result.mentions, rows=dict(result.rows))
    if result.mentions and not dry_run:
        logger.info("retention: deleted %d mention(s) and %d derived row(s)", result.mentions,
                    sum(result.rows.values()) - result.mentions)
    return result


# ------------------------------------------------------------------------ forget


def subject_hash(salt: str, handle: str) -> str:
    """What an erasure record keeps of the handle: a salted SHA-256 (the salt stays in the
    database), so that "was this person erased?" can be answered for a given name, and the
    name cannot be read back."""
    return hashlib.sha256(f"{salt}:{handle.strip().lstrip('@').casefold()}".encode()).hexdigest()


def forget_candidates(store: Store, handle: str, source: str | None = None) -> list[ForgetCandidate]:
    """The authors ``forget`` would erase: the handle (any case, a leading @ ignored) and
    every handle a user linked to it."""
    return store.governance.authors_named(handle.strip().lstrip("@"), source.strip().lower() if source else None)


def forget(store: Store, settings: Settings, handle: str, source: str | None = None, *,
           actor: str | None = None) -> GovernanceResult:
    """Erase a person: their mentions with every derived row (figures kept as counts),
    their marks, links, scores and reach lookups, alert texts that quoted them, and the
    author rows; then record that an erasure happened (a salted hash, no name), also in the
    audit log as ``author.forget`` by ``actor`` (with the counts, never the handle)."""
    result = GovernanceResult()
    authors = [a["id"] for a in forget_candidates(store, handle, source)]
    if not authors:
        return result
    model = _model(store, settings)
    total = Removal()
    while True:
        ids = store.governance.mentions_by(authors, BATCH)
        if not ids:
            break
        removal = store.governance.delete_mentions(ids, model, "erased on request")
        total.add(removal)
        result.mentions += removal.rows["mentions"]
    digest = subject_hash(store.governance.salt(), handle)
    source = source.strip().lower() if source else None
    rows = store.governance.erase_authors(authors, subject_hash=digest, source=source, mentions=result.mentions,
                                          rows=dict(total.rows), actor=actor)
    total.authors -= set(authors)  # their stats went with them; others' (copies promoted) are redone
    _refresh(store, settings, model, total)
    result.rows.update(total.rows)
    result.rows.update(rows)
    logger.info("erasure: %d author(s), %d mention(s)", len(authors), result.mentions)
    return result

