"""Scale-out: 1, 2 and 3 worker processes classifying one backlog on one PostgreSQL database.

Starts a throwaway PostgreSQL (tests/pg_support.PgServer: initdb into a temporary folder,
a unix socket only). For each worker count K: a fresh database holding the same backlog of
N mentions (tweet-length texts: the demo mentions, varied by a counter, stored through
``Store.save_batch``), then K worker processes, each of which opens ``Store(url)``, loads
the classifier as ``monitor classify`` does (the configured model, ONNX int8, one thread a
process), registers itself (``Heartbeat(store, register=True)``) and runs
``pipeline.classify_pending`` (the config's alert rules and brands) until no mention is
left to claim. The workers load first, then all start together; the wall time runs from
that start until the last one is done.

Prints, for each K: the wall time, mentions/s, the ratio against one worker in this same
run, how many mentions each worker classified, how many cores the workers kept busy and
their mentions a CPU second against one worker's (the coordination's cost, whatever else
the machine is doing), and a check that every mention has exactly
one classification by the model and none is left (a FAILED line and exit status 1
otherwise). Figures are printed, never asserted. The ratio cannot pass the number of CPU
cores the machine has (printed first), nor balance better than the claim batch allows:
mentions are claimed ``--batch`` at a time (default: what ``monitor run`` claims, 2048,
or 512 while other workers are live), so a backlog of a few claims splits unevenly.

    python benchmarks/scale_out.py [--mentions 6000] [--workers 1,2,3] [--batch N]
    python benchmarks/scale_out.py --quick     # 300 mentions, claimed 50 at a time (CI)

Without the PostgreSQL server binaries (initdb, pg_ctl) it prints a "skipped:" line and
exits 0, except with CI=true, where it exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import pipeline
from monitor.classify.bench import default_texts
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store

CONFIG = ROOT / "config.yaml"  # its classifier, brands and alert rules
CACHE = ROOT / ".monitor-cache"  # the ONNX export, shared with benchmarks/classify_speed.py
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "TOKENIZERS_PARALLELISM": "false"}


def load_settings(config: Path):
    from monitor.config import load_settings as load

    settings = load(config, env={})
    return settings.model_copy(update={"classifier": settings.classifier.model_copy(update={"threads": 1,
                                                                                           "engine": "onnx"})})


def make_classifier(settings, cache_dir: Path):
    from monitor.classify import build_classifier

    return build_classifier(settings.classifier, settings.base_dir, cache_dir=cache_dir)


# --------------------------------------------------------------------------- one worker process

def worker_main(url: str, config: Path, cache_dir: Path, batch: int) -> int:
    """A worker: load, say 'ready', wait for 'go' on stdin, classify until nothing is left to
    claim, print one JSON line with what it did."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from monitor.alerts.engine import AlertEngine
    from monitor.workers import Heartbeat

    settings = load_settings(config)
    classifier = make_classifier(settings, cache_dir)
    classifier.classify(default_texts(32))  # warm-up: the language check loads its model on first use
    store = Store(url)
    try:
        engine = AlertEngine.from_settings(settings.alerts, store, inbox=settings.inbox, handoff=settings.handoff)
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 1
        c0, t0 = time.process_time(), time.perf_counter()
        with Heartbeat(store, register=True):
            n = pipeline.classify_pending(store, classifier, engine=engine, batch_size=batch,
                                          brands=settings.brands)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"worker": store.worker, "classified": n, "wall": wall, "cpu": cpu}), flush=True)
    finally:
        store.close()
    return 0


# --------------------------------------------------------------------------- the parent

def build_backlog(url: str, texts: list[str], brand: str) -> None:
    """One mention per text, recent, by 500 authors of whom some have reach."""
    store = Store(url)
    try:
        now = datetime.now(UTC)
        batch: list[Mention] = []
        for i, text in enumerate(texts):
            batch.append(Mention(source="demo", native_id=str(i), brand=brand, text=text, kind="post",
                                 created_at=now - timedelta(seconds=len(texts) - i),
                                 author=Author(source="demo", handle=f"user{i % 500}",
                                               reach=5000 if i % 500 < 50 else 10, reach_kind="followers")))
            if len(batch) == 1000 or i == len(texts) - 1:
                store.save_batch(f"{brand}:demo", "q", FetchResult(batch, str(i)))
                batch = []
    finally:
        store.close()


