"""The Hacker News source against a local fake of the Algolia API (real HTTP through
HttpClient): paging, resuming, karma, and every upstream fault."""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime

import pytest

from monitor import pipeline
from monitor.collect import build_source
from monitor.collect.hackernews import HITS_PER_PAGE, OVERLAP, html_to_text
from monitor.config import Settings
from monitor.http_client import HttpClient, HttpPolicy
from monitor.matching import Matcher
from monitor.records import FetchResult

from .fakes.algolia import FakeAlgolia, load_fixture, make_hits

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T0 = int(NOW.timestamp()) - 86_400  # one day ago: inside the first run's lookback


@pytest.fixture
def algolia():
    with FakeAlgolia(load_fixture("search_by_date.json")["hits"]) as fake:
        yield fake


@pytest.fixture
def sleeps():
    return []


def make_source(base_url: str, sleeps: list | None = None, *, policy: dict | None = None, **source):
    settings = Settings.model_validate({
        "brands": [{"name": "SQLite", "terms": {"include": ["sqlite"], "exclude": ["sqlitebrowser"]},
                    "sources": [{"type": "hackernews", "base_url": base_url, **source}]}],
    })
    brand, ss = settings.source_jobs()[0]
    sleep = sleeps.append if sleeps is not None else (lambda s: None)

    def factory():
        return HttpClient(HttpPolicy(sleep=sleep, allow_networks=("127.0.0.1/32",), **(policy or {})))

    return build_source(brand, ss, http_factory=factory, now=lambda: NOW), Matcher(ss.terms or brand.terms)


def collect(store, source, matcher, max_pages: int = 5):
    return pipeline.collect(store, source, matcher, max_pages=max_pages)


def stored_ids(store) -> list[str]:
    return [r["native_id"] for r in store.query("SELECT native_id FROM mentions ORDER BY native_id")]


def runs(store) -> list[dict]:
    return store.query("SELECT * FROM source_runs ORDER BY id")


# ------------------------------------------------------------------------------ parsing


def test_stories_and_comments_become_mentions(algolia, store):
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3
    rows = {r["native_id"]: r for r in store.query("SELECT * FROM mentions")}
    comment = rows["41986050"]
    assert comment["kind"] == "comment"
    assert comment["title"] == "Ask HN: What database do you use for side projects?"
    assert comment["text"] == ("We moved our analytics from Postgres to SQLite and never looked back.\n\n"
                               "It's one file, backups are trivial. I'd recommend it to anyone with <100 writes/s.")
    assert comment["url"] == "https://news.ycombinator.com/item?id=41986050"
    assert comment["canonical_url"] is None
    assert comment["created_at"] == "2026-11-21T10:15:02+00:00"
    story = rows["41985900"]
    assert story["kind"] == "story"
    assert story["text"] == story["title"] == "SQLite WAL mode corrupted our database after a power loss"
    assert story["canonical_url"] == "https://example.org/blog/wal-postmortem"  # tracking parameters dropped
    assert json.loads(story["extra"]) == {"points": 131, "story_id": 41985900, "num_comments": 48}
    show = rows["41985000"]
    assert "<a" not in show["text"] and "https://github.com/example/sqlt" in show["text"]
    authors = {r["handle"]: r for r in store.query("SELECT * FROM authors")}
    assert set(authors) == {"tlb_fan", "dbgrump", "quietpm"}
    assert authors["tlb_fan"]["url"] == "https://news.ycombinator.com/user?id=tlb_fan"


@pytest.mark.parametrize(("html", "text"), [
    ("a<p>b", "a\n\nb"),
    ("a<P/>b<br>c", "a\n\nb\nc"),
    ("<i>it&#x27;s</i> &quot;q&quot; &amp; &lt;tag&gt; &#x2F;", "it's \"q\" & <tag> /"),
    ('see <a href="https://x.org/a?b=1&amp;c=2" rel="nofollow">https://x.org/a?b=1&amp;c=2</a>',
     "see https://x.org/a?b=1&c=2"),
    ("<pre><code>  x = 1\n</code></pre>", "x = 1"),
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),  # text the author typed
    ("fn f() -&gt; Vec&lt;String&gt; { if a &lt; b &amp;&amp; c &gt; d {} }",
     "fn f() -> Vec<String> { if a < b && c > d {} }"),
    (None, ""),
    ("", ""),
])
def test_html_to_text(html, text):
    assert html_to_text(html) == text


