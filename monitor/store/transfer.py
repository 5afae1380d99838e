"""Moving an installation from its SQLite file to PostgreSQL (``monitor migrate``).

Every table is copied as it is, ids included, in one PostgreSQL transaction whose foreign keys
are checked at its COMMIT (a mention may point at a later one): a copy cut short leaves the
target as it was. Then each identity column continues after the largest id, and every table's
count is compared. A target that already holds data is refused unless ``resume``: rows already
there (by their keys) are then left as they are, so a second run adds only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor.errors import StoreError

BATCH = 1000


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


def tables(source: object) -> list[str]:
    """The source file's tables in name order (no views, no bookkeeping of sqlite-utils)."""
    from monitor.store import Store

    assert isinstance(source, Store) and not source.postgres
    return [str(r[0]) for r in source.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != '_sqlite_migrations' ORDER BY name")]


def copy_database(source: object, target: object, *, resume: bool = False,
                  progress: Callable[[str, int, int], None] | None = None) -> list[TableCount]:
    """Copy every table of ``source`` (a SQLite store) into ``target`` (a PostgreSQL store,
    migrated as far as the source). ``progress(table, rows done, rows in the table)``.
    Returns each table's (source, target) count after the copy."""
    from monitor.store import Store

    assert isinstance(source, Store) and isinstance(target, Store)
    if not target.postgres or source.postgres:
        raise StoreError("monitor migrate copies a SQLite file into a PostgreSQL database")
    names = tables(source)
    have = {r["table_name"] for r in target.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    missing = [t for t in names if t not in have]
    if missing:
        raise StoreError(f"the target has no table {', '.join(missing)}: is it a newer monitor's file?")
    if not resume:
        full = [t for t in names if target.scalar(f"SELECT 1 FROM {t} LIMIT 1")]  # names from the file's schema
        if full:
            raise StoreError(f"the target already holds data ({', '.join(full[:5])}): give --resume to add only "
                             "what is missing, or an empty database")
    with target.transaction():
        target.execute("SET CONSTRAINTS ALL DEFERRED")
        for table in names:
            cols = [str(r[1]) for r in source.fetchall(f"PRAGMA table_info({table})")]
            total = source.count(f"SELECT count(*) FROM {table}")
            insert = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                      "ON CONFLICT DO NOTHING")
            done = 0
            if progress:
                progress(table, 0, total)
            cur = source.conn.execute(f"SELECT {', '.join(cols)} FROM {table}")
            while rows := cur.fetchmany(BATCH):
                target.executemany(insert, rows)
                done += len(rows)
                if progress:
                    progress(table, done, total)
            target.conn.reset_identity(table)
    return [TableCount(t, source.count(f"SELECT count(*) FROM {t}"), target.count(f"SELECT count(*) FROM {t}"))
            for t in names]
