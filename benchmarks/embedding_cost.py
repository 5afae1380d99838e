"""What keeping the sentence vectors costs, and how long themes take.

Prints, measured in this one run:

1. ``pipeline.classify_pending`` (store reads, classification, writes, the config's alert
   rules) on a real SQLite file holding the texts as mentions, with the shipped model's
   ONNX int8 engine keeping each mention's sentence vector (``keep_embeddings``, the
   default) and without (the vector is not fetched from the network, not packed, not
   stored); timed alternately ``--repeats`` times. The throughput ratio with/without, best
   against best, the median of the paired runs and by CPU time (goal: a drop of 5% or less).
2. Bytes a mention the vectors add to the database file (both databases vacuumed), and
   that at 1 million mentions (goal: <= 1 GB).
3. ``topics.find_themes`` over ``--topic-mentions`` synthetic mentions (vectors around 8
   directions, one brand, 30 days), seconds (goal: 100,000 mentions in <= 30 s on 2 cores).

Figures are printed, never asserted (a test does not time).

    python benchmarks/embedding_cost.py [--quick] [--mentions N] [--repeats N] [--topic-mentions N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import pipeline, topics
from monitor.alerts.engine import AlertEngine
from monitor.classify import resolve_model
from monitor.classify.bench import default_texts
from monitor.config import ClassifierSettings, load_settings
from monitor.records import Classification, FetchResult, LabelScore, Mention
from monitor.store import Store
from monitor.vectors import pack


def timed_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def build_database(path: Path, texts: list[str], brand: str) -> None:
    store = Store(path)
    now = datetime.now(UTC)
    for start in range(0, len(texts), 1000):
        batch = [Mention("demo", str(i), brand, texts[i], now - timedelta(seconds=len(texts) - i))
                 for i in range(start, min(start + 1000, len(texts)))]
        store.save_batch(f"{brand}:demo", "q", FetchResult(batch, str(start)))
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def run_stage(template: Path, work: Path, classifier, settings) -> tuple[float, float]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, work)
    store = Store(work)
    try:
        engine = AlertEngine.from_settings(settings.alerts, store)
        return timed_cpu(lambda: pipeline.classify_pending(store, classifier, engine=engine))
    finally:
        store.close()


def vacuumed_size(path: Path) -> int:
    store = Store(path)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.conn.execute("VACUUM")
    store.close()
    return path.stat().st_size


def topics_time(n: int, folder: Path) -> tuple[float, int]:
    """Seconds find_themes takes over n synthetic mentions of one brand, and the themes found."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 384)).astype(np.float32)
    words = ["battery", "support", "shipping", "price", "screen", "refund", "update", "design"]
    store = Store(folder / "topics.db")
    now = datetime.now(UTC)
    model = "bench@1"
    for start in range(0, n, 5000):
        ids = range(start, min(start + 5000, n))
        theme = [i % 8 for i in ids]
        mentions = [Mention("demo", str(i), "Acme", f"Acme {words[t]} note {i % 97} {words[(t + i) % 8]}",
                            now - timedelta(days=30 * (i + 1) / (n + 1))) for i, t in zip(ids, theme, strict=True)]
        stored = store.save_batch("Acme:demo", "q", FetchResult(mentions, str(start)))
        vectors = centres[theme] + 0.6 * rng.normal(size=(len(theme), 384)).astype(np.float32)
        label = LabelScore("neutral", {"neutral": 0.9})
        store.save_classifications([(mid, Classification(label, LabelScore("none", {"none": 0.9}), model,
                                                         embedding=blob))
                                    for mid, blob in zip(stored, pack(vectors), strict=True)])
    t0 = time.perf_counter()
    report = topics.find_themes(store, "Acme", since=now - timedelta(days=30), until=now + timedelta(seconds=1),
                                model=model, save_to=store)
    dt = time.perf_counter() - t0
    store.close()
    return dt, len(report.themes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, well under a minute (CI)")
    ap.add_argument("--mentions", type=int, help="texts classified (default 4000; quick 300)")
    ap.add_argument("--repeats", type=int, help="runs with and without vectors, alternately (default 3; quick 2)")
    ap.add_argument("--topic-mentions", type=int, help="synthetic mentions for themes (default 100000; quick 3000)")
    ap.add_argument("--model", help="model folder (default: the shipped model)")
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="its alert rules are used")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".monitor-cache")
    args = ap.parse_args()
    n = args.mentions or (300 if args.quick else 4000)
    repeats = args.repeats or (2 if args.quick else 3)
    n_topics = args.topic_mentions or (3000 if args.quick else 100_000)

    from monitor.classify.onnx_engine import OnnxClassifier

    settings = load_settings(args.config, env={})
    cs = settings.classifier
    model = args.model or resolve_model(ClassifierSettings().model, ROOT)
    texts = default_texts(n)
    classifier = OnnxClassifier(model, cache_dir=args.cache_dir, threads=cs.threads, batch_size=cs.batch_size,
                                uncertain_below=cs.uncertain_below, languages=cs.languages)
    if not classifier.embeds:
        raise SystemExit(f"{model}'s export gives no sentence vector")
    classifier.classify(texts[:128])  # warm-up
    print(f"{n} texts; model {classifier.name}; threads {cs.threads}, engine batch {cs.batch_size}")
    with tempfile.TemporaryDirectory(prefix="monitor-embed-") as tmp:
        folder = Path(tmp)
        template = folder / "template.db"
        build_database(template, texts, settings.brands[0].name)
        timings: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for r in range(repeats):
            for keep in ((True, False) if r % 2 == 0 else (False, True)):  # neither always goes first
                classifier.keep_embeddings = keep
                timings[keep].append(run_stage(template, folder / f"work-{keep}.db", classifier, settings))
        classifier.keep_embeddings = True
        size = {keep: vacuumed_size(folder / f"work-{keep}.db") for keep in (True, False)}

        def rates(keep: bool, k: int = 0) -> list[float]:
            return [n / t[k] for t in timings[keep]]

        best = max(rates(True)) / max(rates(False))
        paired = statistics.median(a / b for a, b in zip(rates(True), rates(False), strict=True))
        cpu = max(rates(True, 1)) / max(rates(False, 1))
        print(f"classify_pending with vectors: {max(rates(True)):.0f} texts/s, without: {max(rates(False)):.0f} "
              f"texts/s (runs: {', '.join(f'{r:.0f}' for r in rates(True))} / "
              f"{', '.join(f'{r:.0f}' for r in rates(False))})")
        print(f"with / without: {best:.1%} best vs best, {paired:.1%} median of the paired runs, {cpu:.1%} by CPU "
              "time  (goal >= 95%)")
        per = (size[True] - size[False]) / n
        print(f"database: {size[True] / 1e6:.2f} MB with vectors, {size[False] / 1e6:.2f} MB without: "
              f"{per:.0f} bytes a mention, {per * 1e6 / 1e9:.2f} GB at 1M mentions  (goal <= 1 GB)")
        dt, found = topics_time(n_topics, folder)
        print(f"topics over {n_topics} mentions: {dt:.1f} s, {found} themes  (goal: 100,000 in <= 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
