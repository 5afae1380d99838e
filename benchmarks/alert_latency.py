"""Alert latency: from a mention being stored to its alert reaching a local webhook
receiver, with a fake classifier so only the alert path is measured (store, rules,
outbox, HTTP). Prints median and p95 over N alerts.

    python benchmarks/alert_latency.py                 # direct: the daemon's classify job per mention
    python benchmarks/alert_latency.py --batch 20      # 20 mentions stored together per cycle
    python benchmarks/alert_latency.py --mode daemon   # the real scheduler with a fake source polling
    python benchmarks/alert_latency.py --quick         # 50 alerts (CI); combines with the others

In the daemon a collect run that stores new mentions triggers the classify job at once,
which queues and delivers the alerts, so the end-to-end delay is the source's poll
interval (waiting for the mention to be fetched) plus the processing time printed here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.alerts.channels import WebhookChannel, idempotency_key  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.daemon import Daemon  # noqa: E402
from monitor.records import Alert, Author, Classification, FetchResult, LabelScore, Mention  # noqa: E402
from monitor.store import Store  # noqa: E402


class NegativeClassifier:
    name = "bench-negative@1"

    def classify(self, texts):
        s = {"negative": 0.9, "neutral": 0.05, "positive": 0.05}
        a = {"detractor": 0.8, "none": 0.1, "promoter": 0.1}
        return [Classification(LabelScore("negative", s), LabelScore("detractor", a), self.name) for _ in texts]


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrivals.setdefault(self.headers["Idempotency-Key"], time.perf_counter())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class QueueSource:
    """A fake source: each fetch hands over whatever the benchmark queued, and notes when."""

    type = "bench"
    key = "Acme:bench"

    def __init__(self) -> None:
        self.pending: list[Mention] = []
        self.handed: dict[str, float] = {}
        self.lock = threading.Lock()

    def queries(self):
        return ["acme"]

    def fetch(self, query, cursor):
        with self.lock:
            batch, self.pending = self.pending, []
        now = time.perf_counter()
        for m in batch:
            self.handed[m.native_id] = now  # just before the store commits them: latencies err high
        return FetchResult(batch, cursor)


def make_mention(i: int) -> Mention:
    return Mention(source="bench", native_id=str(i), brand="Acme", text=f"acme broke again #{i}",
                   created_at=datetime.now(UTC), url=f"https://example.org/{i}",
                   author=Author(source="bench", handle=f"user{i % 50}", reach=100, reach_kind="karma"))


def settings_for(db: Path, url: str, poll: float) -> Settings:
    return Settings.model_validate({
        "database": str(db), "classify_every": "1h",
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
        "alerts": {"channels": {"console": {"type": "console"}}, "deliver_every": "1h", "evaluate_every": "1h",
                   "rules": [{"name": "neg", "when": {"sentiment": "negative", "min_probability": 0.8},
                              "channels": ["console"]}]},
    })


def key_of(store: Store, native_id: str) -> str:
    mid = store.query("SELECT id FROM mentions WHERE native_id = ?", [native_id])[0]["id"]
    return idempotency_key(Alert(rule="neg", key=f"neg:mention:{mid}", severity="", title="", body=""))


def direct(n: int, batch: int, folder: Path) -> list[float]:
    receiver = Receiver()
    store = Store(folder / "bench.db")
    settings = settings_for(store.path, receiver.url, 0)
    daemon = Daemon(settings, store, sources=[], classifier_factory=NegativeClassifier,
                    channels={"console": WebhookChannel("console", receiver.url)})
    daemon.classify_job()  # load the classifier outside the timing
    latencies = []
    i = 0
    while i < n:
        ms = [make_mention(i + k) for k in range(min(batch, n - i))]
        store.save_batch("Acme:bench", "acme", FetchResult(ms, None))
        stored = time.perf_counter()
        daemon.classify_job()  # what the collect job triggers when it stored new mentions
        daemon.outbox.join(30)  # delivery runs on the outbox's workers
        for m in ms:
            latencies.append(receiver.arrivals[key_of(store, m.native_id)] - stored)
        i += len(ms)
    return latencies


def scheduled(n: int, batch: int, poll: float, folder: Path) -> list[float]:
    from monitor.matching import Matcher

    receiver = Receiver()
    store = Store(folder / "bench.db")
    settings = settings_for(store.path, receiver.url, poll)
    source = QueueSource()
    ss = type("SS", (), {"every": __import__("datetime").timedelta(seconds=poll), "max_pages": 1})()
    daemon = Daemon(settings, store, sources=[(source, Matcher(settings.brands[0].terms), ss)],
                    classifier_factory=NegativeClassifier,
                    channels={"console": WebhookChannel("console", receiver.url)})
    runner = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    runner.start()
    i = 0
    while i < n:
        with source.lock:
            source.pending += [make_mention(i + k) for k in range(min(batch, n - i))]
        i += min(batch, n - i)
        time.sleep(poll)
    deadline = time.monotonic() + 60
    while len(receiver.arrivals) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon.stop()
    runner.join(30)
    return [receiver.arrivals[key_of(store, nid)] - t for nid, t in source.handed.items()
            if key_of(store, nid) in receiver.arrivals]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run, a few seconds (CI): 50 alerts")
    ap.add_argument("-n", type=int, help="alerts to measure (default 1000; quick 50)")
    ap.add_argument("--batch", type=int, default=1, help="mentions stored together per cycle")
    ap.add_argument("--mode", choices=["direct", "daemon"], default="direct")
    ap.add_argument("--poll", type=float, default=0.5, help="daemon mode: the fake source's poll interval (s)")
    args = ap.parse_args()
    n = args.n or (50 if args.quick else 1000)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if args.mode == "direct":
            lat = direct(n, args.batch, Path(tmp))
        else:
            lat = scheduled(n, args.batch, args.poll, Path(tmp))
        wall = time.perf_counter() - t0
    lat_ms = sorted(x * 1000 for x in lat)
    p95 = lat_ms[min(len(lat_ms) - 1, int(round(0.95 * len(lat_ms))) - 1)]
    print(f"mode={args.mode} batch={args.batch} alerts={len(lat_ms)}/{n} wall={wall:.1f}s")
    print(f"stored -> received: median {statistics.median(lat_ms):.1f} ms, p95 {p95:.1f} ms, max {lat_ms[-1]:.1f} ms")
    if args.mode == "daemon":
        print(f"(measured from the fetch handing mentions to the store; the poll interval of {args.poll}s "
              "comes on top, as the wait for the next fetch)")


if __name__ == "__main__":
    main()
