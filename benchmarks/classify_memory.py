"""Peak memory (max RSS) of `monitor classify` on 10,000 stored mentions.

Builds a database of N tweet-to-review-length mentions in a temporary folder, exports the
model first (a separate process: the export needs torch; its memory is not the daemon's),
then runs `python -m monitor -c CONFIG classify` as a child process and reads its
ru_maxrss with os.wait4. Prints figures; asserts nothing.

    python benchmarks/classify_memory.py [--quick] [--mentions 10000] [--engine onnx] [--model advocacy-minilm]

``--quick`` (CI) classifies 500 mentions: the same processes, a smaller database.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.records import Author, FetchResult, Mention
from monitor.store import Store


def build_database(path: Path, n: int) -> None:
    demo = [json.loads(line)["text"] for line in (ROOT / "monitor/demo/mentions.jsonl").read_text().splitlines()
            if line.strip()]
    store = Store(path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch = []
    for i in range(n):
        text = demo[i % len(demo)]
        if i % 10 == 0:  # one in ten is a long review
            text = " ".join([text] * 8)
        batch.append(Mention(source="demo", native_id=str(i), brand="Acme", text=f"{text} ({i})",
                             created_at=start + timedelta(minutes=i),
                             author=Author(source="demo", handle=f"user{i % 500}")))
        if len(batch) == 1000:
            store.save_batch("Acme:demo", "acme", FetchResult(batch, str(i)))
            batch = []
    if batch:
        store.save_batch("Acme:demo", "acme", FetchResult(batch, str(n)))
    store.close()


def run_measured(cmd: list[str]) -> tuple[int, float, float]:
    """(exit code, max RSS in MB, seconds) of one child process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="500 mentions instead of 10,000 (CI)")
    ap.add_argument("--mentions", type=int, help="default 10,000; quick 500")
    ap.add_argument("--engine", choices=["onnx", "torch"], default="onnx")
    ap.add_argument("--model", default="advocacy-minilm")  # bundled: monitor/models/advocacy-minilm
    ap.add_argument("--cache-dir", default=str(ROOT / ".monitor-cache"))
    args = ap.parse_args()
    n = args.mentions or (500 if args.quick else 10_000)
    model = str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model  # else bundled or hub
    with tempfile.TemporaryDirectory(prefix="monitor-mem-") as tmp:
        folder = Path(tmp)
        config = folder / "config.yaml"
        config.write_text(json.dumps({  # JSON is YAML
            "database": str(folder / "bench.db"),
            "log_level": "WARNING",
            "brands": [{"name": "Acme", "terms": {"include": ["acme"]}, "sources": [{"type": "demo"}]}],
            "classifier": {"engine": args.engine, "model": model,
                           "cache_dir": str(Path(args.cache_dir).resolve())},
        }))
        t0 = time.monotonic()
        build_database(folder / "bench.db", n)
        print(f"built a database of {n} mentions in {time.monotonic() - t0:.1f}s")
        base = [sys.executable, "-m", "monitor", "-c", str(config)]
        if args.engine == "onnx":
            rc, rss, dt = run_measured([*base, "model", "export"])
            print(f"model export: exit {rc}, max RSS {rss:.0f} MB, {dt:.1f}s (a separate process, once per model)")
            if rc:
                return rc
        rc, rss, dt = run_measured([*base, "classify"])
        print(f"monitor classify ({args.engine}) on {n} mentions: exit {rc}, max RSS {rss:.0f} MB, "
              f"{dt:.1f}s, {n / dt:.0f} mentions/s including start-up (target: <= 600 MB)")
        return rc


if __name__ == "__main__":
    sys.exit(main())
