"""`monitor run` as a real process against the fake Algolia server, with the shipped
model: collects, classifies, alerts on the console, survives upstream faults, stops
cleanly on SIGTERM, and after kill -9 and a restart holds exactly the server's mentions.

On either backend (MONITOR_TEST_BACKEND): the daemon's config.yaml names the database that
``Store(db)`` reaches in the test (tests/pg_support.database_setting)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from monitor.errors import StoreError
from monitor.store import Store

from .conftest import ROOT, SHIPPED_MODEL
from .fakes.algolia import FakeAlgolia, make_hits
from .pg_support import BACKEND, database_setting

pytestmark = pytest.mark.slow


def wait_for(condition, what: str, limit: float = 300.0, proc: subprocess.Popen | None = None):
    """Poll until the condition holds (a deadline for a hung test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def query(db: Path, sql: str) -> list[dict]:
    try:
        s = Store(db, readonly=True)
    except StoreError:
        return []
    try:
        return s.query(sql)
    except (sqlite3.Error, StoreError):  # not migrated yet (PostgreSQL's errors come as StoreError)
        return []
    finally:
        s.close()


def scalar(db: Path, sql: str) -> int:
    rows = query(db, sql)
    return next(iter(rows[0].values())) if rows else 0


# the mentions' alerts sent (the broken source may add a source-health alert of its own, once it has
# failed long enough: how soon depends on the machine's speed)
MENTION_ALERTS_SENT = ("SELECT count(*) FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                       "WHERE a.rule = 'every-mention' AND d.status = 'sent'")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


def write_config(tmp_path: Path, sources: list[dict]) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "database": database_setting(tmp_path / "monitor.db"),
        "brands": [{"name": "SQLite", "terms": {"include": ["sqlite"]}, "sources": sources}],
        "classifier": {"engine": "torch", "model": str(SHIPPED_MODEL), "threads": 1, "batch_size": 32},
        "classify_every": "1s",
        "http": {"allow_networks": ["127.0.0.1/32"], "per_host_interval": 0.1},
        "alerts": {"deliver_every": "1s", "evaluate_every": "1s", "channels": {"console": {"type": "console"}},
                   "rules": [{"name": "every-mention", "when": {"brands": ["SQLite"]}, "channels": ["console"]}]},
    }))
    return cfg


class Daemon:
    def __init__(self, tmp_path: Path, cfg: Path, name: str = "daemon") -> None:
        self.stdout = tmp_path / f"{name}.out"
        self.stderr = tmp_path / f"{name}.err"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(cfg), "run"], cwd=ROOT,
                                         env=env, stdout=out, stderr=err)

    def out(self) -> str:
        return self.stdout.read_text(errors="replace")

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"the daemon did not stop:\n{self.err()[-3000:]}") from None


def live_workers(db: Path) -> list[dict]:
    s = Store(db, readonly=True)
    try:
        return s.workers.live()
    finally:
        s.close()


def console_alerts(d: Daemon) -> int:
    return sum(line.startswith("ALERT [warning] [SQLite] mention by ") and line.endswith("(every-mention)")
               for line in d.out().splitlines())