def test_the_request_names_query_tags_and_window(algolia, store):
    source, matcher = make_source(algolia.base_url, tags=["comment"])
    collect(store, source, matcher)
    (req,) = algolia.searches()
    assert "query=sqlite" in req and "tags=comment" in req
    assert f"created_at_i%3E{int(NOW.timestamp()) - 2 * 86_400 - OVERLAP}" in req
    assert f"hitsPerPage={HITS_PER_PAGE}" in req


def test_match_all_keeps_items_that_name_no_term(algolia, store):
    algolia.add(make_hits(1, T0 + 500, text="Nothing about the brand here {i}"))
    algolia.hits[-1]["story_title"] = "Unrelated"
    source, matcher = make_source(algolia.base_url, match_all=True)
    stats = collect(store, source, matcher)
    assert stats.new == 4 and stats.filtered == 0
    terms = {r["native_id"]: r["matched_term"] for r in store.query("SELECT native_id, matched_term FROM mentions")}
    assert terms[algolia.hits[-1]["objectID"]] == "*"
    assert sorted(set(terms.values())) == ["*", "sqlite"]


def test_terms_filter_what_the_api_returns(algolia, store):
    algolia.add(make_hits(2, T0, text="I use sqlitebrowser daily, number {i}"))  # excluded term
    algolia.add(make_hits(1, T0 + 500, text="Nothing about the brand here {i}")[:1])
    algolia.hits[-1]["objectID"] = "99"
    algolia.hits[-1]["story_title"] = "Unrelated"
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.new == 3 and stats.filtered == 3


# ------------------------------------------------------------------------------ paging


def test_newest_first_paging_then_resume_after_max_pages(algolia, store):
    algolia.hits = make_hits(250, T0)
    source, matcher = make_source(algolia.base_url)

    stats = collect(store, source, matcher, max_pages=1)
    assert stats.new == 100
    newest = sorted(h["objectID"] for h in algolia.hits[-100:])
    assert stored_ids(store) == newest  # the newest page first
    cursor = json.loads(store.get_cursor(source.key, "sqlite"))
    assert cursor["upto"] == T0 + 150 * 60 and cursor["top"] == T0 + 249 * 60  # walking the window down

    collect(store, source, matcher, max_pages=1)
    collect(store, source, matcher, max_pages=1)
    assert len(stored_ids(store)) == 250
    cursor = json.loads(store.get_cursor(source.key, "sqlite"))
    assert cursor == {"since": T0 + 249 * 60, "upto": None, "top": None}  # window closed

    algolia.add([dict(h, objectID=str(60_000_000 + i), created_at_i=T0 + 20_000 + i)
                 for i, h in enumerate(make_hits(30, 0))])
    stats = collect(store, source, matcher, max_pages=1)
    assert stats.new == 30  # only what is newer than the window, and the overlap below it again:
    assert stats.fetched == 30 + OVERLAP // 60
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 280 == len(algolia.hits)


def test_no_mention_lost_or_stored_twice_while_items_keep_arriving(algolia, store):
    algolia.hits = make_hits(120, T0)
    source, matcher = make_source(algolia.base_url)
    collect(store, source, matcher, max_pages=1)
    # new items arrive mid-walk, some in the same second as the window's newest
    algolia.add([dict(h, objectID=str(70_000_000 + i), created_at_i=T0 + 119 * 60 + i)
                 for i, h in enumerate(make_hits(150, 0))])
    for _ in range(6):
        collect(store, source, matcher, max_pages=1)
    ids = stored_ids(store)
    assert sorted(ids) == sorted(h["objectID"] for h in algolia.hits)
    assert store.query("SELECT count(*) AS n FROM mentions")[0]["n"] == len(ids) == 270


def test_many_hits_in_one_second_do_not_loop(algolia, store):
    algolia.hits = [dict(h, objectID=str(80_000_000 + i), created_at_i=T0) for i, h in enumerate(make_hits(150, 0))]
    source, matcher = make_source(algolia.base_url)
    for _ in range(3):
        before = len(algolia.searches())
        collect(store, source, matcher, max_pages=50)
        assert len(algolia.searches()) - before <= 3  # the walk moves on instead of asking for that second forever
    assert len(stored_ids(store)) >= 100


