"""The one place that knows the order of stages: collect -> classify (+ alert rules) -> deliver.

Each stage reads its input rows from the store and writes its output rows; each is
idempotent and can run alone from the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from monitor import relevance
from monitor.alerts.channels import Channel
from monitor.alerts.outbox import deliver_due
from monitor.classify import Classifier, classify_texts
from monitor.classify.labels import empty_result
from monitor.collect import Source
from monitor.errors import ApiChangedError, CursorError, SourceAuthError, SourceError
from monitor.health import API_CHANGED, HealthCheck, api_changed_message, page_malformed, run_malformed
from monitor.matching import Matcher
from monitor.records import Classification, FetchResult, Mention, bounded_int
from monitor.store import Store
from monitor.store.rows import PendingMention, ReachLookup
from monitor.textutil import mention_text, safe_text

if TYPE_CHECKING:
    from monitor.alerts.engine import AlertEngine
    from monitor.config import AlertRule
    from monitor.relevance import RelevanceModel
    from monitor.settings_sources import Brand

logger = logging.getLogger(__name__)

REACH_MAX_AGE = timedelta(days=7)  # an author's reach older than this is looked up again
REACH_LOOKUPS_PER_RUN = 50  # the rest of the queue comes next run
REACH_ATTEMPTS = 3  # failed lookups of one author, then it is given up (until a later mention)
REACH_RETRY = timedelta(minutes=5)  # after a failed lookup, doubling


@dataclass
class RunStats:
    source_key: str
    fetched: int = 0
    new: int = 0
    skipped: int = 0
    filtered: int = 0
    errors: list[str] = field(default_factory=list)
    auth_failed: bool = False
    api_changed: str | None = None  # set when (nearly) every item failed validation: the API changed

    @property
    def ok(self) -> bool:
        return not self.errors


def collect(store: Store, source: Source, matcher: Matcher, *, max_pages: int = 5,
            should_stop: Callable[[], bool] = lambda: False, health: HealthCheck | None = None,
            on_page: Callable[[str, FetchResult, int], None] | None = None) -> RunStats:
    """Fetch every query of one source, page by page; each page and its cursor commit together.

    ``health`` (a health.HealthCheck): assess the source after the run and store a
    source-health alert when it is broken. ``on_page(query, result, new)``: progress.

    A page whose items all failed validation (or a run where nearly all did) is no pile
    of skipped items but a changed API: the run is recorded as failed, marked ``api changed``,
    and health alerts on it at once. A source that tells a changed shape itself raises
    ``ApiChangedError`` (its message names what changed); that is recorded the same way.

    Whatever happens inside (a source bug, an item the store refuses, an unreadable cursor),
    the run ends in a recorded outcome: a ``source_runs`` row, with the error when there was
    one. An unreadable stored cursor is reset to its query's start and reported in that row.
    Only a failure to record the run itself propagates.
    """
    stats = RunStats(source.key)
    started = store.now()
    try:
        match_all = bool(getattr(source, "match_all", False))
        prime = getattr(source, "prime", None)
        if prime is not None:  # state a source keeps across its queries (collect/__init__.py)
            prime({q: store.get_cursor(source.key, q) for q in source.queries()})
        for query in source.queries():
            _collect_query(store, source, query, matcher, stats, match_all=match_all,
                           max_pages=max_pages, should_stop=should_stop, on_page=on_page)
            if stats.auth_failed:
                break
        if not stats.auth_failed:
            _look_up_reach(store, source, should_stop)
    except Exception as exc:  # a bug, or a store that refused a page: recorded, never a wedged source
        stats.errors.append(f"unexpected {type(exc).__name__}")
        logger.exception("%s: collection failed unexpectedly", source.key)
    if stats.api_changed is None and run_malformed(stats.fetched, stats.skipped):
        stats.api_changed = api_changed_message(source.key, stats.skipped, stats.fetched + stats.skipped)
    if stats.api_changed is not None:  # a failed run, marked so that health tells it from a network error
        logger.error("%s", stats.api_changed)
        stats.errors.insert(0, stats.api_changed)
    error = "; ".join(stats.errors) or None
    store.record_run(source.key, started, fetched=stats.fetched, new=stats.new, skipped=stats.skipped,
                     error=API_CHANGED + error if error and stats.api_changed else error,
                     auth_failed=stats.auth_failed)
    if health is not None:
        from monitor.health import check

        check(store, source.key, health)
    logger.info("%s: fetched %d, new %d, filtered %d, skipped %d%s", source.key, stats.fetched, stats.new,
                stats.filtered, stats.skipped, f", errors: {len(stats.errors)}" if stats.errors else "")
    return stats


def _collect_query(store: Store, source: Source, query: str, matcher: Matcher, stats: RunStats, *,
                   match_all: bool, max_pages: int, should_stop: Callable[[], bool],
                   on_page: Callable[[str, FetchResult, int], None] | None) -> list[int]:
    """The pages of one query; returns the ids of new mentions."""
    new_ids: list[int] = []
    cursor = store.get_cursor(source.key, query)
    pages = 0
    while pages < max_pages and not should_stop():
        try:
            result = source.fetch(query, cursor)
        except CursorError as exc:
            if cursor is None:  # not the stored cursor's fault
                stats.errors.append(str(exc))
                logger.error("%s: query %r: %s", source.key, query, exc)
                break
            note = f"{exc}: reset to the start of query {query!r}"
            stats.errors.append(note)
            logger.warning("%s", note)
            store.set_cursor(source.key, query, None)
            cursor = None
            continue
        except SourceAuthError as exc:
            stats.errors.append(str(exc))
            stats.auth_failed = True
            logger.error("%s: %s", source.key, exc)
            break
        except ApiChangedError as exc:  # a changed shape, told by the source itself: alerted like all-invalid pages
            if stats.api_changed is None:
                stats.api_changed = str(exc)
            else:
                stats.errors.append(str(exc))
            break
        except SourceError as exc:
            stats.errors.append(str(exc))
            logger.error("%s: query %r: %s", source.key, query, exc)
            break
        except Exception as exc:  # a source bug or an unforeseen response: counted in health, never fatal
            stats.errors.append(f"unexpected {type(exc).__name__}")
            logger.exception("%s: query %r failed unexpectedly", source.key, query)
            break
        pages += 1
        kept: list[Mention] = []
        for m in result.mentions:
            term = matcher.match_mention(m.title, m.text, m.kind)
            if term is None and match_all:
                term = "*"
            if term is None:
                stats.filtered += 1
            else:
                kept.append(replace(m, matched_term=term))
        stats.fetched += len(result.mentions) + result.unchanged
        stats.skipped += result.skipped
        # items the source read as already stored (unchanged) are valid items: a page of known
        # items and a few odd ones is no changed API
        if stats.api_changed is None and page_malformed(len(result.mentions) + result.unchanged, result.skipped):
            stats.api_changed = api_changed_message(source.key, result.skipped, result.skipped)
        ids = _save_page(store, source.key, query, cursor,
                         FetchResult(kept, result.cursor, result.done, result.skipped), stats,
                         reach_max_age=REACH_MAX_AGE if hasattr(source, "reach") else None)
        stats.new += len(ids)
        new_ids += ids
        if on_page is not None:
            on_page(query, result, len(ids))
        cursor = result.cursor
        if result.done:
            break
    return new_ids


# What the database driver raises for one value it cannot bind (a too-large int, a lone
# surrogate): that item's fault, not the store's. Records rule these out; this is the backstop.
# Anything else the store raises fails the run (recorded) and leaves the cursor where it was.
_ITEM_ERRORS = (ValueError, TypeError, OverflowError)


def _save_page(store: Store, key: str, query: str, cursor: str | None, page: FetchResult,
               stats: RunStats, *, reach_max_age: timedelta | None = None) -> list[int]:
    """Store a page with its cursor. When the store refuses one of its items, the others are
    stored one by one, the refused ones counted as skipped, and then the cursor moves on:
    one bad item never wedges its source."""
    try:
        return store.save_batch(key, query, page, reach_max_age=reach_max_age)
    except _ITEM_ERRORS as exc:
        logger.error("%s: query %r: the store refused a page (%s); storing its items one by one", key, query,
                     type(exc).__name__)
    ids: list[int] = []
    for m in page.mentions:
        try:
            ids += store.save_batch(key, query, FetchResult([m], cursor), reach_max_age=reach_max_age)
        except _ITEM_ERRORS as exc:
            stats.skipped += 1
            logger.error("%s: mention %s not stored (%s)", key, safe_text(m.native_id, 80), type(exc).__name__)
    store.save_batch(key, query, FetchResult([], page.cursor, page.done))
    return ids


def _look_up_reach(store: Store, source: Source, should_stop: Callable[[], bool]) -> None:
    """Look up the reach of queued authors (the source's optional ``reach(handle)``; pages
    queue the authors they bring without a fresh reach). At most ``REACH_LOOKUPS_PER_RUN``
    a run: authors whose mentions wait for it (alert rules with ``min_reach``) first, then
    the longest queued; the queue is in the store, so the rest (or what a kill cut off)
    comes next run. A failed lookup is tried again after ``REACH_RETRY`` (doubling),
    ``REACH_ATTEMPTS`` times in all (a source that asks to wait, ``retry_after``, ends the
    lookups of the run without spending an attempt); an out-of-range or odd answer counts as no reach.
    Each outcome commits alone; none fails the run."""
    lookup: Callable[[str], tuple[int, str] | None] | None = getattr(source, "reach", None)
    if lookup is None:
        return
    for item in store.reach_lookups_due(source.type, REACH_LOOKUPS_PER_RUN):
        if should_stop():
            return
        handle = item["handle"]
        try:
            found = lookup(handle)
        except SourceError as exc:
            if exc.retry_after is not None and not isinstance(exc, SourceAuthError):
                # the source asks to wait (a rate limit, a spent quota): no author's fault, none of
                # their attempts spent; the queue waits for the next run
                logger.info("%s: reach lookups wait for the next run: %s", source.key, exc)
                return
            _reach_failed(store, source, item, str(exc))
            if isinstance(exc, SourceAuthError):
                return
            continue
        except Exception as exc:  # a source bug or an odd answer: this author only
            _reach_failed(store, source, item, f"unexpected {type(exc).__name__}")
            continue
        reach, kind = None, None
        if isinstance(found, tuple) and len(found) == 2:
            reach = bounded_int(found[0])
            if reach is None:
                logger.warning("%s: reach of %s out of range, left unknown", source.key, handle)
            else:
                kind = safe_text(found[1], 50)
        store.reach_found(item["author_id"], reach, kind)


def _reach_failed(store: Store, source: Source, item: ReachLookup, error: str) -> None:
    attempts = item["attempts"] + 1
    retry_at = store.now() + REACH_RETRY * 2 ** (attempts - 1) if attempts < REACH_ATTEMPTS else None
    logger.warning("%s: reach of %s not fetched: %s%s", source.key, item["handle"], error,
                   "" if retry_at else f" (given up after {attempts} attempts)")
    store.reach_failed(item["author_id"], error, retry_at)


BATCH_ROWS = 2048  # mentions read, classified and committed together...
BATCH_CHARS = 250_000  # ...or fewer when their texts are long, so that a batch stays seconds
SHARED_BATCH_ROWS = 512  # ...while other workers share the database (each claims this many at a time)
TEXT_CHARS_MAX = 2_000  # what a text counts towards BATCH_CHARS at most (the model reads two windows at most)
ALERT_IDS_MAX = 500  # mention ids per alert-rule pass (SQLite before 3.32 allows 999 parameters a query)


def classify_pending(store: Store, classifier: Classifier, rules: Sequence[AlertRule] = (),
                     channels_for: Mapping[str, Sequence[str]] | None = None, *,
                     batch_size: int = BATCH_ROWS, limit: int | None = None,
                     progress: Callable[[int], None] | None = None, engine: AlertEngine | None = None,
                     should_stop: Callable[[], bool] = lambda: False, brands: Sequence[Brand] = ()) -> int:
    """Classify every mention the current model has not seen; store each batch together
    with the alerts it triggers (``engine``, or one built from ``rules``). Returns the number classified.
    Each is scored for relevance to its brand (``monitor.relevance``: ``brands``' about/not_about
    texts and the marks); an off-topic one is kept but never alerts.

    New mentions go first. Mentions an earlier model classified (history, after a model
    change) are classified too, but never alert: a new model must not page anyone about
    old posts. Each classification row carries its model, so old and new never mix.

    Batches are large (``batch_size`` mentions, fewer when their texts pass ``BATCH_CHARS``
    characters): the engine sorts a batch by length and pads each run only to its longest,
    so the more texts it sees at once the less padding it computes (tweets 256 at a time
    pad to about 13% more tokens than one sorted run of all of them, 2048 at a time under
    1%), and the fewer reads, commits and rule passes it makes."""
    from monitor.alerts.engine import AlertEngine

    if engine is None and rules:
        engine = AlertEngine(rules, store, channels_for=channels_for or {})
    done = 0
    models: dict[str, RelevanceModel] | None = None
    while (limit is None or done < limit) and not should_stop():  # each batch commits alone: stop between them
        size = batch_size
        if size > SHARED_BATCH_ROWS and store.workers.others_live(store.worker):
            size = SHARED_BATCH_ROWS  # other workers on the database: smaller claims spread a backlog evenly
        claimed = store.workers.claim_mentions(classifier.name, store.worker,
                                               size if limit is None else min(size, limit - done), store.lease)
        if not claimed:  # none left, or every one left is another worker's now
            break
        rows = _within_budget(claimed)
        ids = [r["id"] for r in rows]
        try:
            if len(rows) < len(claimed):  # the rest comes in the next batch, to this worker or another
                store.workers.release_mentions([r["id"] for r in claimed[len(rows):]], store.worker)
            results = _classify_rows(classifier, rows)
            if models is None:
                models = relevance.models_for(store, classifier, brands)
            results = relevance.score_results(models, [r["brand"] for r in rows], results)
            with store.transaction():
                # saved only where this worker still holds the claim: one that stalled past its lease
                # and was taken over by another worker saves nothing twice (no classification, no alert)
                held = store.workers.finish_mentions(ids, store.worker)
                if len(held) < len(ids):
                    logger.warning("%d of %d mention(s) were taken over by another worker while this one "
                                   "classified them (it stalled past its lease); their results are left to it",
                                   len(ids) - len(held), len(ids))
                    keep = [k for k, r in enumerate(rows) if r["id"] in held]
                    rows, results = [rows[k] for k in keep], [results[k] for k in keep]
                store.save_classifications([(r["id"], c) for r, c in zip(rows, results, strict=True)])
                if engine is not None:
                    new = [r["id"] for r in rows if not r["seen"]]
                    for start in range(0, len(new), ALERT_IDS_MAX):
                        engine.on_classified(new[start:start + ALERT_IDS_MAX])
        except BaseException:
            try:  # the claims go back at once instead of one lease later
                store.workers.release_mentions(ids, store.worker)
            except Exception:
                logger.debug("claims not released", exc_info=True)
            raise
        done += len(rows)
        if progress:
            progress(len(rows))
    if engine is not None and not should_stop():  # matches that waited for their author's reach
        engine.settle_waits()
    return done


def reclassify_all(store: Store, classifier: Classifier, *, batch_size: int = BATCH_ROWS, limit: int | None = None,
                   progress: Callable[[int], None] | None = None, brands: Sequence[Brand] = ()) -> int:
    """Run the current model over every stored mention, replacing its own earlier results
    (other models' rows stay, under their names). No alerts. Returns the number classified."""
    done, last_id = 0, 0
    models: dict[str, RelevanceModel] | None = None
    while limit is None or done < limit:
        rows = store.mentions_after(last_id, batch_size if limit is None else min(batch_size, limit - done))
        if not rows:
            break
        rows = _within_budget(rows)
        results = _classify_rows(classifier, rows)
        if models is None:
            models = relevance.models_for(store, classifier, brands)
        results = relevance.score_results(models, [r["brand"] for r in rows], results)
        store.save_classifications([(r["id"], c) for r, c in zip(rows, results, strict=True)])
        done += len(rows)
        last_id = rows[-1]["id"]
        if progress:
            progress(len(rows))
    return done


def _within_budget(rows: list[PendingMention]) -> list[PendingMention]:
    """The first rows whose texts count at most ``BATCH_CHARS`` characters (at least one
    row); the rest come again in the next batch."""
    chars = 0
    for n, r in enumerate(rows):
        chars += min(len(r["title"] or "") + len(r["text"] or ""), TEXT_CHARS_MAX)
        if n and chars > BATCH_CHARS:
            return rows[:n]
    return rows


def _classify_rows(classifier: Classifier, rows: Sequence[PendingMention]) -> list[Classification]:
    texts = [mention_text(r) for r in rows]
    targets: list[str | None] = [r["brand"] for r in rows]
    langs: list[str | None] = [r["lang"] for r in rows]  # as the source declared it
    try:
        return classify_texts(classifier, texts, targets, langs)
    except Exception:
        logger.exception("classifier failed on a batch of %d; retrying one by one", len(rows))
    out: list[Classification] = []
    for row, text, target in zip(rows, texts, targets, strict=True):
        try:
            out += classify_texts(classifier, [text], [target], [row["lang"]])
        except Exception as exc:  # one poison text: mark it, never retry it forever
            logger.error("mention %d could not be classified: %s", row["id"], type(exc).__name__)
            out.append(empty_result(classifier.name, "error"))
    return out


def deliver(store: Store, channels: Mapping[str, Channel], **policy: Any) -> dict[str, int]:
    return deliver_due(store, channels, **policy)
