"""Prints how long feedparser takes on the e-mail-regex ReDoS author (kurtmckee/feedparser#562)
with and without harden_feed, for growing author sizes, and their ratio (raw / hardened).

    python benchmarks/feed_hardening.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser

from monitor.collect.feeds import harden_feed


def feed(labels: int) -> bytes:
    author = "a@" + "a." * labels + "!"
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>acme</title>'
            f"<author>{author}</author><description>acme</description></item></channel></rss>").encode()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller authors, under a second (CI)")
    args = ap.parse_args()
    sizes = (500, 1000, 2000) if args.quick else (1000, 2000, 4000, 8000)
    print(f"feedparser {feedparser.__version__}")
    print(f"{'labels':>7} {'bytes':>8} {'raw parse s':>12} {'hardened s':>11} {'raw/hardened':>13}")
    for n in sizes:
        data = feed(n)
        raw = timed(lambda data=data: feedparser.parse(io.BytesIO(data)))
        safe = timed(lambda data=data: feedparser.parse(harden_feed(data)))
        print(f"{n:>7} {len(data):>8} {raw:>12.3f} {safe:>11.4f} {raw / safe:>12.0f}x")


if __name__ == "__main__":
    main()
