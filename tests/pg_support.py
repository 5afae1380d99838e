"""A throwaway PostgreSQL for the tests, started by the tests themselves.

``initdb`` into a temporary folder, ``pg_ctl start`` listening only on a unix socket in that
folder (no TCP port), stopped at the end of the session. The migrations run once, into a
template database; each test gets a fresh copy (``CREATE DATABASE ... TEMPLATE``).

Where the server binaries are missing the PostgreSQL tests skip with the reason, except in CI
(``CI=true``), where they fail: CI proves both backends. Run as root, the server runs as the
``postgres`` user (initdb refuses root).

``MONITOR_TEST_BACKEND=postgresql`` makes the shared ``store`` fixture (tests/conftest.py) open
PostgreSQL instead of a SQLite file. A test that starts ``monitor`` as a subprocess (which the
fixture's patch of ``Store`` cannot reach) writes ``database_setting(path)`` into its config.yaml:
the same database as ``Store(path)`` in the test, on either backend.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKEND = os.environ.get("MONITOR_TEST_BACKEND", "sqlite")
PASSWORD_ROLE = "monitor_pw"  # the server asks this role for its password
# a test of SQLite itself (its PRAGMAs, an upgrade of an old file), skipped on PostgreSQL
sqlite_only = pytest.mark.skipif(BACKEND == "postgresql", reason="SQLite's own behaviour")


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PgServer:
    """One running server; ``new_url()`` is a fresh database copied from the migrated template."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.socket_dir = root
        self._ids = itertools.count(1)
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self.user = "monitor"

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        assert initdb and pg_ctl
        if not (self.data / "PG_VERSION").exists():  # a second start() starts the same cluster again
            self._run(initdb, "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--locale=C",
                      "--no-sync")
        # one role signs in with a password (the wrong-password test); every other trusts the socket
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\nlocal all all trust\n")
        options = (f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        if pg_ctl and (self.data / "postmaster.pid").exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@/{database}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def make_template(self) -> None:
        from monitor.store import Store

        self.admin("CREATE DATABASE monitor_template")
        Store(self.url("monitor_template")).close()

    def new_url(self) -> str:
        name = f"monitor_test_{next(self._ids)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE monitor_template")
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.split("?")[0].rsplit("/", 1)[-1]
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_text(store: Any) -> str:
    """Everything stored, as text (to check that something is nowhere in the database): SQLite's
    dump, or every row of every PostgreSQL table."""
    if not store.postgres:
        return "\n".join(store.conn.iterdump())
    tables = [r["table_name"] for r in store.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
    return "\n".join(json.dumps(store.query(f"SELECT * FROM {t}"), default=str, ensure_ascii=False)
                     for t in sorted(tables))


# while a test runs on PostgreSQL: the server and the fixture's mapping of file paths to databases
_current: tuple[PgServer, dict[str, str]] | None = None


def _url_for(server: PgServer, urls: dict[str, str], path: str | Path) -> str:
    key = str(Path(path).resolve())
    if key not in urls:
        urls[key] = server.new_url()
    return urls[key]


def database_setting(path: str | Path) -> str:
    """What a subprocess's config.yaml says as ``database:`` to reach the database that
    ``Store(path)`` opens in this test: the file itself on SQLite; on PostgreSQL the URL of the
    database the fixture maps the path to (created now if the test has not opened it yet, and
    dropped after the test like the others)."""
    if BACKEND != "postgresql":
        return str(path)
    if _current is None:
        raise RuntimeError("database_setting() outside a test (the _postgresql_backend fixture is not active)")
    return _url_for(*_current, path)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed")
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))  # short: a unix socket path has ~100 characters
    server = PgServer(root)
    try:
        server.start()
        server.make_template()
    except Exception as exc:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"cannot start a throwaway PostgreSQL: {exc}")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _postgresql_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With MONITOR_TEST_BACKEND=postgresql, every ``Store`` a test opens on a SQLite file
    (itself, or through the CLI's config) opens a PostgreSQL database instead: one fresh
    database per file path and test, the same one for the file's read-only stores."""
    if BACKEND != "postgresql":
        yield
        return
    from monitor.store import Store
    from monitor.store._pg import is_url

    server: PgServer = request.getfixturevalue("pg_server")
    urls: dict[str, str] = {}
    opened: list[Store] = []
    original = Store.__init__

    def init(self: Store, path: str | Path, **kw: object) -> None:
        if is_url(path):
            original(self, path, **kw)  # type: ignore[arg-type]
            return
        original(self, _url_for(server, urls, path), **kw)  # type: ignore[arg-type]
        self.path = Path(path)
        opened.append(self)

    global _current
    monkeypatch.setattr(Store, "__init__", init)
    _current = (server, urls)  # for database_setting()
    try:
        yield
    finally:
        _current = None
        for store in opened:  # a store a test leaves open (SQLite's are closed by the garbage collector)
            store.close()
        for url in urls.values():
            server.drop(url)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped after it."""
    url = pg_server.new_url()
    yield url
    pg_server.drop(url)
