"""Legitimate pages that are no changed API, and cursors that move past what a page held.

* The App Store's ``api_changed`` false alarms: reviews whose optional ``im:version`` /
  ``title`` wrapper is empty, reviews without text, and a page of known reviews with a few
  odd ones were taken for a changed feed (every review of the page "failed validation").
* A page whose items were all passed over (already stored, filtered out by the terms,
  image-only posts) still moves its cursor, so it is not fetched and counted again every run;
  an all-invalid page is still an API change.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from monitor import pipeline
from monitor.config import HealthSettings, Terms
from monitor.health import HealthCheck, assess
from monitor.matching import Matcher
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store
from tests.fakes.sources import FixtureServer, Reply, fixture_json
from tests.test_source_contract import CASES, Harness

APPSTORE = "/us/rss/customerreviews/*"
QUERY = "1234567890:us"


def _reviews(mutate=None, ids=None) -> dict:
    data = fixture_json("appstore/reviews.json")
    for n, e in enumerate(data["feed"]["entry"]):
        if ids is not None:
            e["id"] = {"label": str(ids[n])}
        if mutate is not None:
            mutate(e)
    return data


def _serve(server, data) -> None:
    server.routes[APPSTORE] = Reply(body=json.dumps(data).encode())


def test_appstore_empty_optional_wrappers_are_absent_values_not_a_changed_feed(tmp_path):
    def odd(e):
        e["im:version"] = {}  # a wrapper without its label
        e["title"] = {"label": None}
        e["author"] = {"name": {"label": ""}, "label": ""}

    with FixtureServer() as server:
        h = Harness(CASES["appstore"], server, tmp_path)
        _serve(server, _reviews(odd))
        stats = h.collect()
    assert stats.ok and stats.api_changed is None and stats.skipped == 0 and stats.new == 3
    rows = h.store.query("SELECT title, text, extra FROM mentions ORDER BY id")
    assert all(r["title"] is None and r["text"] for r in rows)
    assert all(json.loads(r["extra"]).get("version") is None for r in rows)
    assert h.health().state == "ok"


def test_appstore_empty_feed_is_ok(tmp_path):
    meta = {k: v for k, v in fixture_json("appstore/reviews.json")["feed"].items() if k != "entry"}
    with FixtureServer() as server:
        h = Harness(CASES["appstore"], server, tmp_path)
        _serve(server, {"feed": meta})
        stats = h.collect()
    assert stats.ok and stats.fetched == 0 and stats.skipped == 0 and h.health().state == "ok"


def test_appstore_known_reviews_with_a_few_odd_ones_are_no_api_change(tmp_path):
    with FixtureServer() as server:
        h = Harness(CASES["appstore"], server, tmp_path)
        _serve(server, _reviews())
        assert h.collect().new == 3
        known = fixture_json("appstore/reviews.json")["feed"]["entry"]
        odd = copy.deepcopy(known)
        for n, e in enumerate(odd):  # three newer reviews, each without a star rating
            e["id"] = {"label": str(11093456790 + n)}
            del e["im:rating"]
        data = fixture_json("appstore/reviews.json")
        data["feed"]["entry"] = odd + known
        _serve(server, data)
        stats = h.collect()
    # before: 0 parsed + 3 skipped on the page read as "every item failed validation"
    assert stats.ok and stats.api_changed is None and stats.skipped == 3
    assert stats.fetched == 3  # the known reviews: read, unchanged, so the app is not silent either
    assert h.health().state == "ok"


def test_appstore_reviews_without_text_are_passed_over_and_the_cursor_moves_past_them(tmp_path):
    def no_text(e):
        del e["title"]
        e["content"] = {"label": "", "attributes": {"type": "text"}}

    ids = [11093456799, 11093456798, 11093456797]
    with FixtureServer() as server:
        h = Harness(CASES["appstore"], server, tmp_path)
        _serve(server, _reviews(no_text, ids))
        stats = h.collect()
        assert stats.ok and stats.api_changed is None and stats.skipped == 0 and stats.new == 0
        assert json.loads(h.store.get_cursor(h.source.key, QUERY)) == {"last_id": ids[0]}
        again = h.collect()  # the same page: known now, no longer walked as new
    assert again.ok and again.fetched == 3 and again.skipped == 0 and h.health().state == "ok"


def test_appstore_all_invalid_page_is_still_an_api_change(tmp_path):
    def renamed(e):
        e["im:rating"] = {"value": e["im:rating"]["label"]}

    with FixtureServer() as server:
        h = Harness(CASES["appstore"], server, tmp_path)
        _serve(server, _reviews(renamed))
        stats = h.collect()
    assert not stats.ok and stats.api_changed and stats.skipped == 3
    assert h.health().state == "api_changed"


# ---------------------------------------------------------------- Bluesky: image-only posts

def test_bluesky_posts_without_text_move_the_window(tmp_path):
    data = fixture_json("bluesky/search_posts.json")
    for p in data["posts"]:
        p["record"]["text"] = ""  # images whose alt text matched the search
    data.pop("cursor", None)
    with FixtureServer() as server:
        h = Harness(CASES["bluesky"], server, tmp_path)
        server.routes["/xrpc/app.bsky.feed.searchPosts"] = Reply(body=json.dumps(data).encode())
        stats = h.collect()
    assert stats.ok and stats.api_changed is None and stats.skipped == 0 and stats.new == 0
    newest = max(datetime.fromisoformat(p["indexedAt"].replace("Z", "+00:00")) for p in data["posts"])
    cursor = json.loads(h.store.get_cursor(h.source.key, "acme"))
    assert datetime.fromisoformat(cursor["since"]) == newest and cursor["page"] is None


# ---------------------------------------------------------------- the pipeline: every page moves its cursor

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class PagedSource:
    """Pages of (mention ids, texts): the cursor is the page number; each page's cursor is
    what the source hands back, whatever the store and the matcher make of its items."""

    type = "paged"
    key = "Acme:paged"
    brand = "Acme"

    def __init__(self, pages: list[list[tuple[str, str]]]) -> None:
        self.pages = pages
        self.asked: list[str | None] = []

    def queries(self) -> list[str]:
        return ["acme"]

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        self.asked.append(cursor)
        n = int(cursor or 0)
        items = [Mention(source="paged", native_id=i, brand="Acme", text=t, created_at=T0 - timedelta(minutes=n),
                         author=Author(source="paged", handle="u")) for i, t in self.pages[n]]
        return FetchResult(items, str(n + 1), done=n + 1 >= len(self.pages))


def _collect(store: Store, source: PagedSource) -> pipeline.RunStats:
    check = HealthCheck(HealthSettings(), channels=["console"], brand="Acme")
    return pipeline.collect(store, source, Matcher(Terms(include=["acme"])), max_pages=1, health=check)


def test_a_page_of_only_duplicates_or_filtered_items_still_moves_the_cursor(tmp_path):
    store = Store(tmp_path / "m.db", now=lambda: T0)
    page = [("1", "acme one"), ("2", "acme two"), ("3", "acme three")]
    source = PagedSource([page, page, [("4", "nothing about it"), ("5", "nor this"), ("6", "nor that")],
                          [("7", "acme seven")]])
    assert _collect(store, source).new == 3
    dup = _collect(store, source)  # every item already stored
    assert dup.ok and dup.new == 0 and dup.fetched == 3 and dup.api_changed is None
    assert store.get_cursor(source.key, "acme") == "2"
    filtered = _collect(store, source)  # every item filtered out by the brand's terms
    assert filtered.ok and filtered.new == 0 and filtered.filtered == 3
    assert store.get_cursor(source.key, "acme") == "3"
    assert _collect(store, source).new == 1
    assert source.asked == [None, "1", "2", "3"]  # no page was fetched twice
    assert assess(store, source.key, HealthSettings()).state == "ok"