def test_unreadable_cursor_starts_from_the_lookback(algolia, store, caplog):
    source, matcher = make_source(algolia.base_url)
    store.save_batch(source.key, "sqlite", FetchResult([], "{not json"))
    stats = collect(store, source, matcher)
    assert stats.new == 3
    assert "unreadable cursor" in caplog.text


# ------------------------------------------------------------------------------ karma


def test_author_karma_is_fetched_once_and_cached(algolia, store):
    algolia.karma = {"tlb_fan": 4821, "dbgrump": 7}
    source, matcher = make_source(algolia.base_url)
    collect(store, source, matcher)
    assert sorted(r.rsplit("/", 1)[-1] for r in algolia.user_lookups()) == ["dbgrump", "quietpm", "tlb_fan"]
    reach = {r["handle"]: (r["reach"], r["reach_kind"]) for r in store.query("SELECT * FROM authors")}
    assert reach["tlb_fan"] == (4821, "karma") and reach["dbgrump"] == (7, "karma")

    # new mentions by the same authors: their karma comes from the cache
    extra = make_hits(3, T0 + 60_000)
    for h, who in zip(extra, ["tlb_fan", "dbgrump", "quietpm"], strict=True):
        h["author"] = who
    algolia.add(extra)
    before = len(algolia.user_lookups())
    stats = collect(store, source, matcher)
    assert stats.new == 3
    assert len(algolia.user_lookups()) == before


def test_karma_is_not_fetched_when_turned_off(algolia, store):
    source, matcher = make_source(algolia.base_url, fetch_karma=False)
    collect(store, source, matcher)
    assert algolia.user_lookups() == []
    assert store.query("SELECT count(*) AS n FROM authors WHERE reach IS NOT NULL")[0]["n"] == 0


def test_a_failing_karma_lookup_never_fails_the_run(algolia, store, caplog):
    algolia.missing_users = {"tlb_fan"}
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3
    assert "SQLite:hackernews: reach of tlb_fan not fetched" in caplog.text and "HTTP 404" in caplog.text
    reach = {r["handle"]: r["reach"] for r in store.query("SELECT * FROM authors")}
    assert reach == {"tlb_fan": None, "dbgrump": 100, "quietpm": 100}


# ------------------------------------------------------------------------------ faults


def test_429_honours_retry_after(algolia, store, sleeps, caplog):
    algolia.retry_after = "7"
    algolia.faults = ["429"]
    source, matcher = make_source(algolia.base_url, sleeps)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3
    assert sleeps == [7.0]
    assert "HTTP 429; retrying in 7.0s" in caplog.text


def test_429_with_a_long_retry_after_gives_up_until_the_next_run(algolia, store, sleeps, caplog):
    algolia.retry_after = "3600"
    algolia.faults = ["429"]
    source, matcher = make_source(algolia.base_url, sleeps)
    stats = collect(store, source, matcher)
    assert not stats.ok and sleeps == []
    assert "HTTP 429 after 1 attempts" in caplog.text
    assert collect(store, source, matcher).new == 3


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


FAULTS = [
    # fault injected, how many times, policy, what the log line and the run's error say
    ("500", 4, {}, "HTTP 500 after 4 attempts"),
    ("down", 4, {}, "RemoteProtocolError"),
    ("drip", 1, {"deadline": 0.3, "retries": 0}, "no complete response within 0.3s"),
    ("malformed", 1, {}, "search response has no 'hits' list"),
    ("truncated", 1, {}, "response is not valid JSON (JSONDecodeError)"),
    ("huge", 1, {}, "over the 10485760 cap"),
]


