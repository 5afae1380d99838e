"""The contract every source passes, HN included: real-shaped recorded fixtures served
from a local server on 127.0.0.1, through the real HTTP client (SSRF guard on, with
127.0.0.1 allowed by config), the real config loader, pipeline.collect and a real
SQLite store. Then the same with bad input: truncated JSON, wrong types, missing
fields, HTML and script in text, a 50 MB body, an expired token, hostile XML. Each
is logged, counted in the source's health, skipped, and never loses the good
mentions of its page."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import yaml

from monitor import pipeline
from monitor.collect import build_source
from monitor.config import load_settings
from monitor.health import assess, health_check_for
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.store import Store
from tests.fakes.googleplay import rewrap, unwrap
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, big_body, fixture_bytes

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>Acme <b>rocks</b> &amp; rolls'
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&lol3;</title><item><title>Acme &lol3; &xxe;</title>
<link>https://example.com/a</link><description>acme</description></item></channel></rss>"""
ENV = {"REDDIT_ID": "reddit-client-id", "REDDIT_SECRET": "reddit-client-secret", "BSKY_PW": "abcd-efgh-ijkl-mnop",
       "MASTO_TOKEN": "masto-token-123", "GH_TOKEN": "ghp-test-token-123"}
ENV.update(DISCOURSE_KEY="discourse-key-123", DISCOURSE_USER="monitor_bot")


def json_reply(name: str) -> Reply:
    return Reply(body=fixture_bytes(name))


def xml_reply(name: str) -> Reply:
    return Reply(body=fixture_bytes(name), content_type="application/atom+xml; charset=utf-8")


@dataclass
class Case:
    settings: dict
    routes: dict[str, Reply]
    main: str  # the listing route that the bad-input variants replace
    expected: int  # mentions the good fixture yields
    items: Callable | None = None  # JSON: the list of items in the parsed main body
    text_at: tuple = ()  # JSON: path to the text field inside an item
    wrong_types: Callable | None = None  # JSON: item -> the same item with wrong types
    drop_field: tuple = ()  # JSON: path of a required field
    xml_needle: str = ""  # XML: text in the fixture replaced by the payload
    extra_routes: dict = field(default_factory=dict)
    decode: Callable[[bytes], object] = json.loads  # the main body -> what items() reads (not plain JSON: Google Play)
    encode: Callable[[bytes, object], bytes] = lambda body, data: json.dumps(data).encode()  # and back


def _search(d):
    return d["data"]["children"]


