"""Classification speed: the int8 engine against a RoBERTa-base-sized model read one text
at a time, and the whole `monitor classify` stage against the engine alone.

Prints, all measured in this one run on the same tweet-length texts:

1. ``OnnxClassifier`` (the shipped model, ONNX int8, the configured threads and batch
   size) texts/s; a Twitter-RoBERTa-base-sized ``RobertaForSequenceClassification``
   (125M parameters, random weights built here: nothing is downloaded) in torch fp32,
   one text per call, texts/s (its better figure of the configured threads and one
   thread); and their ratio (goal: >= 35x).
2. ``pipeline.classify_pending`` (store reads, language check, classification, writes,
   the shipped config.yaml's alert rules) on a real SQLite file in a temporary folder
   holding the same texts as mentions, texts/s, and its share of the engine alone
   (goal: >= 85%). Engine and stage are timed alternately, best of ``--repeats``.

Figures are printed, never asserted (a test does not time).

    python benchmarks/classify_speed.py [--quick] [--texts FILE] [--mentions N] [--baseline-texts N]

``--texts FILE``: one text per line, or JSON lines with a "text" field; default: the
demo mentions that ship in monitor/demo (cut to 280 characters, varied by a counter).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import pipeline  # noqa: E402
from monitor.alerts.engine import AlertEngine  # noqa: E402
from monitor.classify import resolve_model  # noqa: E402
from monitor.classify.bench import default_texts  # noqa: E402
from monitor.config import ClassifierSettings, load_settings  # noqa: E402
from monitor.records import Author, FetchResult, Mention  # noqa: E402
from monitor.store import Store  # noqa: E402

ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, num_labels=3)


def shipped_model() -> str:
    """The configured default model folder (wherever the checkout keeps it)."""
    name = ClassifierSettings().model
    for base in (ROOT, ROOT / "monitor"):
        if (base / name).is_dir():
            return resolve_model(name, base)
    return resolve_model(name, ROOT)  # raises a clear ModelError


def read_texts(path: Path | None, n: int) -> list[str]:
    if path is None:
        return default_texts(n)
    base = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            base.append(json.loads(line)["text"] if line.lstrip().startswith("{") else line.strip())
    if not base:
        raise SystemExit(f"no texts in {path}")
    return [base[i % len(base)] if i < len(base) else f"{base[i % len(base)]} #{i}" for i in range(n)]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- baseline

def roberta_per_text(texts: list[str], tokenizer, threads: int, max_length: int, log) -> float:
    """Texts/s of a RoBERTa-base-sized classifier in fp32, one text per call (best thread count)."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**ROBERTA_BASE)).eval()
    n_params = sum(p.numel() for p in model.parameters())
    encoded = []
    for text in texts:  # the shipped tokenizer (same length of tokens); ids fit RoBERTa's vocabulary
        ids = tokenizer.encode(text).ids[:max_length]
        encoded.append(torch.tensor([ids], dtype=torch.long))
    best = 0.0
    old = torch.get_num_threads()
    try:
        for n_threads in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(n_threads)
            with torch.inference_mode():
                model(input_ids=encoded[0], attention_mask=torch.ones_like(encoded[0]))  # warm-up
                dt = timed(lambda: [model(input_ids=x, attention_mask=torch.ones_like(x)).logits for x in encoded])
            log(f"  RoBERTa-base-sized ({n_params / 1e6:.0f}M params) fp32, one text per call, {n_threads} thread(s): "
                f"{len(texts) / dt:.1f} texts/s")
            best = max(best, len(texts) / dt)
    finally:
        torch.set_num_threads(old)
    return best


# --------------------------------------------------------------------------- the stage