@pytest.fixture
def daemons():
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def test_run_collects_classifies_alerts_and_survives_faults(tmp_path, daemons):
    db = tmp_path / "monitor.db"
    start = int(time.time()) - 3600
    with FakeAlgolia(make_hits(30, start)) as fake:
        cfg = write_config(tmp_path, [
            {"type": "hackernews", "name": "hn", "base_url": fake.base_url, "every": "1s", "fetch_karma": False},
            {"type": "hackernews", "name": "broken", "base_url": closed_port_url(), "every": "1s"},
        ])
        d = Daemon(tmp_path, cfg)
        daemons.append(d)
        wait_for(lambda: console_alerts(d) == 30, "30 alerts on the console", proc=d.proc)
        assert scalar(db, "SELECT count(*) FROM mentions") == 30
        assert scalar(db, "SELECT count(*) FROM classifications WHERE model LIKE 'advocacy-minilm@%'") == 30
        total = 30

        if BACKEND == "postgresql":
            # several workers share a PostgreSQL database: a second daemon joins the first
            second = Daemon(tmp_path, cfg, "second")
            daemons.append(second)
            wait_for(lambda: len(live_workers(db)) == 2, "the second daemon to join as a worker", proc=second.proc)
            status = subprocess.run([sys.executable, "-m", "monitor", "-c", str(cfg), "status", "--workers",
                                     "--format", "json"], cwd=ROOT, timeout=300, check=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
            listed = [json.loads(line) for line in status.stdout.splitlines() if line.strip()]
            assert sorted(w["pid"] for w in listed if w["state"] == "alive") == sorted([d.proc.pid, second.proc.pid])
            # new mentions while both run: each is classified, alerted and delivered once, by one of them
            fake.add([dict(h, objectID=str(70_000_000 + i))
                      for i, h in enumerate(make_hits(10, start + 1800, step=10, text="SQLite joint comment {i}"))])
            total += 10
            wait_for(lambda: scalar(db, MENTION_ALERTS_SENT) == total, "the new mentions delivered by the two workers",
                     proc=second.proc)
            assert scalar(db, "SELECT count(*) FROM mentions") == total
            assert scalar(db, "SELECT count(*) FROM classifications WHERE model LIKE 'advocacy-minilm@%'") == total
            assert scalar(db, "SELECT count(*) FROM alerts WHERE rule = 'every-mention'") == total
            assert scalar(db, "SELECT count(*) FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                              "WHERE a.rule = 'every-mention'") == total
            assert console_alerts(d) + console_alerts(second) == total  # none printed twice
            assert "joins 1 other(s) on this database" in second.err()
            assert second.stop() == 0
            assert "stopped cleanly" in second.err() and "Traceback" not in second.err()
            wait_for(lambda: len(live_workers(db)) == 1, "the second worker gone from the live ones", proc=d.proc)
        else:
            # one daemon per SQLite file: a second one on the same database refuses to start
            second_run = subprocess.run([sys.executable, "-m", "monitor", "-c", str(cfg), "run"], cwd=ROOT,
                                        timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                        capture_output=True, text=True)
            assert second_run.returncode == 1
            assert "already running" in second_run.stderr and "Traceback" not in second_run.stderr

        # faults mid-run, while new mentions arrive
        fake.faults = ["500", "429", "truncated", "malformed", "down", "bad_hits", "huge", "weird_text"]
        fake.add([dict(h, objectID=str(60_000_000 + i)) for i, h in enumerate(make_hits(20, start + 2000))])
        total += 20
        wait_for(lambda: not fake.faults and scalar(db, "SELECT count(*) FROM mentions") == total,
                 "the faults to pass and the new mentions to land", proc=d.proc)
        wait_for(lambda: scalar(db, MENTION_ALERTS_SENT) == total, "every alert delivered", proc=d.proc)
        hn_runs_before = scalar(db, "SELECT count(*) FROM source_runs WHERE source_key = 'SQLite:hn' AND ok = 1")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM source_runs WHERE source_key = 'SQLite:hn' AND ok = 1")
                 > hn_runs_before, "the working source to keep running", proc=d.proc)
        # a long Retry-After must not hold up a shutdown
        fake.retry_after = "250"
        fake.faults = ["429"]
        wait_for(lambda: "HTTP 429; retrying in 250.0s" in d.err(), "a long back-off", proc=d.proc)
        assert d.stop() == 0

    err = d.err()
    assert "stopped cleanly" in err and "Traceback" not in err
    for line in ["HTTP 500; retrying", "HTTP 429; retrying in 1.0s", "response is not valid JSON",
                 "search response has no 'hits' list", "over the 10485760 cap", "skipped a malformed hit",
                 "SQLite:broken: query 'sqlite'", "ConnectError"]:
        assert line in err, line
    assert scalar(db, "SELECT count(*) FROM source_runs WHERE source_key = 'SQLite:broken' AND ok = 0") >= 1
    assert query(db, "SELECT native_id FROM mentions GROUP BY native_id HAVING count(*) > 1") == []
    s = Store(db)
    try:
        if not s.postgres:
            assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert s.count_unclassified(s.query("SELECT model FROM classifications LIMIT 1")[0]["model"]) == 0
    finally:
        s.close()


def test_kill_9_mid_collection_then_restart_loses_and_duplicates_nothing(tmp_path, daemons):
    db = tmp_path / "monitor.db"
    total = 400
    with FakeAlgolia(make_hits(total, int(time.time()) - 20 * 3600, step=120)) as fake:
        fake.delay = 0.5  # a slow upstream: the kill lands between pages
        cfg = write_config(tmp_path, [{"type": "hackernews", "base_url": fake.base_url, "every": "1s",
                                       "max_pages": 50, "fetch_karma": False}])
        d = Daemon(tmp_path, cfg, "first")
        daemons.append(d)
        wait_for(lambda: scalar(db, "SELECT count(*) FROM mentions") >= 100, "the first page", proc=d.proc)
        d.stop(signal.SIGKILL)
        stored_at_kill = scalar(db, "SELECT count(*) FROM mentions")
        assert 100 <= stored_at_kill < total  # killed mid-collection

        d2 = Daemon(tmp_path, cfg, "second")
        daemons.append(d2)
        wait_for(lambda: scalar(db, "SELECT count(*) FROM mentions") == total, "every mention", proc=d2.proc)
        # what the killed daemon held (its collection's lease) was freed at once, not one lease later
        assert "freed the leases and claims of 1 worker(s) of this machine" in d2.err()
        wait_for(lambda: scalar(db, "SELECT count(*) FROM deliveries WHERE status = 'sent'") == total,
                 "every alert delivered", proc=d2.proc)
        assert d2.stop() == 0
        expected = sorted(h["objectID"] for h in fake.hits)

    assert sorted(r["native_id"] for r in query(db, "SELECT native_id FROM mentions")) == expected
    assert scalar(db, "SELECT count(*) FROM alerts") == total  # one alert per mention, none twice
    s = Store(db)
    try:
        if not s.postgres:
            assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        s.close()