CASES: dict[str, Case] = {
    "hackernews": Case(
        {"type": "hackernews", "base_url": "{url}/api/v1"},
        {"/api/v1/search_by_date": json_reply("hackernews/search_acme.json"),
         "/api/v1/users/*": json_reply("hackernews/user_acme.json")},
        "/api/v1/search_by_date", 3, items=lambda d: d["hits"], text_at=("comment_text",),
        wrong_types=lambda it: {**it, "objectID": {"id": [1]}, "created_at_i": "yesterday"},
        drop_field=("created_at_i",)),
    "reddit": Case(
        {"type": "reddit", "base_url": "{url}", "client_id": "${REDDIT_ID}", "client_secret": "${REDDIT_SECRET}",
         "user_agent": "test:monitor:0.1 (by u/monitor)"},
        {"/api/v1/access_token": json_reply("reddit/access_token.json"),
         "/r/all/search": json_reply("reddit/search.json"),
         "/user/*": json_reply("reddit/user_about.json")},
        "/r/all/search", 3, items=_search, text_at=("data", "selftext"),
        wrong_types=lambda it: {**it, "data": {**it["data"], "created_utc": "yesterday", "name": ["t3_x"]}},
        drop_field=("data", "permalink")),
    "feed-google_alerts": Case(
        {"type": "feed", "preset": "google_alerts", "urls": ["{url}/alerts/feeds/0123/9876"]},
        {"/alerts/feeds/0123/9876": xml_reply("feeds/google_alerts.xml")},
        "/alerts/feeds/0123/9876", 3, xml_needle="raises $40M Series B to expand build caching"),
    "feed-google_news": Case(
        {"type": "feed", "preset": "google_news", "base_url": "{url}"},
        {"/rss/search": xml_reply("feeds/google_news.xml")},
        "/rss/search", 2, xml_needle="outage hits CI pipelines across Europe - The Register"),
    "feed-reddit_search": Case(
        {"type": "feed", "preset": "reddit_search", "base_url": "{url}"},
        {"/search.rss": xml_reply("feeds/reddit_search.xml")},
        "/search.rss", 2, xml_needle="Switched from Acme to a self-hosted cache"),
    "feed-generic": Case(
        {"type": "feed", "urls": ["{url}/feed/"]},
        {"/feed": xml_reply("feeds/blog_rss.xml")},
        "/feed", 2, xml_needle="A year without Acme"),
    "appstore": Case(
        {"type": "appstore", "base_url": "{url}", "app_ids": [1234567890], "countries": ["us"]},
        {"/us/rss/customerreviews/*": json_reply("appstore/reviews.json")},
        "/us/rss/customerreviews/*", 3, items=lambda d: d["feed"]["entry"], text_at=("content", "label"),
        wrong_types=lambda it: {**it, "im:rating": {"label": ["5"]}, "id": {"label": 7}},
        drop_field=("id",)),
    "bluesky": Case(
        {"type": "bluesky", "base_url": "{url}", "handle": "monitor.bsky.social", "app_password": "${BSKY_PW}"},
        {"/xrpc/com.atproto.server.createSession": json_reply("bluesky/create_session.json"),
         "/xrpc/app.bsky.feed.searchPosts": json_reply("bluesky/search_posts.json"),
         "/xrpc/app.bsky.actor.getProfile": json_reply("bluesky/get_profile.json")},
        "/xrpc/app.bsky.feed.searchPosts", 3, items=lambda d: d["posts"], text_at=("record", "text"),
        wrong_types=lambda it: {**it, "record": {**it["record"], "text": 42}, "author": "jane"},
        drop_field=("uri",)),
    "mastodon": Case(
        {"type": "mastodon", "instance": "{url}", "hashtags": ["acme"]},
        {"/api/v1/timelines/tag/acme": json_reply("mastodon/tag_timeline.json")},
        "/api/v1/timelines/tag/acme", 3, items=lambda d: d, text_at=("content",),
        wrong_types=lambda it: {**it, "account": "lena", "id": {"n": 1}},
        drop_field=("created_at",)),
    "mastodon-search": Case(
        {"type": "mastodon", "instance": "{url}", "hashtags": ["acme"], "search": True, "token": "${MASTO_TOKEN}"},
        {"/api/v1/timelines/tag/acme": Reply(body=b"[]"), "/api/v2/search": json_reply("mastodon/search.json")},
        "/api/v2/search", 2, items=lambda d: d["statuses"], text_at=("content",),
        wrong_types=lambda it: {**it, "created_at": 12, "content": ["x"]},
        drop_field=("account",)),
    "stackexchange": Case(
        {"type": "stackexchange", "base_url": "{url}/2.3", "site": "stackoverflow"},
        {"/2.3/search/excerpts": json_reply("stackexchange/search_excerpts.json")},
        "/2.3/search/excerpts", 3, items=lambda d: d["items"], text_at=("body",),
        wrong_types=lambda it: {**it, "question_id": {"id": [1]}, "creation_date": "yesterday"},
        drop_field=("creation_date",)),
    "github": Case(
        {"type": "github", "base_url": "{url}", "token": "${GH_TOKEN}"},
        {"/search/issues": json_reply("github/search_issues.json"), "/users/*": json_reply("github/user.json")},
        "/search/issues", 3, items=lambda d: d["items"], text_at=("body",),
        wrong_types=lambda it: {**it, "id": "not-a-number", "created_at": ["2026"], "user": "mona"},
        drop_field=("created_at",)),
    "github_discussions": Case(  # GraphQL; the issue search answers an empty page
        {"type": "github", "base_url": "{url}", "token": "${GH_TOKEN}", "discussions": True},
        {"/graphql": json_reply("github/search_discussions.json"),
         "/search/issues": Reply(body=b'{"total_count": 0, "incomplete_results": false, "items": []}'),
         "/users/*": json_reply("github/user.json")},
        "/graphql", 3, items=lambda d: d["data"]["search"]["nodes"], text_at=("bodyText",),
        wrong_types=lambda it: {**it, "id": ["D_1"], "createdAt": ["2026"], "author": "mona"},
        drop_field=("createdAt",)),
    "lemmy": Case(
        {"type": "lemmy", "instance": "{url}"},
        {"/api/v3/search": json_reply("lemmy/search.json")},
        "/api/v3/search", 4, items=lambda d: d["posts"], text_at=("post", "body"),
        wrong_types=lambda it: {**it, "post": ["not", "an", "object"], "counts": "many"},
        drop_field=("post",)),
    "discourse-search": Case(
        {"type": "discourse", "forum": "{url}", "full_text": False},
        {"/search.json": json_reply("discourse/search.json")},
        "/search.json", 3, items=lambda d: d["posts"], text_at=("blurb",),
        wrong_types=lambda it: {**it, "id": {"id": [1]}, "created_at": ["2026"]},
        drop_field=("id",)),
    "discourse-latest": Case(
        {"type": "discourse", "forum": "{url}", "mode": "latest", "api_key": "${DISCOURSE_KEY}",
         "api_username": "${DISCOURSE_USER}"},
        {"/posts.json": json_reply("discourse/latest_posts.json")},
        "/posts.json", 3, items=lambda d: d["latest_posts"], text_at=("cooked",),
        wrong_types=lambda it: {**it, "id": "forty-two", "cooked": ["<p>x</p>"]},
        drop_field=("id",)),
    "googleplay": Case(
        {"type": "googleplay", "base_url": "{url}", "app_ids": ["com.acme.notes"], "languages": ["en"],
         "countries": ["us"]},
        {"/_/PlayStoreUi/data/batchexecute": json_reply("googleplay/reviews_newest.txt")},
        "/_/PlayStoreUi/data/batchexecute", 3, items=lambda d: d[0], text_at=(4,),
        wrong_types=lambda it: [{"id": it[0]}, "Jane", "5", *it[3:]], drop_field=(0,),
        decode=unwrap, encode=rewrap),
}
# YouTube: a search finds two videos (one request), each video's comment threads are a page (the
# same fixture for both: four of its five comments and replies name Acme); reach is batched.
CASES["youtube"] = Case(
    {"type": "youtube", "base_url": "{url}/youtube/v3", "key": "${YT_KEY}"},
    {"/youtube/v3/search": json_reply("youtube/search.json"),
     "/youtube/v3/commentThreads": json_reply("youtube/comment_threads.json"),
     "/youtube/v3/channels": json_reply("youtube/channels_statistics.json")},
    "/youtube/v3/commentThreads", 4, items=lambda d: d["items"],
    text_at=("snippet", "topLevelComment", "snippet", "textOriginal"),
    wrong_types=lambda it: {**it, "id": {"x": [1]}, "snippet": "a thread"}, drop_field=("snippet",))
