"""SQLite store: the only package that imports sqlite3 / sqlite_utils, and the only place
with SQL.

One ``Store`` object per database connection. Its own methods carry a mention through the
pipeline (collect: cursors, batches, runs, reach; classify: pending mentions and their
classifications; ``mentions`` for listing); one sub-object per other area:

* ``store.alerts``    rules' input, noise-control ledger, the outbox, delivery attempts
* ``store.advocacy``  advocate aggregates and the web page's reads
* ``store.accounts``  the web page's own writes: users and roles, sessions, marks, corrections, links
* ``store.audit``     the audit log: who changed what, when (inbox changes read from inbox_events)
* ``store.themes``    sentence vectors of a brand's mentions, the themes found in them
* ``store.governance`` retention and erasure deletes, kept figures, erasure records, metrics
* ``store.inbox``     the response desk: items, notes, their audit trail, response times
* ``store.handoff``   hand-off: flags announced as events, CRM export fields, API tokens
* ``store.programme`` the advocate programme: status and its history, rewards, referral codes
  and imported referrals (the source of truth of the author marks)
* ``store.relevance`` relevance marks with their vectors, rescoring a brand's mentions
* ``store.workers``   several workers on one database: their rows, leases, claims of mentions
  and deliveries (``store.worker`` is this process's name there)

Rows come back as the TypedDicts of ``monitor.store.rows``. One writer connection per
process (WAL, busy timeout, synchronous=FULL); readers such as the web page open the file
read-only (``Store(path, readonly=True)``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlite_utils import Database

from monitor.errors import StoreError
from monitor.records import Author, Classification, FetchResult, Mention, utcnow
from monitor.store._pg import PgConnection, PgDatabase, apply_migrations, is_url, safe_url
from monitor.store._sql import Cursor, add_filters, iso, marks, parse_iso
from monitor.store.accounts import AccountStore
from monitor.store.advocacy import OFF_TOPIC, ON_TOPIC, AdvocacyStore
from monitor.store.alerts import AlertStore
from monitor.store.audit import AuditStore
from monitor.store.governance import GovernanceStore
from monitor.store.handoff import HandoffStore
from monitor.store.inbox import InboxStore
from monitor.store.migrations import migrations
from monitor.store.programme import ProgrammeStore
from monitor.store.relevance import RelevanceStore
from monitor.store.rows import MentionRow, MentionText, PendingMention, ReachLookup, SourceRun
from monitor.store.themes import ThemeStore
from monitor.store.workers import WorkerStore
from monitor.textutil import safe_optional, safe_text

__all__ = ["AccountStore", "AdvocacyStore", "AlertStore", "AuditStore", "GovernanceStore", "InboxStore", "Store", "iso",
           "parse_iso"]

logger = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any]


class Store:
    def __init__(self, path: str | Path, *, readonly: bool = False,
                 now: Callable[[], datetime] = utcnow) -> None:
        # ``path``: a SQLite file, or a ``postgresql://`` URL (monitor.store._pg: the same SQL,
        # translated once per statement; SQLite's path below is untouched by it)
        self.url = str(path) if is_url(path) else None
        self.path = Path(path) if self.url is None else Path()
        self.now = now
        # errors and alert texts pass through it before they are stored: the CLI hands in the
        # redaction of the configured secrets (monitor.redaction), so no secret is kept
        self.redact: Callable[[str], str] = _unchanged
        # a mention's title and text pass through it before they are stored: the CLI hands in
        # the redaction of e-mail addresses and phone numbers with privacy.redact_contacts
        self.clean_text: Callable[[str], str] = _unchanged
        self.readonly = readonly
        # this process among the workers that share the database (monitor.store.workers): the
        # name its leases and claims carry; ``lease`` is how long they last unless renewed
        self.worker = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease = timedelta(seconds=60)
        # One connection shared by the daemon's threads: a transaction or a query holds it alone.
        self._lock = threading.RLock()
        self.conn: Any
        self.db: Any
        if self.url is not None:
            self.conn = PgConnection(self.url, readonly=readonly)
            self.db = PgDatabase(self.conn)
        else:
            self.conn = self._open_sqlite(readonly)
            self.db = Database(self.conn)
        self.alerts = AlertStore(self)
        self.advocacy = AdvocacyStore(self)
        self.accounts = AccountStore(self)
        self.audit = AuditStore(self)
        self.governance = GovernanceStore(self)
        self.themes = ThemeStore(self)
        self.inbox = InboxStore(self)
        self.relevance = RelevanceStore(self)
        self.programme = ProgrammeStore(self)
        self.handoff = HandoffStore(self)
        self.workers = WorkerStore(self)
        if not readonly:
            self._migrate()

    @property
    def postgres(self) -> bool:
        """Whether this store is on PostgreSQL (for the few methods whose SQL differs)."""
        return self.url is not None

    def _open_sqlite(self, readonly: bool) -> sqlite3.Connection:
        try:
            if readonly:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 5000")
            else:
                if not self.path.parent.exists():
                    raise StoreError(f"database folder {self.path.parent} does not exist")
                conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 10000")  # before WAL: the switch needs a lock
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        return conn

    def _migrate(self) -> None:
        if self.url is not None:
            apply_migrations(self.db, migrations.name, [(m.name, m.fn) for m in migrations._migrations])
            return
        try:
            migrations.apply(self.db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare database {self.path}: {exc}") from None

    @property
    def target(self) -> str:
        """Where the data is, for messages: the file, or the URL without its password."""
        return str(self.path) if self.url is None else safe_url(self.url)

    def database_now(self) -> datetime:
        """The database server's clock (PostgreSQL: ``clock_timestamp()``), for what several
        processes on several machines must agree on, such as when a lease runs out; on SQLite,
        one machine, the store's own clock."""
        if self.url is None:
            return self.now()
        with self._lock:
            value = self.conn.execute("SELECT clock_timestamp()").fetchone()[0]
        return cast("datetime", value).astimezone(UTC)

    @property
    def skip_locked(self) -> str:
        """`` FOR UPDATE SKIP LOCKED`` on PostgreSQL, nothing on SQLite (one writer there: its
        transaction already holds the whole file): appended to a SELECT that claims rows inside
        a ``transaction()``, so that several workers each claim different ones."""
        return " FOR UPDATE SKIP LOCKED" if self.url is not None else ""

    def close(self) -> None:
        self.conn.close()

    def open_reader(self) -> Store:
        """A second, read-only connection to the same file (long reads that must not hold
        this one: the store's writes go on meanwhile). The caller closes it."""
        return Store(self.url or self.path, readonly=True, now=self.now)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """BEGIN IMMEDIATE ... COMMIT: everything inside lands together or not at all.

        Nested, a savepoint. The shape of sqlite-utils' ``Database.atomic()``: an error SQLite
        raised may have ended the transaction already (a trigger's ``RAISE(ROLLBACK)``), so
        roll back only one still open, and let the real error through; a COMMIT that fails
        (a deferred constraint, disk full, I/O) leaves it open, so roll it back: otherwise
        every later ``transaction()`` would be a savepoint inside it that never commits.
        """
        with self._lock:
            if self.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.conn.execute("BEGIN IMMEDIATE")  # PostgreSQL: BEGIN
            try:
                yield self.db
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows as plain dicts. For the store's own modules, tests and one-off inspection:
        other layers call the typed methods."""
        with self._lock:
            return list(self.db.query(sql, dict(params) if isinstance(params, Mapping) else list(params)))

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """One statement on the writer connection (inside a ``transaction()`` for writes)."""
        return cast("Cursor", self.conn.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        return cast("Cursor", self.conn.executemany(sql, rows))

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows as tuples (for the store's own modules: large reads, no dict per row)."""
        with self._lock:
            return cast("list[tuple[Any, ...]]", self.conn.execute(sql, params).fetchall())

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        with self._lock:
            row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ collection

    def get_cursor(self, source_key: str, query: str) -> str | None:
        with self._lock:
            cursor = self.scalar("SELECT cursor FROM cursors WHERE source_key = ? AND query = ?", [source_key, query])
        return None if cursor is None else str(cursor)

    def save_batch(self, source_key: str, query: str, result: FetchResult, *,
                   reach_max_age: timedelta | None = None) -> list[int]:
        """Store a fetched page and advance its cursor in one transaction. With
        ``reach_max_age`` (the source looks up reach its pages do not carry), the authors of
        new mentions whose reach is unknown or older than that are queued for a lookup in
        the same transaction (``reach_lookups_due``): a kill after the page loses none.

        Returns the ids of mentions that were new; already-stored ones are left as they are.
        """
        now = iso(self.now())
        new_ids: list[int] = []
        with self.transaction():
            for mention in result.mentions:
                mid = self._insert_mention(source_key, mention, now)
                if mid is not None:
                    new_ids.append(mid)
            self.conn.execute(_SET_CURSOR, [source_key, query, result.cursor, now])
            if reach_max_age is not None and new_ids:
                self._queue_reach_lookups(new_ids, iso(self.now() - reach_max_age), now)
        return new_ids

    def _upsert_author(self, author: Author, now: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO authors (source, handle, display_name, url, reach, reach_kind, reach_checked_at, "
            "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, handle) DO UPDATE SET last_seen = excluded.last_seen, "
            "display_name = COALESCE(excluded.display_name, authors.display_name), "
            "url = COALESCE(excluded.url, authors.url), "
            "reach = COALESCE(excluded.reach, authors.reach), "
            "reach_kind = COALESCE(excluded.reach_kind, authors.reach_kind), "
            "reach_checked_at = CASE WHEN excluded.reach IS NULL THEN authors.reach_checked_at "
            "ELSE excluded.reach_checked_at END "
            "RETURNING id",
            [
                author.source,
                safe_text(author.handle, 200),
                safe_optional(author.display_name, 200),
                safe_optional(author.url),
                author.reach,
                author.reach_kind,
                now if author.reach is not None else None,
                now,
                now,
            ],
        )
        return int(cur.fetchone()[0])

    def _insert_mention(self, source_key: str, m: Mention, now: str) -> int | None:
        author_id = self._upsert_author(m.author, now) if m.author else None
        canonical = m.canonical_url
        duplicate_of, supersedes = None, False
        if canonical:
            # the oldest post is the original, whatever order it arrives in (listings come newest
            # first): a copy older than the present original takes its place, below
            row = self.conn.execute(
                "SELECT id, created_at FROM mentions WHERE canonical_url = ? AND brand = ? AND duplicate_of IS NULL "
                "AND NOT (source = ? AND native_id = ?) ORDER BY id LIMIT 1",
                [canonical, m.brand, m.source, m.native_id],
            ).fetchone()
            supersedes = row is not None and iso(m.created_at) < row[1]
            duplicate_of = int(row[0]) if row and not supersedes else None
        cur = self.conn.execute(
            "INSERT INTO mentions (source, source_key, native_id, brand, kind, title, text, url, canonical_url, "
            "duplicate_of, author_id, rating, lang, matched_term, created_at, collected_at, extra, score) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, native_id, brand) DO NOTHING RETURNING id",
            [
                m.source,
                source_key,
                safe_text(m.native_id, 500),
                m.brand,
                m.kind,
                None if m.title is None else safe_text(self.clean_text(safe_text(m.title, 2_000)), 2_000),
                safe_text(self.clean_text(safe_text(m.text))),
                safe_optional(m.url),
                safe_optional(canonical),
                duplicate_of,
                author_id,
                m.rating,
                m.lang,
                safe_optional(m.matched_term, 200),
                iso(m.created_at),
                now,
                json.dumps(m.extra, ensure_ascii=True, default=str) if m.extra else None,
                m.score,
            ],
        )
        row = cur.fetchone()
        if row and supersedes:
            self.conn.execute("UPDATE mentions SET duplicate_of = ? WHERE canonical_url = ? AND brand = ? AND id != ?",
                              [int(row[0]), canonical, m.brand, int(row[0])])
        return int(row[0]) if row else None

    # ------------------------------------------------------------------ reach lookups

    def _queue_reach_lookups(self, mention_ids: Sequence[int], stale_before: str, now: str) -> None:
        for start in range(0, len(mention_ids), 500):
            chunk = mention_ids[start:start + 500]
            self.conn.execute(
                "INSERT INTO reach_lookups (author_id, queued_at, attempts, next_at) "
                "SELECT DISTINCT a.id, ?, 0, ? FROM mentions m JOIN authors a ON a.id = m.author_id "
                f"WHERE m.id IN ({marks(len(chunk))}) AND (a.reach_checked_at IS NULL OR a.reach_checked_at < ?) "
                "ON CONFLICT (author_id) DO NOTHING",
                [now, now, *chunk, stale_before])

    def reach_lookups_due(self, source_type: str, limit: int) -> list[ReachLookup]:
        """Queued authors of one source type whose lookup is due: first those with a mention
        waiting for their reach (an alert rule with ``min_reach``), then the longest queued."""
        return cast("list[ReachLookup]", self.query(
            "SELECT q.author_id, a.handle, q.attempts FROM reach_lookups q JOIN authors a ON a.id = q.author_id "
            "WHERE a.source = ? AND q.next_at <= ? "
            "ORDER BY EXISTS (SELECT 1 FROM alert_waits w JOIN mentions m ON m.id = w.mention_id "
            "WHERE w.resolved_at IS NULL AND m.author_id = q.author_id) DESC, q.queued_at, q.author_id LIMIT ?",
            [source_type, iso(self.now()), limit]))

    def reach_found(self, author_id: int, reach: int | None, reach_kind: str | None) -> None:
        """A lookup answered: its reach is stored (None: the source knows none for this
        author; an earlier value stays) and the author leaves the queue."""
        with self.transaction():
            self.conn.execute(
                "UPDATE authors SET reach = COALESCE(?, reach), reach_kind = COALESCE(?, reach_kind), "
                "reach_checked_at = ? WHERE id = ?",
                [reach, reach_kind if reach is not None else None, iso(self.now()), author_id])
            self.conn.execute("DELETE FROM reach_lookups WHERE author_id = ?", [author_id])

    def reach_failed(self, author_id: int, error: str, retry_at: datetime | None) -> None:
        """A lookup failed: tried again from ``retry_at``, or (None) given up: the author
        leaves the queue with the reach unknown (queued again by a later mention)."""
        with self.transaction():
            if retry_at is None:
                self.conn.execute("DELETE FROM reach_lookups WHERE author_id = ?", [author_id])
            else:
                self.conn.execute(
                    "UPDATE reach_lookups SET attempts = attempts + 1, next_at = ?, last_error = ? "
                    "WHERE author_id = ?", [iso(retry_at), safe_text(error, 500), author_id])

    def record_run(self, source_key: str, started_at: datetime, *, fetched: int, new: int, skipped: int,
                   error: str | None, auth_failed: bool = False) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO source_runs (source_key, started_at, finished_at, fetched, new, skipped, ok, error, "
                "auth_failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [source_key, iso(started_at), iso(self.now()), fetched, new, skipped, int(error is None),
                 safe_optional(None if error is None else self.redact(error), 1000), int(auth_failed)],
            )

    # ------------------------------------------------------------------ source health

    def recent_runs(self, source_key: str, limit: int = 50, before_id: int | None = None) -> list[SourceRun]:
        """A source's latest runs (older than run ``before_id`` when given), newest first."""
        return cast("list[SourceRun]", self.query(
            "SELECT id, source_key, started_at, finished_at, fetched, new, skipped, ok, error, auth_failed "
            "FROM source_runs WHERE source_key = ? AND id < ? ORDER BY id DESC LIMIT ?",
            [source_key, 2**63 - 1 if before_id is None else before_id, limit]))

    def last_success(self, source_key: str) -> str | None:
        rows = self.query("SELECT max(finished_at) AS at FROM source_runs WHERE source_key = ? AND ok = 1",
                          [source_key])
        return cast("str | None", rows[0]["at"]) if rows else None

    def run_source_keys(self) -> list[str]:
        return [str(r["source_key"]) for r in self.query("SELECT DISTINCT source_key FROM source_runs ORDER BY 1")]

    def mention_sources(self) -> list[tuple[str, str, str]]:
        """Each (brand, source key, source type) stored mentions come from, sorted: what the
        CLI's --brand and --source resolve against besides the configured ones."""
        return [(str(r["brand"]), str(r["source_key"]), str(r["source"])) for r in self.query(
            "SELECT DISTINCT brand, source_key, source FROM mentions ORDER BY 1, 2, 3")]

    def set_cursor(self, source_key: str, query: str, cursor: str | None) -> None:
        with self.transaction():
            self.conn.execute(_SET_CURSOR, [source_key, query, cursor, iso(self.now())])

    def iter_mention_texts(self, batch: int = 1000) -> Iterator[MentionText]:
        """Every stored mention's text fields, oldest first, in batches (for `monitor preview`)."""
        last = 0
        while True:
            rows = cast("list[MentionText]", self.query(
                "SELECT id, brand, source, source_key, kind, title, text, url, created_at, matched_term FROM mentions "
                "WHERE id > ? ORDER BY id LIMIT ?", [last, batch]))
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    # ------------------------------------------------------------------ classification

    def unclassified(self, model: str, limit: int) -> list[PendingMention]:
        """Mentions without a classification by ``model``: never-classified ones first
        (``seen`` 0: new mentions, which may alert), then those an earlier model classified
        (``seen`` 1: history a new model catches up on), oldest first within each."""
        return cast("list[PendingMention]", self.query(
            "SELECT m.id, m.title, m.text, m.kind, m.rating, m.brand, m.lang, "
            "EXISTS (SELECT 1 FROM classifications o WHERE o.mention_id = m.id) AS seen FROM mentions m "
            "WHERE NOT EXISTS (SELECT 1 FROM classifications c WHERE c.mention_id = m.id AND c.model = ?) "
            "ORDER BY seen, m.id LIMIT ?",
            [model, limit],
        ))

    def pending_mentions(self, ids: Sequence[int]) -> list[PendingMention]:
        """Mentions by id, in the order of ``ids``, shaped as ``unclassified`` returns them
        (those deleted meanwhile are left out)."""
        found: dict[int, PendingMention] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            for r in self.query(
                    "SELECT m.id, m.title, m.text, m.kind, m.rating, m.brand, m.lang, "
                    "EXISTS (SELECT 1 FROM classifications o WHERE o.mention_id = m.id) AS seen FROM mentions m "
                    f"WHERE m.id IN ({', '.join('?' * len(part))})", part):
                found[r["id"]] = cast("PendingMention", r)
        return [found[i] for i in ids if i in found]

    def count_unclassified(self, model: str) -> int:
        return self.count(
            "SELECT count(*) FROM mentions m WHERE NOT EXISTS "
            "(SELECT 1 FROM classifications c WHERE c.mention_id = m.id AND c.model = ?)",
            [model],
        )

    def mentions_after(self, after_id: int, limit: int) -> list[PendingMention]:
        """Every mention in id order (for re-running a model over the whole history)."""
        return cast("list[PendingMention]", self.query(
            "SELECT m.id, m.title, m.text, m.kind, m.rating, m.brand, m.lang, 1 AS seen FROM mentions m "
            "WHERE m.id > ? ORDER BY m.id LIMIT ?", [after_id, limit]))

    def count_mentions(self) -> int:
        return self.count("SELECT count(*) FROM mentions")

    def save_classifications(self, results: Sequence[tuple[int, Classification]]) -> None:
        """Store (or replace) classifications, each with its sentence vector where it has one
        (``Classification.embedding``). To commit them with the alerts they trigger,
        call this and ``alerts.insert`` inside one ``transaction()`` (as pipeline does)."""
        now = iso(self.now())
        dumps = json.dumps
        rows = [
            (mention_id, c.model,
             c.sentiment.label, c.sentiment.confidence, dumps(c.sentiment.probabilities),
             c.advocacy.label, c.advocacy.confidence, dumps(c.advocacy.probabilities),
             int(c.uncertain), c.status, c.lang, c.stance, c.stance_score, c.embedding, c.relevance,
             int(c.off_topic), now)
            for mention_id, c in results
        ]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO classifications (mention_id, model, sentiment, sentiment_p, sentiment_probs, advocacy, "
                "advocacy_p, advocacy_probs, uncertain, status, lang, stance, stance_score, embedding, relevance, "
                "off_topic, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (mention_id, model) DO UPDATE SET sentiment = excluded.sentiment, "
                "sentiment_p = excluded.sentiment_p, sentiment_probs = excluded.sentiment_probs, "
                "advocacy = excluded.advocacy, advocacy_p = excluded.advocacy_p, "
                "advocacy_probs = excluded.advocacy_probs, "
                "uncertain = excluded.uncertain, status = excluded.status, lang = excluded.lang, "
                "stance = excluded.stance, stance_score = excluded.stance_score, embedding = excluded.embedding, "
                "relevance = excluded.relevance, off_topic = excluded.off_topic, created_at = excluded.created_at",
                rows,
            )

    # ------------------------------------------------------------------ reading

    def mentions(self, *, brand: str | None = None, source: str | None = None, sentiment: str | None = None,
                 advocacy: str | None = None, since: datetime | None = None, limit: int = 50,
                 model: str | None = None, strict: bool = False,
                 source_pairs: Sequence[tuple[str, str]] | None = None,
                 relevance: str = "relevant") -> list[MentionRow]:
        """Newest mentions with their author and one classification (its ``model`` column
        says whose): ``model``'s (the current model) where it has one, else the latest of
        another model; with ``strict``, ``model``'s or none. Without ``model``, the latest.

        ``source``: a source type or key; ``source_pairs``: any of these (source key, source type)
        pairs (as ``mention_sources`` lists them; none: no mention). ``sentiment`` and
        ``advocacy`` match only what the model judged (status ok): a text it did not judge (an
        unsupported language, empty) or has not classified yet is ``"unclassified"``, never
        neutral or none. ``relevance``: ``relevant`` (default) leaves off-topic mentions
        (``monitor.relevance``) out, ``off_topic`` lists only them, ``all`` both."""
        where: list[str] = ["1 = 1"]
        if relevance == "relevant":
            where.append(ON_TOPIC)
        elif relevance == "off_topic":
            where.append(f"{OFF_TOPIC} = 1")
        params: list[Any] = []
        if model and strict:
            pick = "SELECT id FROM classifications WHERE mention_id = m.id AND model = ?"
            params.append(model)
        elif model:
            pick = ("SELECT id FROM classifications WHERE mention_id = m.id "
                    "ORDER BY model = ? DESC, created_at DESC, id DESC LIMIT 1")
            params.append(model)
        else:
            pick = "SELECT id FROM classifications WHERE mention_id = m.id ORDER BY created_at DESC, id DESC LIMIT 1"
        add_filters(where, params, ("m.brand = ?", brand))
        if source:
            where.append("(m.source = ? OR m.source_key = ?)")
            params += [source, source]
        if source_pairs is not None:
            pairs = ", ".join("(?, ?)" for _ in source_pairs)
            where.append(f"(m.source_key, m.source) IN (VALUES {pairs})" if pairs else "1 = 0")
            params += [v for pair in source_pairs for v in pair]
        add_filters(where, params, ("m.created_at >= ?", since and iso(since)))
        for column, label in (("sentiment", sentiment), ("advocacy", advocacy)):
            if label == "unclassified":
                where.append("(c.id IS NULL OR c.status <> 'ok')")
            elif label:
                where.append(f"(c.{column} = ? AND c.status = 'ok')")  # fixed names
                params.append(label)
        params.append(limit)
        return cast("list[MentionRow]", self.query(
            "SELECT m.id, m.brand, m.source, m.source_key, m.kind, m.title, m.text, m.url, m.created_at, m.rating, "
            "m.duplicate_of, a.handle AS author, a.reach, a.reach_kind, c.model, c.sentiment, c.sentiment_p, "
            "c.advocacy, c.advocacy_p, c.uncertain, c.status, c.lang AS classified_lang, c.relevance, "
            f"{OFF_TOPIC} AS off_topic FROM mentions m LEFT JOIN authors a ON a.id = m.author_id "
            f"LEFT JOIN classifications c ON c.id = ({pick}) "
            f"WHERE {' AND '.join(where)} ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
            params,
        ))

    def counts(self) -> dict[str, int]:
        return {table: self.count(f"SELECT count(*) FROM {table}")  # fixed names
                for table in ("mentions", "authors", "classifications", "alerts", "deliveries")}

    def count(self, sql: str, params: Params = ()) -> int:
        """A ``SELECT count(*) ...`` (or any query whose first column is an integer)."""
        with self._lock:
            return int(self.scalar(sql, params) or 0)


_SET_CURSOR = ("INSERT INTO cursors (source_key, query, cursor, updated_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (source_key, query) DO UPDATE SET cursor = excluded.cursor, "
               "updated_at = excluded.updated_at")


def _unchanged(text: str) -> str:
    return text
