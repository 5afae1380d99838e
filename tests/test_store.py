"""The SQLite store: idempotent batches, cursor and batch in one transaction,
classifications and alerts in one transaction, clear errors for bad paths."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.errors import StoreError
from monitor.records import Alert, Author, FetchResult, Mention
from monitor.store import Store
from monitor.store._pg import ConstraintError

from .conftest import KeywordClassifier, write_config
from .pg_support import sqlite_only

IntegrityError = (sqlite3.IntegrityError, ConstraintError)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def mention(i: int, text: str = "acme is fine", **kw) -> Mention:
    return Mention(source="hackernews", native_id=str(i), brand="Acme", text=f"{text} #{i}",
                   created_at=NOW - timedelta(minutes=i), author=Author("hackernews", f"user{i % 3}"), **kw)


def count(store: Store, table: str) -> int:
    return store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]


@sqlite_only
def test_pragmas(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_save_batch_is_idempotent(store):
    batch = FetchResult([mention(i) for i in range(5)], "c1")
    first = store.save_batch("Acme:hackernews", "acme", batch)
    assert len(first) == 5
    assert store.save_batch("Acme:hackernews", "acme", batch) == []
    assert count(store, "mentions") == 5 and count(store, "authors") == 3
    # an overlapping page stores only what is new
    again = store.save_batch("Acme:hackernews", "acme", FetchResult([mention(i) for i in range(3, 8)], "c2"))
    assert len(again) == 3 and count(store, "mentions") == 8
    assert store.get_cursor("Acme:hackernews", "acme") == "c2"


def test_the_same_item_for_two_brands_is_two_mentions(store):
    m = mention(1)
    store.save_batch("Acme:hackernews", "acme", FetchResult([m], "c"))
    other = Mention(**{**m.__dict__, "brand": "Other"})
    assert len(store.save_batch("Other:hackernews", "other", FetchResult([other], "c"))) == 1


def test_cursors_are_per_source_and_query(store):
    store.save_batch("Acme:hackernews", "acme", FetchResult([], "a"))
    store.save_batch("Acme:hackernews", '"acme cloud"', FetchResult([], "b"))
    store.save_batch("Acme:reddit", "acme", FetchResult([], "c"))
    assert store.get_cursor("Acme:hackernews", "acme") == "a"
    assert store.get_cursor("Acme:hackernews", '"acme cloud"') == "b"
    assert store.get_cursor("Acme:reddit", "acme") == "c"
    assert store.get_cursor("Acme:reddit", "nothing") is None


def test_a_failure_mid_batch_rolls_back_mentions_and_cursor(store):
    store.save_batch("Acme:hackernews", "acme", FetchResult([mention(0)], "before"))
    broken = Mention(source="hackernews", native_id="bad", brand="Acme", text="x", created_at=NOW)
    object.__setattr__(broken, "created_at", "not a datetime")  # past the record's own check: a bug's value
    batch = FetchResult([mention(1), mention(2), broken, mention(3)], "after")
    with pytest.raises(AttributeError):
        store.save_batch("Acme:hackernews", "acme", batch)
    assert count(store, "mentions") == 1
    assert store.get_cursor("Acme:hackernews", "acme") == "before"
    assert not store.conn.in_transaction
    # the store goes on working
    store.save_batch("Acme:hackernews", "acme", FetchResult([mention(1)], "after"))
    assert count(store, "mentions") == 2 and store.get_cursor("Acme:hackernews", "acme") == "after"


def committed(store: Store, sql: str) -> list[tuple]:
    """What another connection sees: only what was really committed."""
    other = store.open_reader()  # a second connection, SQLite or PostgreSQL
    try:
        return [tuple(r) for r in other.fetchall(sql)]
    finally:
        other.close()


@sqlite_only
def test_an_error_that_ends_the_transaction_inside_sqlite_propagates(store):
    # RAISE(ROLLBACK) rolls the transaction back inside SQLite before Python sees the error
    store.conn.execute("CREATE TRIGGER no_forbidden BEFORE INSERT ON cursors WHEN NEW.query = 'forbidden' "
                       "BEGIN SELECT RAISE(ROLLBACK, 'boom'); END")
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        store.save_batch("Acme:hackernews", "forbidden", FetchResult([mention(1)], "c"))
    assert not store.conn.in_transaction and count(store, "mentions") == 0
    # nested: the savepoint is gone with the transaction, and that is not the error either
    with pytest.raises(sqlite3.IntegrityError, match="boom"), store.transaction():
        store.save_batch("Acme:hackernews", "forbidden", FetchResult([mention(2)], "c"))
    assert not store.conn.in_transaction and count(store, "mentions") == 0
    # the store goes on working, and commits
    store.save_batch("Acme:hackernews", "acme", FetchResult([mention(3)], "after"))
    assert committed(store, "SELECT native_id FROM mentions") == [("3",)]
    assert committed(store, "SELECT cursor FROM cursors") == [("after",)]


def test_a_failed_commit_rolls_back_and_the_next_transaction_commits(store):
    # a deferred foreign key is checked at COMMIT, so COMMIT itself fails
    if not store.postgres:
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    store.conn.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
    store.conn.execute("CREATE TABLE children (id INTEGER PRIMARY KEY, "
                       "parent_id INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(IntegrityError, match="(?i)FOREIGN KEY"), store.transaction():
        store.save_batch("Acme:hackernews", "acme", FetchResult([mention(1)], "c1"))  # nested: a savepoint
        store.conn.execute("INSERT INTO children (parent_id) VALUES (99)")
    assert not store.conn.in_transaction
    assert count(store, "mentions") == 0 and count(store, "children") == 0
    assert store.get_cursor("Acme:hackernews", "acme") is None
    # the next transaction is a transaction of its own, not a savepoint inside a dead one
    store.save_batch("Acme:hackernews", "acme", FetchResult([mention(2)], "c2"))
    assert not store.conn.in_transaction
    assert committed(store, "SELECT native_id FROM mentions") == [("2",)]
    assert committed(store, "SELECT cursor FROM cursors") == [("c2",)]
    assert committed(store, "SELECT count(*) FROM children") == [(0,)]


def test_unsafe_text_is_stored_safely(store):
    m = mention(1, text="bad \ud800 surrogate \x00 nul \x1b[31m escape\r\n")
    store.save_batch("Acme:hackernews", "acme", FetchResult([m], "c"))
    text = store.query("SELECT text FROM mentions")[0]["text"]
    assert text == "bad \ufffd surrogate  nul [31m escape\n #1"


def test_committed_rows_survive_reopening(tmp_path):
    path = tmp_path / "m.db"
    s = Store(path)
    s.save_batch("Acme:hackernews", "acme", FetchResult([mention(1)], "c"))
    s.close()
    again = Store(path)  # migrations already applied: nothing to redo
    assert count(again, "mentions") == 1
    again.close()
    ro = Store(path, readonly=True)
    assert count(ro, "mentions") == 1
    ro.close()


# -------------------------------------------------------------------- classifications


def _classified(store, n=3):
    ids = store.save_batch("Acme:hackernews", "acme", FetchResult([mention(i, "avoid acme") for i in range(n)], "c"))
    results = KeywordClassifier().classify(["avoid acme"] * n)
    return list(zip(ids, results, strict=True))


def _alert(i: int, **kw) -> Alert:
    return Alert(rule="neg", key=f"neg:{i}", severity="warning", title=f"alert {i}", body="body", brand="Acme",
                 mention_ids=(i,), **kw)


def _save_with_alerts(store, pairs, alerts, channels_for):
    with store.transaction():  # as pipeline.classify_pending commits a batch
        store.save_classifications(pairs)
        return store.alerts.insert(alerts, channels_for)


def test_classifications_and_alerts_commit_together(store):
    pairs = _classified(store)
    new = _save_with_alerts(store, pairs, [_alert(i) for i, _ in pairs], {"neg": ["console", "hook"]})
    assert len(new) == 3
    assert count(store, "classifications") == 3 and count(store, "alerts") == 3 and count(store, "deliveries") == 6
    # the same again: classifications updated in place, alerts deduplicated by key
    assert _save_with_alerts(store, pairs, [_alert(i) for i, _ in pairs], {"neg": ["console"]}) == []
    assert count(store, "classifications") == 3 and count(store, "alerts") == 3


def test_a_failing_alert_rolls_back_its_classifications(store):
    pairs = _classified(store)
    alerts = [_alert(1), _alert(2, created_at="not a datetime")]
    with pytest.raises(AttributeError):
        _save_with_alerts(store, pairs, alerts, {"neg": ["console"]})
    assert count(store, "classifications") == 0 and count(store, "alerts") == 0 and count(store, "deliveries") == 0
    assert store.count_unclassified(KeywordClassifier.name) == 3  # the next run classifies them again


def test_unclassified_is_per_model(store):
    pairs = _classified(store)
    store.save_classifications(pairs[:2])
    assert store.count_unclassified(KeywordClassifier.name) == 1
    assert store.count_unclassified("other-model@2") == 3


def test_the_stance_toward_the_brand_is_stored_and_updated(store):
    from dataclasses import replace

    (mid, c), (mid2, c2) = _classified(store, 2)
    store.save_classifications([(mid, replace(c, stance=-2, stance_score=-1.6)), (mid2, c2)])
    rows = {r["mention_id"]: r for r in store.query("SELECT mention_id, stance, stance_score FROM classifications")}
    assert (rows[mid]["stance"], rows[mid]["stance_score"]) == (-2, -1.6)
    assert rows[mid2]["stance"] is None  # a model without a stance head
    assert store.unclassified("other@1", 10)[0]["brand"] == "Acme"  # the classifier reads each row's brand
    store.save_classifications([(mid, replace(c, stance=1, stance_score=0.7))])
    assert store.query("SELECT stance FROM classifications WHERE mention_id = ?", [mid])[0]["stance"] == 1


# -------------------------------------------------------------------- bad paths


@sqlite_only  # a bad SQLite path (PostgreSQL's errors: test_store_postgresql.py)
def test_missing_database_folder(tmp_path):
    with pytest.raises(StoreError, match="database folder .*nowhere does not exist"):
        Store(tmp_path / "nowhere" / "m.db")


@sqlite_only  # a bad SQLite path (PostgreSQL's errors: test_store_postgresql.py)
def test_database_path_is_a_folder(tmp_path):
    with pytest.raises(StoreError, match="cannot open database"):
        Store(tmp_path)


@sqlite_only  # a bad SQLite path (PostgreSQL's errors: test_store_postgresql.py)
def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="m.db.*not a database"):
        Store(path)


@sqlite_only  # a bad SQLite path (PostgreSQL's errors: test_store_postgresql.py)
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_folder_no_one_may_write(tmp_path):
    with pytest.raises(StoreError, match="cannot open database /proc/monitor-test.db"):
        Store("/proc/monitor-test.db")  # even root cannot create files here


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot open database"):
            Store(folder / "m.db")
    finally:
        folder.chmod(0o700)


CONFIG = """\
database: {db}
brands:
  - name: Acme
    terms: {{include: [acme]}}
    sources: [{{type: demo}}]
"""


@sqlite_only  # a bad SQLite path (PostgreSQL's errors: test_store_postgresql.py)
@pytest.mark.parametrize(("db", "message"), [
    ("missing/m.db", "does not exist"),
    (".", "cannot open database"),
])
def test_collect_once_prints_the_store_error_without_a_traceback(tmp_path, db, message):
    cfg = write_config(tmp_path / "config.yaml", CONFIG.format(db=db))
    result = CliRunner().invoke(main, ["-c", str(cfg), "collect", "--once"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