ENV.update(YT_KEY="AIzaSy-contract-youtube-key-123")


def _fill(value, url):
    if isinstance(value, str):
        return value.replace("{url}", url)
    if isinstance(value, list):
        return [_fill(v, url) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, url) for k, v in value.items()}
    return value


class Harness:
    def __init__(self, case: Case, server: FixtureServer, tmp_path) -> None:
        self.case, self.server = case, server
        for path, reply in {**case.routes, **case.extra_routes}.items():
            server.routes[path] = reply
        cfg = {"database": str(tmp_path / "monitor.db"),
               "brands": [{"name": "Acme", "terms": {"include": ["acme"]},
                           "sources": [_fill(case.settings, server.url)]}],
               "alerts": {"channels": {"console": {"type": "console"}}},
               "http": {"allow_networks": ["127.0.0.1/32"]}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        self.settings = load_settings(path, env=ENV)
        brand = self.settings.brands[0]
        self.source_settings = brand.sources[0]
        policy = HttpPolicy(allow_networks=tuple(self.settings.http.allow_networks), resolve=FakeResolver(),
                            retries=0, sleep=lambda s: None)
        self.source = build_source(brand, self.source_settings, http_factory=HttpFactory(policy), now=lambda: NOW)
        self.matcher = Matcher(brand.terms)
        self.store = Store(self.settings.database_path, now=lambda: NOW)

    def collect(self):
        return pipeline.collect(self.store, self.source, self.matcher, max_pages=3,
                                health=health_check_for(self.settings, self.source))

    def stored(self) -> list[dict]:
        return self.store.query("SELECT * FROM mentions ORDER BY id")

    def health(self):
        return assess(self.store, self.source.key, self.settings.health)

    # ---- bad-input bodies
    def main_json(self):
        return self.case.decode(self._main_reply().body)

    def encode(self, data) -> bytes:
        return self.case.encode(self._main_reply().body, data)

    def _main_reply(self) -> Reply:
        return self.case.routes[self.case.main]

    def replace_main(self, reply: Reply) -> None:
        self.server.routes[self.case.main] = reply

    def replace_main_body(self, body: bytes) -> None:
        old = self._main_reply()
        self.replace_main(Reply(body=body, content_type=old.content_type))


@pytest.fixture(params=sorted(CASES))
def harness(request, tmp_path):
    with FixtureServer() as server:
        yield Harness(CASES[request.param], server, tmp_path)


def _set(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _del(obj, path):
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]


# ------------------------------------------------------------------------------ good input


def test_good_fixture_yields_sane_mentions(harness):
    stats = harness.collect()
    assert stats.ok, stats.errors
    assert stats.skipped == 0
    rows = harness.stored()
    assert len(rows) == harness.case.expected == stats.new
    assert len({(r["source"], r["native_id"]) for r in rows}) == len(rows)
    for r in rows:
        assert r["brand"] == "Acme" and r["native_id"] and r["text"].strip()
        assert datetime.fromisoformat(r["created_at"]).tzinfo is not None
        assert "<" not in r["text"] and "&amp;" not in r["text"]
        assert r["matched_term"]
        assert r["url"] is None or r["url"].startswith(("https://", "http://"))
        if r["canonical_url"]:
            assert r["canonical_url"].startswith("https://") and "utm_" not in r["canonical_url"]
    health = harness.health()
    assert health.state == "ok" and health.fetched >= harness.case.expected and health.last_success


def test_second_run_stores_nothing_twice(harness):
    harness.collect()
    again = harness.collect()
    assert again.ok, again.errors
    assert again.new == 0
    assert len(harness.stored()) == harness.case.expected


def test_cursor_is_saved_per_query(harness):
    harness.collect()
    for q in harness.source.queries():
        assert harness.store.get_cursor(harness.source.key, q) is not None


# ------------------------------------------------------------------------------ bad input


def _assert_failed_run(harness, stats, *, auth=False):
    assert not stats.ok
    assert stats.auth_failed is auth
    runs = harness.store.recent_runs(harness.source.key)
    assert runs[0]["ok"] == 0 and runs[0]["error"]
    assert harness.health().consecutive_failures == 1


def test_truncated_body(harness):
    body = harness._main_reply().body
    harness.replace_main_body(body[: len(body) // 2])
    stats = harness.collect()  # must not raise
    if harness.case.items is not None:  # JSON: the page is unreadable
        _assert_failed_run(harness, stats)
        assert harness.stored() == []
    else:  # XML: the lenient parser may keep the entries before the cut; the damage is counted
        assert stats.errors or stats.skipped >= 1
        assert harness.store.recent_runs(harness.source.key)[0]["skipped"] + len(stats.errors) >= 1


def _add_bad_item(harness, make_bad) -> None:
    if harness.case.items is None:
        return
    data = harness.main_json()
    items = harness.case.items(data)
    items.insert(1, make_bad(copy.deepcopy(items[0])))
    harness.replace_main_body(harness.encode(data))


XML_WRONG_TYPES = {
    "rss": "<item><title></title><link>javascript:alert(1)</link><description>   </description>"
           "<pubDate>not a date</pubDate></item>",
    "atom": '<entry><title type="html"></title><link href="javascript:alert(1)"/><updated>soon</updated>'
            "<content type=\"html\"> </content></entry>",
}


def _add_bad_xml_entry(harness) -> None:
    body = harness._main_reply().body.decode()
    if "<item>" in body:
        body = body.replace("<item>", XML_WRONG_TYPES["rss"] + "<item>", 1)
    else:
        body = body.replace("<entry>", XML_WRONG_TYPES["atom"] + "<entry>", 1)
    harness.replace_main_body(body.encode())


def test_wrong_types_skip_the_item_keep_the_page(harness):
    if harness.case.items is None:
        _add_bad_xml_entry(harness)
    else:
        _add_bad_item(harness, harness.case.wrong_types)
    stats = harness.collect()
    assert stats.ok, stats.errors
    assert stats.skipped >= 1
    assert len(harness.stored()) == harness.case.expected
    assert harness.store.recent_runs(harness.source.key)[0]["skipped"] >= 1


def test_missing_fields_skip_the_item_keep_the_page(harness):
    if harness.case.items is None:
        body = harness._main_reply().body.decode()
        empty = "<item></item>" if "<item>" in body else "<entry></entry>"
        harness.replace_main_body(body.replace("<item>" if "<item>" in body else "<entry>", empty + (
            "<item>" if "<item>" in body else "<entry>"), 1).encode())
    else:
        def drop(item):
            _del(item, harness.case.drop_field)
            return item
        _add_bad_item(harness, drop)
    stats = harness.collect()
    assert stats.ok, stats.errors
    assert stats.skipped >= 1
    assert len(harness.stored()) == harness.case.expected


def test_html_and_script_in_text_are_made_plain(harness):
    if harness.case.items is None:
        body = harness._main_reply().body.decode()
        assert harness.case.xml_needle in body
        escaped = PAYLOAD.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        harness.replace_main_body(body.replace(harness.case.xml_needle, escaped, 1).encode())
    else:
        data = harness.main_json()
        _set(harness.case.items(data)[0], harness.case.text_at, PAYLOAD)
        harness.replace_main_body(harness.encode(data))
    stats = harness.collect()
    assert stats.ok, stats.errors
    rows = harness.stored()
    assert len(rows) == harness.case.expected
    hit = [r for r in rows if "rocks" in (r["text"] or "") + (r["title"] or "")]
    assert hit, "the payload's text must survive as text"
    for r in rows:
        for col in ("text", "title"):
            value = r[col] or ""
            assert "<script" not in value.lower() and "onerror" not in value and "<img" not in value
            assert 'alert("x")' not in value
    assert any("Acme rocks & rolls" in (r["text"] or "") + (r["title"] or "") for r in hit)


def test_fifty_megabyte_body_is_cut_off(harness):
    harness.replace_main(Reply(body=big_body()))
    stats = harness.collect()
    _assert_failed_run(harness, stats)
    assert "cap" in stats.errors[0]
    assert harness.stored() == []


def _expired(harness) -> None:
    if harness.case.settings["type"] == "bluesky":
        harness.replace_main(Reply(400, json.dumps({"error": "ExpiredToken", "message": "Token has expired"}).encode()))
        harness.server.routes["/xrpc/com.atproto.server.refreshSession"] = Reply(
            400, b'{"error": "ExpiredToken", "message": "Token has expired"}')
    elif harness.case.settings["type"] == "stackexchange":  # an expired or revoked app key
        harness.replace_main(Reply(400, fixture_bytes("stackexchange/error_bad_key.json")))
    elif harness.case.settings["type"] == "youtube":  # Google's answer to an expired API key
        harness.replace_main(Reply(400, fixture_bytes("youtube/error_key_expired.json")))
    elif harness.case.settings["type"] == "reddit":
        harness.server.routes["/api/v1/access_token"] = Reply(401, b'{"message": "Unauthorized", "error": 401}')
    else:
        harness.replace_main(Reply(401, b'{"error": "The access token expired"}',
                                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}))


def test_expired_token_is_an_auth_failure_with_an_alert(harness):
    _expired(harness)
    stats = harness.collect()
    _assert_failed_run(harness, stats, auth=True)
    health = harness.health()
    assert health.state == "auth" and health.broken
    alerts = harness.store.query("SELECT * FROM alerts WHERE rule = 'source-health'")
    assert len(alerts) == 1 and harness.source.key in alerts[0]["title"]
    deliveries = harness.store.query("SELECT channel FROM deliveries")
    assert [d["channel"] for d in deliveries] == ["console"]
    for secret in ENV.values():
        assert secret not in json.dumps(alerts) and secret not in "; ".join(stats.errors)
    harness.collect()  # still broken: no second alert for the same episode
    assert len(harness.store.query("SELECT * FROM alerts WHERE rule = 'source-health'")) == 1


def test_hostile_xml_is_refused(harness):
    harness.replace_main(Reply(body=BILLION_LAUGHS, content_type="application/rss+xml"))
    stats = harness.collect()
    _assert_failed_run(harness, stats)
    assert harness.stored() == []
    assert "lollollol" not in json.dumps(harness.store.query("SELECT * FROM source_runs"))
