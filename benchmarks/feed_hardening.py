"""Prints how long feedparser takes on the e-mail-regex ReDoS author (kurtmckee/feedparser#562)
with and without harden_feed, for growing author sizes. Run: python -m benchmarks.feed_hardening"""

from __future__ import annotations

import io
import time

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
    print(f"feedparser {feedparser.__version__}")
    print(f"{'labels':>7} {'bytes':>8} {'raw parse s':>12} {'hardened s':>11}")
    for n in (1000, 2000, 4000, 8000):
        data = feed(n)
        raw = timed(lambda data=data: feedparser.parse(io.BytesIO(data)))
        safe = timed(lambda data=data: feedparser.parse(harden_feed(data)))
        print(f"{n:>7} {len(data):>8} {raw:>12.3f} {safe:>11.4f}")


if __name__ == "__main__":
    main()
