"""No alert lost across a receiver outage and kill -9 of the daemon; no duplicate at a
receiver that honours the idempotency key. Starts the real daemon as a subprocess, on the
database ``Store(db)`` reaches in the test (SQLite, or PostgreSQL: tests/pg_support.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from alert_fakes import add_mentions, mention

from monitor.alerts.channels import idempotency_key
from monitor.records import Alert
from monitor.store import Store
from tests.pg_support import database_setting

ROOT = Path(__file__).resolve().parents[2]
MAIN = Path(__file__).with_name("alert_daemon_main.py")
N = 30


def wait_for(condition, what: str, limit: float = 60.0):
    """Poll until the condition holds (a deadline for a hung test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def db_query(path: Path, sql: str) -> list[dict]:
    s = Store(path, readonly=True)
    try:
        return s.query(sql)
    finally:
        s.close()


@pytest.mark.slow
def test_no_alert_lost_across_outage_and_kill_9(tmp_path, receiver):
    db = tmp_path / "monitor.db"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "database": database_setting(db), "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
        "classify_every": "1s",
        "alerts": {"deliver_every": "1s", "evaluate_every": "1s", "backoff_base": "1s", "backoff_max": "1s",
                   "max_attempts": 100,
                   "channels": {"hook": {"type": "webhook", "url": "${HOOK_URL}", "timeout": "10s"}},
                   "rules": [{"name": "neg", "when": {"sentiment": "negative"}, "channels": ["hook"]}]}}))
    store = Store(db)
    add_mentions(store, [mention(i, f"I hate acme #{i}" if i % 3 else f"acme is fine #{i}", author=f"a{i}")
                         for i in range(N * 3 // 2)])
    store.close()
    expected = N  # two in three are negative
    env = {**os.environ, "HOOK_URL": receiver.url, "PYTHONPATH": str(ROOT)}

    def start():
        return subprocess.Popen([sys.executable, str(MAIN), str(cfg)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()

    # 1. the receiver is down: alerts are created, every attempt fails; then kill -9
    receiver.default = "503"
    proc = start()
    try:
        wait_for(lambda: db_query(db, "SELECT count(*) AS n FROM delivery_attempts WHERE outcome = 'retry'")[0]["n"]
                 >= 2 * expected, "failed attempts during the outage")
    finally:
        kill(proc)
    assert len(receiver.delivered) == 0
    alerts = db_query(db, "SELECT key FROM alerts")
    assert len(alerts) == expected

    # 2. the receiver is back; it accepts the 11th alert but does not answer, and the
    #    daemon is killed -9 while that send is in flight (the ambiguous case)
    receiver.default = "slow"
    receiver.plan = ["slow"] * 10 + ["hang"]
    receiver.hang_s = 60
    proc = start()
    try:
        hung = wait_for(lambda: [r for r in receiver.requests if r["mode"] == "hang"], "a send in flight")
    finally:
        kill(proc)
    assert len(receiver.delivered) == 11 < expected
    hung_key = hung[0]["headers"]["Idempotency-Key"]

    # 3. restart: everything arrives, exactly once at the idempotent receiver
    receiver.default = "ok"
    proc = start()
    try:
        wait_for(lambda: db_query(db, "SELECT count(*) AS n FROM deliveries WHERE status = 'sent'")[0]["n"]
                 == expected, "every delivery sent")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stderr.close()
    keys = {idempotency_key(Alert(rule="neg", key=a["key"], severity="", title="", body="")) for a in alerts}
    assert set(receiver.delivered) == keys  # none lost
    raw = [r["headers"]["Idempotency-Key"] for r in receiver.requests if r["mode"] != "503"]
    assert raw.count(hung_key) == 2  # sent again after the kill: a duplicate on the wire, not at the receiver
    assert db_query(db, "SELECT count(*) AS n FROM deliveries WHERE status != 'sent'")[0]["n"] == 0
    outcomes = [r["outcome"] for r in db_query(db, "SELECT outcome FROM delivery_attempts")]
    assert outcomes.count("interrupted") >= 1 and outcomes.count("started") == 0
