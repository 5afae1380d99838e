"""SQLite store: the only package that imports sqlite3 / sqlite_utils.

One writer connection per process (WAL, busy timeout, synchronous=FULL); readers such
as the web page open the file read-only (``Store(path, readonly=True)``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from monitor.errors import StoreError
from monitor.records import Alert, Author, Classification, FetchResult, Mention, utcnow
from monitor.store.migrations import migrations
from monitor.textutil import safe_optional, safe_text

logger = logging.getLogger(__name__)


def iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def add_filters(where: list[str], params: list, *filters: tuple[str, Any]) -> None:
    """Appends each (condition with one ``?``, value) whose value is set (not None or empty)."""
    for condition, value in filters:
        if value:
            where.append(condition)
            params.append(value)


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching ``text`` anywhere, its \\, % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Store:
    def __init__(self, path: str | Path, *, readonly: bool = False, now=utcnow) -> None:
        self.path = Path(path)
        self.now = now
        self.readonly = readonly
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
        self.conn = conn
        self.db = Database(conn)
        # One connection shared by the daemon's threads: a transaction or a query holds it alone.
        self._lock = threading.RLock()
        if not readonly:
            try:
                migrations.apply(self.db)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot prepare database {self.path}: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def engine_version(self) -> str:
        """The database engine and its version, e.g. ``SQLite 3.45.1`` (shown by /healthz)."""
        return f"SQLite {sqlite3.sqlite_version}"

    @contextmanager
    def transaction(self) -> Iterator[Database]:
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
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    # ------------------------------------------------------------------ collection

    def get_cursor(self, source_key: str, query: str) -> str | None:
        rows = self.query("SELECT cursor FROM cursors WHERE source_key = ? AND query = ?", [source_key, query])
        return rows[0]["cursor"] if rows else None

    def save_batch(self, source_key: str, query: str, result: FetchResult) -> list[int]:
        """Store a fetched page and advance its cursor in one transaction.

        Returns the ids of mentions that were new; already-stored ones are left as they are.
        """
        now = iso(self.now())
        new_ids: list[int] = []
        with self.transaction():
            for mention in result.mentions:
                mid = self._insert_mention(source_key, mention, now)
                if mid is not None:
                    new_ids.append(mid)
            self.conn.execute(
                "INSERT INTO cursors (source_key, query, cursor, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source_key, query) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                [source_key, query, result.cursor, now],
            )
        return new_ids

    def _upsert_author(self, author: Author, now: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO authors (source, handle, display_name, url, reach, reach_kind, reach_checked_at, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, handle) DO UPDATE SET last_seen = excluded.last_seen, "
            "display_name = COALESCE(excluded.display_name, authors.display_name), "
            "url = COALESCE(excluded.url, authors.url), "
            "reach = COALESCE(excluded.reach, authors.reach), "
            "reach_kind = COALESCE(excluded.reach_kind, authors.reach_kind), "
            "reach_checked_at = CASE WHEN excluded.reach IS NULL THEN authors.reach_checked_at ELSE excluded.reach_checked_at END "
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
        return cur.fetchone()[0]

    def _insert_mention(self, source_key: str, m: Mention, now: str) -> int | None:
        author_id = self._upsert_author(m.author, now) if m.author else None
        canonical = m.canonical_url
        duplicate_of = None
        if canonical:
            row = self.conn.execute(
                "SELECT id FROM mentions WHERE canonical_url = ? AND brand = ? AND duplicate_of IS NULL "
                "AND NOT (source = ? AND native_id = ?) ORDER BY id LIMIT 1",
                [canonical, m.brand, m.source, m.native_id],
            ).fetchone()
            duplicate_of = row[0] if row else None
        cur = self.conn.execute(
            "INSERT INTO mentions (source, source_key, native_id, brand, kind, title, text, url, canonical_url, "
            "duplicate_of, author_id, rating, lang, matched_term, created_at, collected_at, extra) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, native_id, brand) DO NOTHING RETURNING id",
            [
                m.source,
                source_key,
                safe_text(m.native_id, 500),
                m.brand,
                m.kind,
                safe_optional(m.title),
                safe_text(m.text),
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
            ],
        )
        row = cur.fetchone()
        return row[0] if row else None

    def update_author_reach(self, source: str, handle: str, reach: int, reach_kind: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE authors SET reach = ?, reach_kind = ?, reach_checked_at = ? WHERE source = ? AND handle = ?",
                [reach, reach_kind, iso(self.now()), source, handle],
            )

    def record_run(self, source_key: str, started_at: datetime, *, fetched: int, new: int, skipped: int,
                   error: str | None, auth_failed: bool = False) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO source_runs (source_key, started_at, finished_at, fetched, new, skipped, ok, error, "
                "auth_failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [source_key, iso(started_at), iso(self.now()), fetched, new, skipped, int(error is None),
                 safe_optional(error, 1000), int(auth_failed)],
            )

    # ------------------------------------------------------------------ source health

    def recent_runs(self, source_key: str, limit: int = 50) -> list[dict]:
        """A source's latest runs, newest first."""
        return self.query(
            "SELECT id, source_key, started_at, finished_at, fetched, new, skipped, ok, error, auth_failed "
            "FROM source_runs WHERE source_key = ? ORDER BY id DESC LIMIT ?", [source_key, limit])

    def last_success(self, source_key: str) -> str | None:
        rows = self.query("SELECT max(finished_at) AS at FROM source_runs WHERE source_key = ? AND ok = 1",
                          [source_key])
        return rows[0]["at"] if rows else None

    def run_source_keys(self) -> list[str]:
        return [r["source_key"] for r in self.query("SELECT DISTINCT source_key FROM source_runs ORDER BY 1")]

    def set_cursor(self, source_key: str, query: str, cursor: str | None) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO cursors (source_key, query, cursor, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source_key, query) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                [source_key, query, cursor, iso(self.now())],
            )

    def iter_mention_texts(self, batch: int = 1000) -> Iterator[dict]:
        """Every stored mention's text fields, oldest first, in batches (for `monitor preview`)."""
        last = 0
        while True:
            rows = self.query(
                "SELECT id, brand, source, source_key, kind, title, text, url, created_at, matched_term FROM mentions "
                "WHERE id > ? ORDER BY id LIMIT ?", [last, batch])
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    # ------------------------------------------------------------------ classification

    def unclassified(self, model: str, limit: int) -> list[dict]:
        """Mentions without a classification by ``model``: never-classified ones first
        (``seen`` 0: new mentions, which may alert), then those an earlier model classified
        (``seen`` 1: history a new model catches up on), oldest first within each."""
        return self.query(
            "SELECT m.id, m.title, m.text, m.kind, m.rating, m.brand, "
            "EXISTS (SELECT 1 FROM classifications o WHERE o.mention_id = m.id) AS seen FROM mentions m "
            "WHERE NOT EXISTS (SELECT 1 FROM classifications c WHERE c.mention_id = m.id AND c.model = ?) "
            "ORDER BY seen, m.id LIMIT ?",
            [model, limit],
        )

    def count_unclassified(self, model: str) -> int:
        return self.query(
            "SELECT count(*) AS n FROM mentions m WHERE NOT EXISTS "
            "(SELECT 1 FROM classifications c WHERE c.mention_id = m.id AND c.model = ?)",
            [model],
        )[0]["n"]

    def mentions_after(self, after_id: int, limit: int) -> list[dict]:
        """Every mention in id order (for re-running a model over the whole history)."""
        return self.query("SELECT m.id, m.title, m.text, m.kind, m.rating, m.brand, 1 AS seen FROM mentions m "
                          "WHERE m.id > ? ORDER BY m.id LIMIT ?", [after_id, limit])

    def count_mentions(self) -> int:
        return self.query("SELECT count(*) AS n FROM mentions")[0]["n"]

    def classified_by(self, model: str) -> dict[str, int]:
        """How many mentions each model has classified, and how many ``model`` has not."""
        rows = self.query("SELECT model, count(*) AS n FROM classifications GROUP BY model ORDER BY model")
        out = {r["model"]: r["n"] for r in rows}
        out.setdefault(model, 0)
        return out

    def save_classifications(self, results: Sequence[tuple[int, Classification]]) -> None:
        """Store (or replace) classifications. To commit them with the alerts they trigger,
        call this and ``insert_alerts`` inside one ``transaction()`` (as pipeline does)."""
        now = iso(self.now())
        dumps = json.dumps
        rows = [
            (mention_id, c.model,
             c.sentiment.label, c.sentiment.confidence, dumps(c.sentiment.probabilities),
             c.advocacy.label, c.advocacy.confidence, dumps(c.advocacy.probabilities),
             int(c.uncertain), c.status, c.lang, c.stance, c.stance_score, now)
            for mention_id, c in results
        ]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO classifications (mention_id, model, sentiment, sentiment_p, sentiment_probs, advocacy, "
                "advocacy_p, advocacy_probs, uncertain, status, lang, stance, stance_score, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (mention_id, model) DO UPDATE SET sentiment = excluded.sentiment, "
                "sentiment_p = excluded.sentiment_p, sentiment_probs = excluded.sentiment_probs, "
                "advocacy = excluded.advocacy, advocacy_p = excluded.advocacy_p, advocacy_probs = excluded.advocacy_probs, "
                "uncertain = excluded.uncertain, status = excluded.status, lang = excluded.lang, "
                "stance = excluded.stance, stance_score = excluded.stance_score, created_at = excluded.created_at",
                rows,
            )

    def insert_alerts(self, alerts: Sequence[Alert], channels_for: dict[str, list[str]]) -> list[int]:
        now = iso(self.now())
        new_ids = []
        with self.transaction():
            for a in alerts:
                cur = self.conn.execute(
                    "INSERT INTO alerts (rule, key, severity, brand, title, body, mention_ids, data, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
                    [a.rule, a.key, a.severity, a.brand, safe_text(a.title, 500), safe_text(a.body, 20_000),
                     json.dumps(list(a.mention_ids)), json.dumps(a.data, default=str), iso(a.created_at)],
                )
                row = cur.fetchone()
                if not row:
                    continue
                new_ids.append(row[0])
                for channel in channels_for.get(a.rule, []):
                    self.conn.execute(
                        "INSERT INTO deliveries (alert_id, channel, status, next_attempt_at) VALUES (?, ?, 'pending', ?) "
                        "ON CONFLICT (alert_id, channel) DO NOTHING",
                        [row[0], channel, now],
                    )
        return new_ids

    # ------------------------------------------------------------------ alerts delivery

    def due_deliveries(self, limit: int = 100) -> list[dict]:
        return self.query(
            "SELECT d.id AS delivery_id, d.channel, d.attempts, a.* FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
            [iso(self.now()), limit],
        )

    def mark_delivered(self, delivery_id: int) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, delivered_at = ?, last_error = NULL WHERE id = ?",
                [iso(self.now()), delivery_id],
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """retry_at None: give up (dead letter)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, status = ?, next_attempt_at = ? WHERE id = ?",
                [safe_text(error, 1000), "pending" if retry_at else "dead", iso(retry_at or self.now()), delivery_id],
            )

    # ------------------------------------------------------------------ reading

    def mentions(self, *, brand: str | None = None, source: str | None = None, sentiment: str | None = None,
                 advocacy: str | None = None, since: datetime | None = None, limit: int = 50,
                 model: str | None = None, strict: bool = False) -> list[dict]:
        """Newest mentions with their author and one classification (its ``model`` column
        says whose): ``model``'s (the current model) where it has one, else the latest of
        another model; with ``strict``, ``model``'s or none. Without ``model``, the latest."""
        where, params = ["1 = 1"], []
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
        add_filters(where, params, ("m.created_at >= ?", since and iso(since)), ("c.sentiment = ?", sentiment),
                    ("c.advocacy = ?", advocacy))
        params.append(limit)
        return self.query(
            "SELECT m.id, m.brand, m.source, m.source_key, m.kind, m.title, m.text, m.url, m.created_at, m.rating, "
            "m.duplicate_of, a.handle AS author, a.reach, a.reach_kind, c.model, c.sentiment, c.sentiment_p, "
            "c.advocacy, c.advocacy_p, c.uncertain, c.status, c.lang AS classified_lang "
            "FROM mentions m LEFT JOIN authors a ON a.id = m.author_id "
            f"LEFT JOIN classifications c ON c.id = ({pick}) "
            f"WHERE {' AND '.join(where)} ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
            params,
        )

    def authors_missing_reach(self, mention_ids: Sequence[int], max_age: timedelta) -> list[str]:
        if not mention_ids:
            return []
        cutoff = iso(self.now() - max_age)
        marks = ",".join("?" * len(mention_ids))
        rows = self.query(
            "SELECT DISTINCT a.handle FROM mentions m JOIN authors a ON a.id = m.author_id "
            f"WHERE m.id IN ({marks}) AND (a.reach_checked_at IS NULL OR a.reach_checked_at < ?)",
            [*mention_ids, cutoff],
        )
        return [r["handle"] for r in rows]

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("mentions", "authors", "classifications", "alerts", "deliveries"):
            out[table] = self.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]  # noqa: S608 - fixed names
        return out