def run_workers(url: str, k: int, args: argparse.Namespace) -> tuple[float, float, list[dict]]:
    """K workers on ``url``, started together: (seconds to load, wall seconds, each one's result)."""
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", url, "--config", str(args.config),
           "--cache-dir", str(args.cache_dir), "--batch", str(args.batch)]
    t_load = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for _ in range(k)]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if line != "ready":
                raise SystemExit(f"a worker did not start (exit {p.wait()}): {line!r}")
        loaded = time.perf_counter() - t_load
        t0 = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=3600)
            if p.returncode:
                raise SystemExit(f"a worker failed (exit {p.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return loaded, wall, results


def check(url: str, model: str, n: int) -> tuple[bool, str]:
    """Every mention classified exactly once by ``model``, none left, no claim left."""
    store = Store(url)
    try:
        mentions = store.count("SELECT count(*) FROM mentions")
        rows = store.count("SELECT count(*) FROM classifications WHERE model = ?", [model])
        distinct = store.count("SELECT count(DISTINCT mention_id) FROM classifications WHERE model = ?", [model])
        left = store.count_unclassified(model)
        claims = store.count("SELECT count(*) FROM work_claims")
    finally:
        store.close()
    ok = mentions == n and rows == n and distinct == n and left == 0 and claims == 0
    return ok, (f"{mentions} mention(s), {rows} classification(s) by the model ({distinct} distinct mentions), "
                f"{left} left unclassified, {claims} claim(s) left")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 mentions claimed 50 at a time, seconds (CI)")
    ap.add_argument("--mentions", type=int, help="the backlog (default 6000; quick 300)")
    ap.add_argument("--workers", default="1,2,3", help="worker counts to run, comma-separated (default 1,2,3)")
    ap.add_argument("--batch", type=int, help=f"mentions a worker claims at a time (default the pipeline's "
                                              f"{pipeline.BATCH_ROWS}, what `monitor run` claims; quick 50)")
    ap.add_argument("--config", type=Path, default=CONFIG, help="its classifier model, brands and alert rules")
    ap.add_argument("--cache-dir", type=Path, default=CACHE, help="where the ONNX export is kept")
    ap.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)  # a worker process (run_workers)
    args = ap.parse_args()
    args.batch = args.batch or (50 if args.quick else pipeline.BATCH_ROWS)
    if args.worker:
        return worker_main(args.worker, args.config, args.cache_dir, args.batch)

    from tests.pg_support import PgServer, pg_bin

    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        print("skipped: the PostgreSQL server binaries (initdb, pg_ctl) are not installed "
              "(apt-get install postgresql)")
        return 1 if os.environ.get("CI", "").lower() in ("1", "true", "yes") else 0
    n = args.mentions or (300 if args.quick else 6000)
    counts = sorted({int(k) for k in args.workers.split(",") if k.strip()})
    settings = load_settings(args.config)
    classifier = make_classifier(settings, args.cache_dir)  # exports the ONNX model once, before the workers
    model = classifier.name
    brand = settings.brands[0].name
    texts = default_texts(n)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPU core(s) on this machine (load average {load} before the run): the ratio cannot "
          "pass the cores left free; workers: one ONNX thread each")
    print(f"{n} mentions, {sum(map(len, texts)) / n:.0f} characters on average; model {model}; claimed {args.batch} "
          f"at a time ({min(args.batch, pipeline.SHARED_BATCH_ROWS)} while other workers are live); "
          f"{len(settings.alerts.rules)} alert rule(s)")

    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))  # short: a unix socket path has ~100 characters
    server = PgServer(root)
    failed = False
    base: float | None = None
    base_cpu = 0.0
    try:
        server.start()
        server.make_template()
        for k in counts:
            url = server.new_url()
            build_backlog(url, texts, brand)
            loaded, wall, results = run_workers(url, k, args)
            rate = n / wall
            cpu = sum(r["cpu"] for r in results)
            if base is None:
                base, base_cpu = rate, n / cpu
            each = ", ".join(f"{r['classified']} ({r['wall']:.1f}s, CPU {r['cpu']:.1f}s)"
                             for r in sorted(results, key=lambda r: -r["classified"]))
            ok, detail = check(url, model, n)
            print(f"{k} worker(s): {wall:.1f}s, {rate:.0f} mentions/s, {rate / base:.2f}x one worker "
                  f"(loading took {loaded:.1f}s, not counted); each classified: {each}")
            print(f"  the workers kept {cpu / wall:.2f} core(s) busy; {n / cpu:.0f} mentions a CPU second, "
                  f"{n / cpu / base_cpu:.2f}x one worker's (the cost of sharing the work)")
            if sum(r["classified"] for r in results) != n:
                ok, detail = False, f"the workers report {sum(r['classified'] for r in results)} in all; {detail}"
            print(f"  {'ok' if ok else 'FAILED'}: {detail}")
            failed |= not ok
            server.drop(url)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