def build_database(path: Path, texts: list[str], brand: str) -> None:
    """One mention per text (text only, so the stage reads exactly these texts), recent,
    by 500 authors of whom some have reach (the detractor-with-reach rule can fire)."""
    store = Store(path)
    now = datetime.now(UTC)
    batch: list[Mention] = []
    for i, text in enumerate(texts):
        handle = f"user{i % 500}"
        batch.append(Mention(source="demo", native_id=str(i), brand=brand, text=text, kind="post",
                             created_at=now - timedelta(seconds=len(texts) - i),
                             author=Author(source="demo", handle=handle,
                                           reach=5000 if i % 500 < 50 else 10, reach_kind="followers")))
        if len(batch) == 1000:
            store.save_batch(f"{brand}:demo", "q", FetchResult(batch, str(i)))
            batch = []
    if batch:
        store.save_batch(f"{brand}:demo", "q", FetchResult(batch, str(len(texts))))
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def run_stage(template: Path, work: Path, classifier, settings) -> tuple[float, int, int]:
    """Seconds of `classify_pending` on a fresh copy of the template database; (s, classified, alerts)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, work)
    store = Store(work)
    try:
        engine = AlertEngine.from_settings(settings.alerts, store)
        n = 0

        def go() -> None:
            nonlocal n
            n = pipeline.classify_pending(store, classifier, engine=engine, batch_size=1024)

        dt = timed(go)
        alerts = store.query("SELECT count(*) AS n FROM alerts")[0]["n"]
    finally:
        store.close()
    return dt, n, alerts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, well under a minute (CI)")
    ap.add_argument("--texts", type=Path, help="one text per line, or JSON lines with a 'text' field")
    ap.add_argument("--mentions", type=int, help="texts for the engine and the stage (default 4000; quick 1000)")
    ap.add_argument("--baseline-texts", type=int, help="texts for the per-text baseline (default 100; quick 15)")
    ap.add_argument("--repeats", type=int, help="engine/stage timings, alternately; best kept (default 3; quick 2)")
    ap.add_argument("--model", help="model folder (default: the shipped model)")
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="its alert rules are used")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".monitor-cache")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    n = args.mentions or (1000 if args.quick else 4000)
    n_base = args.baseline_texts or (15 if args.quick else 100)
    repeats = args.repeats or (2 if args.quick else 3)

    from monitor.classify.onnx_engine import OnnxClassifier

    settings = load_settings(args.config, env={})
    cs = settings.classifier
    model = args.model or shipped_model()
    texts = read_texts(args.texts, n)
    print(f"{len(texts)} texts, {sum(map(len, texts)) / len(texts):.0f} characters on average; model {model}; "
          f"threads {cs.threads}, engine batch {cs.batch_size}")
    classifier = OnnxClassifier(model, cache_dir=args.cache_dir, threads=cs.threads, batch_size=cs.batch_size,
                                uncertain_below=cs.uncertain_below, languages=cs.languages)
    classifier.classify(texts[:256])  # warm-up
    brand = settings.brands[0].name

    with tempfile.TemporaryDirectory(prefix="monitor-speed-") as tmp:
        template, work = Path(tmp) / "template.db", Path(tmp) / "work.db"
        build_database(template, texts, brand)
        engine_s, stage_s = [], []
        for _ in range(repeats):
            engine_s.append(timed(lambda: classifier.classify(texts)))
            dt, done, alerts = run_stage(template, work, classifier, settings)
            if done != len(texts):
                raise SystemExit(f"the stage classified {done} of {len(texts)}")
            stage_s.append(dt)
    engine_rate, stage_rate = len(texts) / min(engine_s), len(texts) / min(stage_s)
    print(f"engine: OnnxClassifier int8: {engine_rate:.0f} texts/s "
          f"(runs: {', '.join(f'{len(texts) / s:.0f}' for s in engine_s)})")
    print(f"stage: classify_pending (SQLite, language check, engine, writes, {len(settings.alerts.rules)} alert "
          f"rule(s), {alerts} alert(s)): {stage_rate:.0f} texts/s (runs: {', '.join(f'{len(texts) / s:.0f}' for s in stage_s)})")
    print(f"stage / engine: {stage_rate / engine_rate:.0%}  (goal >= 85%)")

    if not args.skip_baseline:
        base_rate = roberta_per_text(texts[:n_base], classifier.tokenizer, cs.threads, classifier.max_length, print)
        print(f"baseline: RoBERTa-base-sized fp32, one text per call: {base_rate:.1f} texts/s ({n_base} texts)")
        print(f"engine / baseline: {engine_rate / base_rate:.1f}x  (goal >= 35x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