@pytest.mark.parametrize(("fault", "times", "policy", "message"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_is_logged_recorded_and_the_next_run_goes_on(algolia, store, sleeps, caplog, fault, times,
                                                                policy, message):
    algolia.faults = [fault] * times
    source, matcher = make_source(algolia.base_url, sleeps, policy=policy)
    with caplog.at_level(logging.WARNING):
        stats = collect(store, source, matcher)
    assert not stats.ok and stats.new == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and message in errors[-1].getMessage()
    assert "SQLite:hackernews" in errors[-1].getMessage()
    (run,) = runs(store)
    assert run["ok"] == 0 and message in run["error"]
    assert store.get_cursor(source.key, "sqlite") is None  # nothing half-advanced
    if times > 1:
        assert len(sleeps) == times - 1  # retried with back-off

    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3
    assert [r["ok"] for r in runs(store)] == [0, 1]


def test_retried_5xx_recovers_within_the_run(algolia, store, sleeps):
    algolia.faults = ["500", "down"]
    source, matcher = make_source(algolia.base_url, sleeps)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3 and len(sleeps) == 2


def test_unreachable_api(store, sleeps, caplog):
    source, matcher = make_source(_closed_port_url(), sleeps, policy={"retries": 1})
    stats = collect(store, source, matcher)
    assert not stats.ok
    assert "ConnectError" in caplog.text and "after 2 attempts" in caplog.text
    (run,) = runs(store)
    assert run["ok"] == 0 and "ConnectError" in run["error"]


def test_a_streamed_body_over_the_cap_is_cut(algolia, store):
    source, matcher = make_source(algolia.base_url, policy={"max_bytes": 1000})
    stats = collect(store, source, matcher)  # the fixture page is over 1000 bytes
    assert not stats.ok and "cap" in stats.errors[0]


def test_bad_hits_are_skipped_and_counted_good_hits_stored(algolia, store, caplog):
    algolia.faults = ["bad_hits"]
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3 and stats.skipped == 3
    assert caplog.text.count("skipped a malformed hit") == 3
    (run,) = runs(store)
    assert run["ok"] == 1 and run["skipped"] == 3 and run["new"] == 3
    # the hit dated far in the future did not move the cursor past everything to come
    assert json.loads(store.get_cursor(source.key, "sqlite"))["since"] == 1795256102  # the newest fixture hit
    algolia.add(make_hits(2, T0))
    assert collect(store, source, matcher).new == 2


def test_a_hit_dated_in_the_future_is_skipped(algolia, store):
    algolia.add([dict(make_hits(1, int(NOW.timestamp()) + 30 * 86_400)[0], objectID="future")])
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.new == 3 and stats.skipped == 1
    algolia.add(make_hits(2, T0 + 3600))
    assert collect(store, source, matcher).new == 2


def test_a_hit_with_an_impossible_timestamp_costs_only_itself(algolia, store):
    # (the fake serves up to 2**62; larger and negative values: tests/test_source_fuzz.py)
    algolia.add([dict(make_hits(1, T0 + 60)[0], objectID="impossible", created_at_i=2**62)])
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)  # OSError / OverflowError lost the whole page before
    assert stats.ok and stats.new == 3 and stats.skipped == 1
    assert json.loads(store.get_cursor(source.key, "sqlite"))["since"] == 1795256102  # the newest fixture hit


def test_karma_beyond_what_sqlite_holds_is_left_unknown(algolia, store, caplog):
    algolia.karma = {"tlb_fan": 10**20, "dbgrump": 2**63, "quietpm": 12}
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)  # OverflowError from the store, outside any handler, before
    assert stats.ok and stats.new == 3
    reach = {r["handle"]: r["reach"] for r in store.query("SELECT * FROM authors")}
    assert reach == {"tlb_fan": None, "dbgrump": None, "quietpm": 12}
    assert "reach of tlb_fan out of range" in caplog.text
    assert runs(store)[-1]["ok"] == 1


def test_an_empty_hit_still_counts_for_the_window(algolia, store):
    algolia.hits = [dict(h, comment_text="", story_title=None) for h in make_hits(3, T0)]
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 0 and stats.skipped == 0
    assert json.loads(store.get_cursor(source.key, "sqlite"))["since"] == T0 + 120


def test_lone_surrogates_and_control_characters_are_stored_safely(algolia, store):
    algolia.faults = ["weird_text"]
    source, matcher = make_source(algolia.base_url)
    stats = collect(store, source, matcher)
    assert stats.ok and stats.new == 3
    comment = store.query("SELECT text FROM mentions WHERE native_id = '41986050'")[0]["text"]
    assert comment == "SQLite \ufffd lone surrogate  control"  # a raw <script> block is dropped whole
    comment.encode("utf-8")  # would raise on a lone surrogate
    if not store.postgres:  # PostgreSQL refuses what is not UTF-8 at the door
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
