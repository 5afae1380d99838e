"""Web page at scale: 1,000,000 mentions, 100,000 authors.

Builds a synthetic database (bulk insert, synthetic classifications), refreshes the
advocate aggregates, then times pages in-process (the ASGI app, so server time only) and
prints medians and the database size. Targets: advocates page and overview < 300 ms
median, database < 2 GB. The insight pages (Compare with Initech as the competitor, the weekly
Report, Topics) are timed too; the synthetic mentions have no text vectors, so Topics times
the page's reads, not the grouping (``benchmarks/embedding_cost.py`` times that).

    nice -n 10 python benchmarks/web_scale.py [--db /tmp/monitor-bench/web.db] [--mentions 1000000]
    python benchmarks/web_scale.py --quick     # 5,000 mentions in a temporary folder (CI): same paths
    python benchmarks/web_scale.py --backend postgresql [--quick]

``--backend postgresql``: the same SQLite database is copied with ``monitor migrate``'s copy
(timed: rows a second) into a throwaway PostgreSQL on a unix socket (Debian's server binaries,
started as the tests start theirs: tests/pg_support.py; fsync off, so the copy's figure is
the CPU's, not a disk's), and the pages are timed there. ``--backend both`` times both, side by
side (the ratio PostgreSQL / SQLite per page).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from monitor import advocates
from monitor.config import Settings
from monitor.records import Author, Classification, FetchResult, LabelScore, Mention
from monitor.store import Store
from monitor.web.app import create_app
from monitor.web.security import hash_password

BRANDS = ["Acme", "Globex", "Initech"]
SOURCES = ["hackernews", "reddit", "bluesky", "mastodon", "appstore", "googleplay", "trustpilot"]
REVIEW_SOURCES = {"appstore", "googleplay", "trustpilot"}
WORDS = (
    "the", "app", "is", "great", "love", "it", "works", "fast", "support", "was", "slow", "broken",
    "terrible", "recommend", "never", "again", "pricing", "update", "crashed", "every", "time", "my", "team",
    "uses", "it", "daily", "switched", "from", "competitor", "amazing", "helpful", "awful", "refund",
    "would", "buy", "again", "login", "fails", "dashboard", "export", "feature", "request", "thanks",
)
MODEL = "advocacy-minilm@bench"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def build(path: Path, n_mentions: int, n_authors: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    store = Store(path)  # migrations
    conn = store.conn
    conn.execute("PRAGMA synchronous = OFF")
    t0 = time.monotonic()
    authors = []
    for i in range(n_authors):
        src = SOURCES[i % len(SOURCES)]
        reach = int(rnd.paretovariate(1.2) * 50) if rnd.random() < 0.7 else None
        authors.append((i + 1, src, f"user{i}", f"User {i}", f"https://{src}.example/u/{i}", reach,
                        "followers" if reach is not None else None, NOW.isoformat(), NOW.isoformat(), NOW.isoformat()))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO authors (id, source, handle, display_name, url, reach, reach_kind, reach_checked_at, "
                     "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", authors)
    conn.execute("COMMIT")
    # heavy-tailed activity: a few authors write a lot
    weights = [rnd.paretovariate(1.1) for _ in range(n_authors)]
    author_of = rnd.choices(range(1, n_authors + 1), weights=weights, k=n_mentions)
    # each author leans one way
    lean = [rnd.choices(("promoter", "none", "detractor"), (0.35, 0.45, 0.2))[0] for _ in range(n_authors + 1)]
    start = NOW - timedelta(days=730)
    batch_m, batch_c = [], []
    conn.execute("BEGIN")
    for i in range(n_mentions):
        mid = i + 1
        aid = author_of[i]
        src = authors[aid - 1][1]
        brand = BRANDS[(aid + (i % 7 == 0)) % len(BRANDS)]
        created = start + timedelta(seconds=rnd.randrange(730 * 86400))
        review = src in REVIEW_SOURCES
        adv = lean[aid] if rnd.random() < 0.75 else rnd.choice(("promoter", "none", "detractor"))
        rating = None
        if review:
            rating = {"promoter": rnd.choice((5, 5, 4)), "none": rnd.choice((3, 4, 4)),
                      "detractor": rnd.choice((1, 2, 3))}[adv]
        text = " ".join(rnd.choices(WORDS, k=rnd.randint(8, 40)))
        kind = "review" if review else rnd.choice(("post", "comment"))
        batch_m.append((mid, src, f"{src}:{brand}", str(mid), brand, kind, None, f"{brand.lower()} {text}",
                        f"https://{src}.example/item/{mid}", None, aid, rating, "en",
                        brand.lower(), created.isoformat(timespec="seconds"), created.isoformat(timespec="seconds")))
        if rnd.random() < 0.97:
            sent = {"promoter": "positive", "none": "neutral", "detractor": "negative"}[adv]
            p = round(rnd.uniform(0.45, 0.99), 3)
            rest = round((1 - p) / 2, 3)
            probs_a = json.dumps({k: (p if k == adv else rest) for k in ("promoter", "detractor", "none")})
            probs_s = json.dumps({k: (p if k == sent else rest) for k in ("negative", "neutral", "positive")})
            batch_c.append((mid, MODEL, sent, p, probs_s, adv, p, probs_a, int(p < 0.5), "ok", "en",
                            created.isoformat(timespec="seconds")))
        if len(batch_m) >= 50_000:
            _flush(conn, batch_m, batch_c)
            print(f"  {mid:,} mentions", file=sys.stderr)
    _flush(conn, batch_m, batch_c)
    conn.execute("COMMIT")
    print(f"inserted {n_mentions:,} mentions, {n_authors:,} authors in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    store.accounts.add_user("bench", hash_password("bench password", n=2**12))
    store.conn.execute("PRAGMA synchronous = FULL")
    store.close()


def _flush(conn, batch_m, batch_c):
    conn.executemany("INSERT INTO mentions (id, source, source_key, native_id, brand, kind, title, text, url, "
                     "canonical_url, author_id, rating, lang, matched_term, created_at, collected_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch_m)
    conn.executemany("INSERT INTO classifications (mention_id, model, sentiment, sentiment_p, sentiment_probs, "
                     "advocacy, advocacy_p, advocacy_probs, uncertain, status, lang, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch_c)
    batch_m.clear()
    batch_c.clear()


async def time_pages(app, paths: list[str], runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        page = await c.get("/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        r = await c.post("/login", data={"username": "bench", "password": "bench password", "csrf": token})
        assert r.status_code == 303, r.status_code
        for path in paths:
            times = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                r = await c.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code)
            out[path] = times[1:]  # the first warms the page cache
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes in a fresh temporary database (CI): 5,000 mentions, 500 authors, 3 runs")
    ap.add_argument("--db", help="default /tmp/monitor-bench/web.db (kept between runs); quick: a temporary one")
    ap.add_argument("--mentions", type=int, help="default 1,000,000; quick 5,000")
    ap.add_argument("--authors", type=int, help="default 100,000; quick 500")
    ap.add_argument("--runs", type=int, help="timed requests a page (default 15; quick 3)")
    ap.add_argument("--new", type=int, help="new mentions in the incremental cycle (default 1,000; quick 100)")
    ap.add_argument("--rebuild", action="store_true", help="Build the database even if it exists.")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite",
                    help="where the pages read from (postgresql: a throwaway server, see above)")
    args = ap.parse_args()
    n_mentions = args.mentions or (5_000 if args.quick else 1_000_000)
    n_authors = args.authors or (500 if args.quick else 100_000)
    runs = args.runs or (3 if args.quick else 15)
    n_new = args.new or (100 if args.quick else 1_000)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if args.db is None and args.quick:
        with tempfile.TemporaryDirectory(prefix="monitor-web-") as tmp:
            compare(Path(tmp) / "web.db", n_mentions, n_authors, runs, n_new, rebuild=True, backends=backends)
    else:
        compare(Path(args.db or "/tmp/monitor-bench/web.db"), n_mentions, n_authors, runs, n_new,
                rebuild=args.rebuild, backends=backends)


def compare(path: Path, n_mentions: int, n_authors: int, runs: int, n_new: int, *, rebuild: bool,
            backends: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rebuild or not path.exists():
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
        build(path, n_mentions, n_authors)
    medians: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        # the copy first: each backend then gets the same database and the same incremental cycle
        url = stack.enter_context(postgresql_copy(path)) if "postgresql" in backends else None
        for backend in backends:
            print(f"== {backend}")
            if backend == "sqlite":
                medians[backend] = run(path, n_mentions, n_authors, runs, n_new)
            elif url is not None:
                medians[backend] = run(path, n_mentions, n_authors, runs, n_new, target=url)
    if len(medians) == 2:
        print(f"{'page':<58} {'SQLite ms':>10} {'PostgreSQL ms':>14} {'ratio':>7}")
        for page, ms in medians["sqlite"].items():
            pg = medians["postgresql"][page]
            print(f"{page:<58} {ms:>10.1f} {pg:>14.1f} {pg / ms:>6.2f}x")


@contextlib.contextmanager
def postgresql_copy(path: Path) -> Iterator[str | None]:
    """A throwaway PostgreSQL holding a copy of the SQLite file ``path`` (None, with the reason
    printed, where the server binaries are missing; CI=true makes that an error)."""
    from monitor.store.transfer import copy_database
    from tests.pg_support import PgServer, pg_bin

    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        message = "PostgreSQL skipped: no server binaries (apt-get install postgresql)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise SystemExit(message)
        print(message)
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="mweb-"))  # short: a unix socket path
    server = PgServer(root)
    try:
        server.start()
        server.admin("CREATE DATABASE web")
        url = server.url("web")
        source, target = Store(path, readonly=True), Store(url)
        t0 = time.monotonic()
        counts = copy_database(source, target)
        copy_s = time.monotonic() - t0
        target.execute("ANALYZE")
        source.close()
        target.close()
        rows = sum(c.source for c in counts)
        assert all(c.ok for c in counts), [c for c in counts if not c.ok]
        print(f"migrate: {rows:,} rows in {len(counts)} tables copied in {copy_s:.1f}s "
              f"({rows / max(copy_s, 1e-9):,.0f} rows/s), every count matching")
        yield url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def run(path: Path, n_mentions: int, n_authors: int, runs: int, n_new: int, *,
        target: str | None = None) -> dict[str, float]:
    """Time the pages on ``target`` (a PostgreSQL URL holding a copy of ``path``) or on ``path``;
    returns each page's median in ms."""
    settings = Settings.model_validate({"database": str(path),
                                        "brands": [{"name": b, "terms": {"include": [b.lower()]},
                                                    "competitor": b == "Initech"} for b in BRANDS]})
    where: str | Path = target or path
    store = Store(where, now=lambda: NOW)
    t0 = time.monotonic()
    r = advocates.refresh(store, settings.advocates, full=True, now=NOW)
    full_s = time.monotonic() - t0
    # a daemon cycle: n_new new mentions from the last day by existing authors, classified, then refreshed
    rnd = random.Random(7)
    mentions = []
    for i in range(n_new):
        a = rnd.randrange(n_authors)
        src = SOURCES[a % len(SOURCES)]
        mentions.append(Mention(src, f"new{i}", rnd.choice(BRANDS), "acme " + " ".join(rnd.choices(WORDS, k=20)),
                                NOW - timedelta(seconds=rnd.randrange(86400)), author=Author(src, f"user{a}")))
    new_ids = store.save_batch("bench", "q", FetchResult(mentions, None))
    labels = ("promoter", "none", "detractor")
    store.save_classifications([(i, Classification(LabelScore("neutral", {"neutral": 1.0}),
                                                    LabelScore(rnd.choice(labels), {}), MODEL)) for i in new_ids])
    t0 = time.monotonic()
    ri = advocates.refresh(store, settings.advocates, now=NOW)
    incr_s = time.monotonic() - t0
    if target is None:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.conn.execute("ANALYZE")
    counts = store.counts()
    person = store.query("SELECT person_id FROM author_stats ORDER BY mentions DESC LIMIT 1")[0]["person_id"]
    app = create_app(settings, Store(where, readonly=True, now=lambda: NOW), store, now=lambda: NOW)
    paths = ["/advocates", "/advocates?brand=Acme", "/advocates?brand=Acme&flag=advocate&source=reddit",
             "/advocates?sort=reach&brand=Globex", "/detractors?brand=Initech", "/overview?brand=Acme", "/overview",
             "/overview?brand=Acme&weeks=104", "/mentions", "/mentions?brand=Acme&advocacy=detractor",
             "/mentions?q=refund%20would", f"/authors/{person}", "/api/advocates?brand=Acme&limit=100",
             "/compare?brand=Acme", "/report?brand=Acme", "/topics?brand=Acme"]
    times = asyncio.run(time_pages(app, paths, runs))
    if target is None:
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    else:
        size = int(store.scalar("SELECT pg_database_size(current_database())"))
    store.close()
    print(f"database: {counts['mentions']:,} mentions, {counts['authors']:,} authors, "
          f"{counts['classifications']:,} classifications; {size / 1e9:.2f} GB on disk (target < 2 GB)")
    print(f"aggregates: full refresh {full_s:.1f}s ({r.persons:,} persons, {r.weeks:,} weekly rows); "
          f"incremental after {n_new:,} new classified mentions {incr_s:.2f}s "
          f"({ri.persons} persons, {ri.weeks} weekly rows)")
    print(f"{'page':<58} {'median ms':>10} {'p90 ms':>8}")
    for path_, ts in times.items():
        ts = sorted(ts)
        print(f"{path_:<58} {statistics.median(ts):>10.1f} {ts[int(0.9 * (len(ts) - 1))]:>8.1f}")
    return {p: statistics.median(ts) for p, ts in times.items()}


if __name__ == "__main__":
    main()
