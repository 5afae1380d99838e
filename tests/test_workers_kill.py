"""Two real `monitor run` processes on one PostgreSQL database; one is killed -9 while it
holds claimed mentions. The other takes its work over one ``worker_lease`` later: every
mention the fake source serves is stored and classified once, every alert reaches the
webhook receiver once, and `monitor status` lists the surviving worker.

The kill lands while the victim holds claims, never in the middle of a webhook send: the
victim is first stopped (SIGSTOP), and killed only when the database shows it holds claimed
mentions and no delivery attempt of its own is open; otherwise it is resumed and the test
looks again. (A send in flight at a kill is the at-least-once case the idempotency key is
for: tests/alerts/test_alert_kill9.py.) So the receiver must see each alert exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from monitor.store import Store, iso

from .conftest import ROOT, SHIPPED_MODEL
from .fakes.algolia import FakeAlgolia, make_hits

pytestmark = pytest.mark.slow

TOTAL = 360  # mentions the source serves: about half before the kill, the rest after
CHUNK = 40  # added to the source at a time, so that both workers claim and deliver some
LEASE = 3  # seconds: worker_lease


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 200 after ``delay`` seconds and records each
    request's Idempotency-Key and alert id."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.delay = 0.01  # quick, yet a worker's claimed deliveries take a moment to send
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver.lock:
                    receiver.requests.append({"key": self.headers.get("Idempotency-Key"),
                                              "alert_id": body.get("alert_id"), "mentions": body.get("mention_ids")})
                time.sleep(receiver.delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Worker:
    """One `monitor run` process."""

    def __init__(self, tmp_path: Path, cfg: Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.stderr = tmp_path / f"{name}.err"
        env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        with self.stderr.open("ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(cfg), "run"], cwd=ROOT, env=env,
                                         stdout=subprocess.DEVNULL, stderr=err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


@pytest.fixture
def workers():
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            os.kill(w.pid, signal.SIGCONT)
            w.proc.kill()
            w.proc.wait(10)


def wait_for(condition, what: str, workers: list[Worker], limit: float = 60.0):
    """Poll until the condition holds (a deadline for a hung test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError(f"{w.name} exited ({w.proc.returncode}) while waiting for {what}:\n"
                                     f"{w.err()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}; " + "; ".join(f"{w.name}: {w.err()[-1500:]}" for w in workers))


def worker_id(store: Store, pid: int) -> str | None:
    return store.scalar("SELECT id FROM workers WHERE pid = ? ORDER BY started_at DESC LIMIT 1", [pid])


def open_sends(store: Store, worker: str) -> int:
    """Delivery attempts started and not finished, of deliveries ``worker`` holds: a send in flight."""
    return store.count("SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
                       "WHERE a.outcome = 'started' AND d.claimed_by = ?", [worker])


def what_it_holds(store: Store, worker: str) -> str:
    sent = store.count("SELECT count(*) FROM deliveries WHERE status = 'sent'")
    return (f"{store.count('SELECT count(*) FROM work_claims WHERE holder = ?', [worker])} claimed mention(s), "
            f"{store.count('SELECT count(*) FROM deliveries WHERE claimed_by = ?', [worker])} claimed delivery(ies), "
            f"leases {[r['name'] for r in store.query('SELECT name FROM leases WHERE holder = ?', [worker])]}; "
            f"{store.count('SELECT count(*) FROM mentions')} of {TOTAL} mentions stored, {sent} alert(s) sent")


def test_kill_9_of_one_worker_loses_and_duplicates_nothing(tmp_path, pg_url, workers):
    receiver = Receiver()
    store = Store(pg_url)
    start_ts = int(time.time()) - 20 * 3600
    hits = make_hits(TOTAL, start_ts, step=60)
    try:
        with FakeAlgolia() as fake:
            cfg = tmp_path / "config.yaml"
            cfg.write_text(yaml.safe_dump({
                "database": pg_url,
                "worker_lease": f"{LEASE}s",
                "brands": [{"name": "SQLite", "terms": {"include": ["sqlite"]}, "sources": [
                    {"type": "hackernews", "name": "hn", "base_url": fake.base_url, "every": "1s", "max_pages": 50,
                     "fetch_karma": False}]}],
                "classifier": {"engine": "torch", "model": str(SHIPPED_MODEL), "threads": 1, "batch_size": 32},
                "classify_every": "1s",
                "http": {"allow_networks": ["127.0.0.1/32"], "per_host_interval": 0.05},
                "alerts": {"deliver_every": "1s", "evaluate_every": "1s",
                           "channels": {"hook": {"type": "webhook", "url": "${HOOK_URL}", "timeout": "5s"}},
                           "rules": [{"name": "every-mention", "when": {"brands": ["SQLite"]}, "channels": ["hook"]}]},
            }))
            env = {"HOOK_URL": receiver.url}
            one, two = Worker(tmp_path, cfg, "one", env), Worker(tmp_path, cfg, "two", env)
            workers += [one, two]
            wait_for(lambda: all(any("classifier" in line and "loaded" in line for line in w.err().splitlines())
                                 for w in workers), "both workers to load the model", workers)
            wait_for(lambda: len(store.workers.live()) == 2, "both workers registered", workers)

            # the backlog arrives in chunks while both run, until one of them is killed holding claims:
            # at first only one that holds mentions and deliveries both, then one that holds mentions
            served = 0
            victim: Worker | None = None
            held_at_kill: set[int] = set()
            deliveries_at_kill: set[int] = set()
            deadline = time.monotonic() + 60
            while victim is None:
                assert time.monotonic() < deadline, "no worker was ever seen holding claimed mentions"
                # a chunk at a time, once the last one is stored; the last chunk waits for the kill
                if served < TOTAL - CHUNK and served == store.count("SELECT count(*) FROM mentions"):
                    fake.add(hits[served:served + CHUNK])
                    served += CHUNK
                if not store.count("SELECT count(*) FROM deliveries WHERE status = 'sent'"):
                    time.sleep(0.05)  # first some alerts delivered: the kill lands mid-stream
                    continue
                want_deliveries = served < TOTAL - 3 * CHUNK
                now = iso(store.database_now())
                holders = {r["holder"] for r in store.query(
                    "SELECT DISTINCT holder FROM work_claims WHERE expires_at > ?", [now])}
                if want_deliveries:
                    holders &= {r["claimed_by"] for r in store.query(
                        "SELECT DISTINCT claimed_by FROM deliveries WHERE claim_until > ?", [now])}
                for w in workers:
                    wid = worker_id(store, w.pid)
                    if wid not in holders:
                        continue
                    os.kill(w.pid, signal.SIGSTOP)  # frozen: what the database shows now is what it holds at the kill
                    time.sleep(0.3)  # statements it sent before the stop are done
                    held = {r["item_id"] for r in store.query(
                        "SELECT item_id FROM work_claims WHERE holder = ?", [wid])}
                    claimed = {r["id"] for r in store.query(
                        "SELECT id FROM deliveries WHERE claimed_by = ? AND status = 'pending'", [wid])}
                    if held and (claimed or not want_deliveries) and not open_sends(store, wid):
                        print(f"kill -9 {w.name}: {what_it_holds(store, wid)}")
                        os.kill(w.pid, signal.SIGKILL)
                        w.proc.wait(10)
                        victim, held_at_kill, deliveries_at_kill = w, held, claimed
                    else:
                        os.kill(w.pid, signal.SIGCONT)
                    break
                time.sleep(0.02)
            survivor = two if victim is one else one
            victim_id, survivor_id = worker_id(store, victim.pid), worker_id(store, survivor.pid)
            assert held_at_kill and victim.proc.returncode == -signal.SIGKILL

            # the rest of the backlog; the survivor takes the victim's claims over one lease later
            fake.add(hits[served:])
            served = TOTAL
            wait_for(lambda: store.count("SELECT count(*) FROM mentions") == TOTAL, "every mention stored", [survivor])
            model = store.scalar("SELECT model FROM classifications LIMIT 1")
            assert model and model.startswith("advocacy-minilm@")
            wait_for(lambda: store.count_unclassified(model) == 0, "every mention classified", [survivor])
            wait_for(lambda: store.count("SELECT count(*) FROM deliveries WHERE status = 'sent'") == TOTAL,
                     "every alert delivered", [survivor])

            live = store.workers.live()
            assert [w["id"] for w in live] == [survivor_id]
            status = subprocess.run([sys.executable, "-m", "monitor", "-c", str(cfg), "status"], cwd=ROOT,
                                    env={**os.environ, **env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
                                    capture_output=True, text=True, timeout=120, check=False)
            assert status.returncode == 0, status.stderr
            rows = [line for line in status.stdout.splitlines() if survivor_id in line]
            assert rows and "alive" in rows[0], status.stdout
            assert not any(victim_id in line and "alive" in line for line in status.stdout.splitlines())

            survivor.proc.send_signal(signal.SIGTERM)
            assert survivor.proc.wait(60) == 0
            err = survivor.err()
            assert "stopped cleanly" in err and "Traceback" not in err
            assert "Traceback" not in victim.err()
            expected = sorted(h["objectID"] for h in hits)

        # 0 mentions lost: every served mention stored once
        assert sorted(r["native_id"] for r in store.query("SELECT native_id FROM mentions")) == expected
        # classified exactly once each by the model, the victim's claims included
        per_mention = store.query("SELECT m.id, count(c.id) AS n FROM mentions m LEFT JOIN classifications c "
                                  "ON c.mention_id = m.id AND c.model = ? GROUP BY m.id", [model])
        assert len(per_mention) == TOTAL and {r["n"] for r in per_mention} == {1}
        marks = ", ".join("?" * len(held_at_kill))  # among them those the victim held at its death
        assert store.count(f"SELECT count(*) FROM classifications WHERE model = ? AND mention_id IN ({marks})",
                           [model, *sorted(held_at_kill)]) == len(held_at_kill)
        if deliveries_at_kill:  # the victim's unsent deliveries were sent by the survivor
            marks = ", ".join("?" * len(deliveries_at_kill))
            assert store.count(f"SELECT count(*) FROM deliveries WHERE status = 'sent' AND id IN ({marks})",
                               sorted(deliveries_at_kill)) == len(deliveries_at_kill)
        assert store.count("SELECT count(*) FROM work_claims") == 0
        # one alert per mention, each delivered once and received once
        alerts = store.query("SELECT id, key FROM alerts")
        assert len(alerts) == TOTAL
        assert store.count("SELECT count(*) FROM deliveries WHERE status = 'sent'") == TOTAL
        got = receiver.received()
        by_key = Counter(r["key"] for r in got)
        assert [k for k, n in by_key.items() if n > 1] == []  # no alert delivered twice
        assert sorted(r["alert_id"] for r in got) == sorted(a["id"] for a in alerts)  # none lost, none twice
        assert len(by_key) == TOTAL
        # the survivor's clean stop freed everything it held
        assert store.workers.live() == []
        assert store.count("SELECT count(*) FROM leases WHERE holder = ?", [survivor_id]) == 0
    finally:
        store.close()
        receiver.close()
