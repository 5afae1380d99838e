"""Property tests: every JSON source fed real fixture items with random fields replaced by
random JSON (strings with lone surrogates and control characters, huge ints, deep
nesting, nulls, wrong types). Nothing but SourceError may escape ``fetch``; what comes
out is storable; every item is either a mention or counted as skipped.

Then the targets that found faults: out-of-range values (reach and karma past 2**63,
timestamps past the clock, lone surrogates in any field) through the whole collect stage,
feed bytes in unknown or violated encodings, and adversarial HTML and feed markup whose
cleaning must stay linear (counted, not timed)."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from monitor import pipeline
from monitor.collect import _common, feeds, hackernews
from monitor.collect.appstore import AppStoreReviewsSource
from monitor.collect.bluesky import BlueskySource
from monitor.collect.discourse import DiscourseSource
from monitor.collect.feeds import FeedSource
from monitor.collect.github import GitHubSource
from monitor.collect.googleplay import GooglePlayReviewsSource
from monitor.collect.hackernews import HackerNewsSource, html_to_text
from monitor.collect.lemmy import LemmySource
from monitor.collect.mastodon import MastodonSource
from monitor.collect.reddit import RedditSource, markdown_text
from monitor.collect.stackexchange import StackExchangeSource
from monitor.collect.stackexchange import html_to_text as se_html_to_text
from monitor.collect.youtube import YouTubeSource
from monitor.config import (
    AppStoreSettings,
    BlueskySettings,
    DiscourseSettings,
    FeedSettings,
    GitHubSettings,
    GooglePlaySettings,
    HackerNewsSettings,
    LemmySettings,
    MastodonSettings,
    StackExchangeSettings,
    Terms,
    YouTubeSettings,
)
from monitor.errors import SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.records import FetchResult
from monitor.store import Store
from tests.fakes.googleplay import rewrap, unwrap, wrap
from tests.fakes.sources import fixture_bytes, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
YT_VIDEO = "kJ3xVnT8pQa"
BRAND = SimpleNamespace(name="Acme", terms=Terms(include=["acme"]))

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=50),
                    st.sampled_from(["\ud800", "a\x00b", "\u202eevil", "<script>x</script>", "9" * 5000, ""]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=10)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


def mutate(item, draw):
    item = copy.deepcopy(item)
    paths = list(_paths(item))
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4, unique=True)):
        target = item
        try:
            for key in path[:-1]:
                target = target[key]
            if draw(st.booleans()):
                target[path[-1]] = draw(values)
            else:
                del target[path[-1]]
        except (KeyError, TypeError):
            continue
    return item


def _json_source(cls, settings_obj, body, extra=None):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("createSession"):
            return httpx.Response(200, json={"accessJwt": "a", "refreshJwt": "r"})
        return httpx.Response(200, content=body)

    factory = HttpFactory(HttpPolicy(retries=0, sleep=lambda s: None), transport=httpx.MockTransport(handler))
    return cls(brand=BRAND, settings=settings_obj, http_factory=factory, now=lambda: NOW)


def _reddit(body):
    source = RedditSource.__new__(RedditSource)
    source.brand, source.key, source.now = "Acme", "Acme:reddit", (lambda: NOW)
    source.terms = BRAND.terms
    source.settings = SimpleNamespace(subreddits=[], time_filter="week", fetch_karma=False)
    source._get = lambda path, params: json.loads(body)  # the listing as PRAW's request() returns it
    return source


def _lemmy(body: bytes) -> LemmySource:
    return _json_source(LemmySource, LemmySettings(type="lemmy", instance="https://lemmy.example"), body)


def _alone(page: dict, fuzzed: str, other: str) -> list:
    """The fuzzed list of a Lemmy page with the other list emptied (its items would count as extra)."""
    page[other] = []
    return page[fuzzed]


def _posts_only(page: dict) -> list:
    """The posts of /posts.json without its small action ("closed the topic"), which is no mention."""
    page["latest_posts"] = [p for p in page["latest_posts"] if p.get("post_type") != 3]
    return page["latest_posts"]


SOURCES = {
    "hackernews": (lambda b: _json_source(HackerNewsSource, HackerNewsSettings(type="hackernews"), b),
                   "hackernews/search_acme.json", lambda d: d["hits"], "acme"),
    "appstore": (lambda b: _json_source(AppStoreReviewsSource, AppStoreSettings(type="appstore", app_ids=[1]), b),
                 "appstore/reviews.json", lambda d: d["feed"]["entry"], "1:us"),
    "bluesky": (lambda b: _json_source(BlueskySource, BlueskySettings.model_construct(
        type="bluesky", handle="h", app_password=SimpleNamespace(get_secret_value=lambda: "pw"), base_url=None,
        name=None, terms=None, match_all=False, fetch_followers=False), b),
        "bluesky/search_posts.json", lambda d: d["posts"], "acme"),
    "mastodon": (lambda b: _json_source(MastodonSource, MastodonSettings(type="mastodon", hashtags=["acme"]), b),
                 "mastodon/tag_timeline.json", lambda d: d, "tag:acme"),
    "reddit": (_reddit, "reddit/search.json", lambda d: d["data"]["children"], "search:acme"),
    "stackexchange": (lambda b: _json_source(StackExchangeSource, StackExchangeSettings(type="stackexchange"), b),
                      "stackexchange/search_excerpts.json", lambda d: d["items"], "acme"),
    "github": (lambda b: _json_source(GitHubSource, GitHubSettings(type="github", fetch_followers=False), b),
               "github/search_issues.json", lambda d: d["items"], "acme"),
    "lemmy": (_lemmy, "lemmy/search.json", lambda d: _alone(d, "posts", "comments"), "acme"),
    "lemmy-comments": (_lemmy, "lemmy/search.json", lambda d: _alone(d, "comments", "posts"), "acme"),
    "discourse-search": (lambda b: _json_source(DiscourseSource, DiscourseSettings(
        type="discourse", forum="https://forum.example.org", full_text=False), b),
        "discourse/search.json", lambda d: d["posts"], "acme"),
    "discourse-latest": (lambda b: _json_source(DiscourseSource, DiscourseSettings(
        type="discourse", forum="https://forum.example.org", mode="latest"), b),
        "discourse/latest_posts.json", _posts_only, "latest"),
}
SOURCES["youtube"] = (  # one followed video: the fetch is its page of comment threads
    lambda b: _json_source(YouTubeSource, YouTubeSettings(type="youtube", key=SecretStr("yt-key"), videos=[YT_VIDEO],
                                                          search=False, fetch_subscribers=False), b),
    "youtube/comment_threads_page2.json", lambda d: d["items"], f"video:{YT_VIDEO}")
SOURCES["github-discussions"] = (  # the GraphQL search of discussions (a token, or no such query)
    lambda b: _json_source(GitHubSource, GitHubSettings(type="github", token=SecretStr("ghp-tok"), discussions=True,
                                                        fetch_followers=False), b),
    "github/search_discussions.json", lambda d: d["data"]["search"]["nodes"], "discussions:acme")


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_random_item_damage_is_contained(name, data, tmp_path_factory):
    make, fixture, items_of, query = SOURCES[name]
    page = fixture_json(fixture)
    items = items_of(page)
    good = len(items)
    items.append(mutate(items[0], data.draw))
    items.insert(0, mutate(items[-2], data.draw))
    body = json.dumps(page).encode()
    source = make(body)
    try:
        result = source.fetch(query, None)
    except SourceError:
        return
    assert isinstance(result, FetchResult)
    assert len(result.mentions) + result.skipped <= good + 2
    assert len(result.mentions) >= good - 2  # the undamaged items always come through
    store = Store(tmp_path_factory.mktemp("fuzz") / "m.db", now=lambda: NOW)
    store.save_batch(source.key, query, result)  # storable: no surrogate or type slips through
    for m in result.mentions:
        assert isinstance(m.text, str) and m.created_at.tzinfo is not None
        assert m.rating is None or 1 <= m.rating <= 5
    store.close()


# ------------------------------------------------------------------------------ out-of-range values
# The values an attack run found wedging a source: a reach, karma or timestamp beyond what SQLite
# or the platform's clock can hold, lone surrogates in the language or any other string. Put into
# any field of one item, each may cost that item, never its page, its cursor or the run's record.

HUGE_NUMBERS = st.one_of(
    st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**20, 2**62, 10**400, 1e17, 1e20, -1e17, 1e308,
                     float("inf"), float("-inf"), float("nan")]),
    st.integers(min_value=2**62, max_value=2**80), st.integers(min_value=-(2**80), max_value=-(2**62)))
BAD_TIMES = st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "+10000-01-01T00:00:00Z",
                             "2026-13-45T00:00:00Z", "1e17", "", "2026-11-20T12:00:00\ud800Z", "9" * 5000])
SURROGATE_TEXT = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
                         | st.sampled_from(list("acme <>&;#\x00\r")), max_size=30)
HOSTILE = st.one_of(HUGE_NUMBERS, BAD_TIMES, SURROGATE_TEXT, st.lists(SURROGATE_TEXT, min_size=1, max_size=3),
                    HUGE_NUMBERS.map(str))

# per source: where reach, times, language and other numbers and strings sit in one item
HOSTILE_PATHS = {
    "hackernews": [("created_at_i",), ("points",), ("num_comments",), ("story_id",), ("author",), ("objectID",),
                   ("comment_text",), ("story_title",), ("url",)],
    "reddit": [("data", "created_utc"), ("data", "score"), ("data", "num_comments"), ("data", "author"),
               ("data", "selftext"), ("data", "title"), ("data", "subreddit"), ("data", "name"), ("data", "url")],
    "appstore": [("id", "label"), ("im:rating", "label"), ("updated", "label"), ("author", "name", "label"),
                 ("content", "label"), ("im:version", "label"), ("im:voteCount", "label")],
    "bluesky": [("author", "followersCount"), ("record", "langs"), ("record", "createdAt"), ("indexedAt",),
                ("author", "handle"), ("author", "displayName"), ("likeCount",), ("record", "text"), ("uri",)],
    "mastodon": [("account", "followers_count"), ("language",), ("created_at",), ("id",), ("account", "acct"),
                 ("account", "display_name"), ("favourites_count",), ("content",), ("url",), ("uri",)],
    "stackexchange": [("creation_date",), ("question_id",), ("answer_id",), ("score",), ("owner", "reputation"),
                      ("owner", "user_id"), ("owner", "display_name"), ("owner", "link"), ("body",), ("title",),
                      ("item_type",), ("tags",)],
    "github": [("created_at",), ("updated_at",), ("id",), ("number",), ("comments",), ("title",), ("body",),
               ("user", "login"), ("user", "html_url"), ("html_url",), ("repository_url",), ("state",)],
    "lemmy": [("post", "published"), ("post", "id"), ("post", "ap_id"), ("post", "name"), ("post", "body"),
              ("post", "url"), ("creator", "name"), ("creator", "actor_id"), ("creator", "display_name"),
              ("community", "name"), ("community", "actor_id"), ("counts", "score"), ("counts", "published")],
    "lemmy-comments": [("comment", "published"), ("comment", "content"), ("comment", "ap_id"), ("comment", "id"),
                       ("post", "name"), ("post", "ap_id"), ("counts", "child_count"), ("creator", "name")],
    "discourse-search": [("id",), ("created_at",), ("blurb",), ("topic_id",), ("post_number",), ("username",),
                         ("name",), ("like_count",)],
    "discourse-latest": [("id",), ("created_at",), ("cooked",), ("topic_id",), ("topic_slug",), ("topic_title",),
                         ("post_number",), ("trust_level",), ("username",), ("post_type",), ("category_id",)],
}
_YT = ("snippet", "topLevelComment", "snippet")
HOSTILE_PATHS["youtube"] = [("id",), ("snippet", "totalReplyCount"), ("snippet", "topLevelComment", "id"),
                            (*_YT, "publishedAt"), (*_YT, "updatedAt"), (*_YT, "likeCount"), (*_YT, "textOriginal"),
                            (*_YT, "textDisplay"), (*_YT, "authorDisplayName"), (*_YT, "authorChannelId", "value"),
                            (*_YT, "authorChannelUrl"), (*_YT, "parentId")]
HOSTILE_PATHS["github-discussions"] = [("id",), ("createdAt",), ("updatedAt",), ("number",), ("title",), ("bodyText",),
                                       ("url",), ("author", "login"), ("author", "url"),
                                       ("repository", "nameWithOwner"), ("comments", "totalCount")]
REACH_PATHS = {("author", "followersCount"), ("account", "followers_count"), ("owner", "reputation")}


class OneQuery:
    """A source narrowed to one query, every item kept (the terms are not under test)."""

    match_all = True

    def __init__(self, source, query) -> None:
        self.source, self.query = source, query
        self.key, self.type = source.key, source.type

    def queries(self):
        return [self.query]

    def fetch(self, query, cursor):
        return self.source.fetch(query, cursor)


def _put(item, path, value):
    for key in path[:-1]:
        item = item.setdefault(key, {})
    item[path[-1]] = value


def _stored_strings_are_clean(store):
    for table in ("mentions", "authors"):
        for row in store.query(f"SELECT * FROM {table}"):
            for value in row.values():
                if isinstance(value, str):
                    value.encode("utf-8")  # a lone surrogate raises


@pytest.mark.parametrize("name", sorted(HOSTILE_PATHS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_an_out_of_range_value_costs_its_item_at_most(name, data, tmp_path_factory):
    make, fixture, items_of, query = SOURCES[name]
    page = fixture_json(fixture)
    items = items_of(page)
    good = len(items)
    path = data.draw(st.sampled_from(HOSTILE_PATHS[name]), label="path")
    value = data.draw(HOSTILE, label="value")
    _put(items[0], path, value)
    source = make(json.dumps(page).encode())
    store = Store(tmp_path_factory.mktemp("hostile") / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, OneQuery(source, query), Matcher(BRAND.terms))  # raised from the store before
    (run,) = store.recent_runs(source.key)
    assert stats.ok and run["ok"] == 1, stats.errors
    assert stats.new >= good - 1  # the other items are stored
    assert store.get_cursor(source.key, query) is not None  # the cursor moved on
    _stored_strings_are_clean(store)
    if path in REACH_PATHS and isinstance(value, int) and not -(2**63) <= value < 2**63:
        reach = store.query("SELECT a.reach, m.extra FROM mentions m JOIN authors a ON a.id = m.author_id "
                            "WHERE m.id = (SELECT min(id) FROM mentions)")
        if reach:  # the item survived: its reach is unknown, and says why
            assert reach[0]["reach"] is None and "author.reach" in json.loads(reach[0]["extra"])["out_of_range"]
    store.close()


@pytest.mark.parametrize(("name", "path", "value"), [
    ("bluesky", ("author", "followersCount"), 2**63),
    ("mastodon", ("account", "followers_count"), 2**63),
    ("bluesky", ("record", "langs"), ["\ud800"]),
    ("mastodon", ("language",), "\udc00"),
    ("hackernews", ("created_at_i",), 2**62),
    ("reddit", ("data", "created_utc"), 1e17),
])
def test_the_values_that_wedged_a_source(name, path, value, tmp_path):
    make, fixture, items_of, query = SOURCES[name]
    page = fixture_json(fixture)
    items = items_of(page)
    _put(items[0], path, value)
    source = make(json.dumps(page).encode())
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, OneQuery(source, query), Matcher(BRAND.terms))
    assert stats.ok, stats.errors
    assert stats.new + stats.skipped == len(items)  # only the damaged item may be lost, and is counted
    assert stats.new >= len(items) - 1
    (run,) = store.recent_runs(source.key)
    assert run["ok"] == 1 and run["new"] == stats.new
    store.close()


# ------------------------------------------------------------------------------ feeds

FEED_FIXTURES = ["feeds/blog_rss.xml", "feeds/google_alerts.xml", "feeds/google_news.xml", "feeds/reddit_search.xml"]
ENCODING_NAMES = st.one_of(st.sampled_from(["x-bogus-9", "utf-16", "utf-32", "shift_jis", "euc-jp", "us-ascii",
                                            "iso-8859-1", "utf-7", "hex", "rot13", "idna", "cp037", "UTF-8"]),
                           st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True))
FEED_NOISE = st.one_of(
    st.binary(max_size=8),
    st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\x81", b"\x00", b"&#xD800;", b"&#xDFFF;", b"&#0;", b"&#x110000;",
                     b"&#99999999999999999999;", b"&amp;#xD800;", b"<![CDATA[", b"]]>", b"<!DOCTYPE x [", b"]>",
                     b"<!DOCTYPE", b"<script>", b"</", b"<", b">", b"&", b"\xed\xa0\x80"]),
    st.integers(min_value=0, max_value=0x10FFFF + 10).map(lambda c: f"&#{c};".encode()),
)


def _feed_source(body: bytes):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/rss+xml"})

    factory = HttpFactory(HttpPolicy(retries=0, sleep=lambda s: None), transport=httpx.MockTransport(handler))
    return FeedSource(brand=BRAND, settings=FeedSettings(type="feed", urls=["https://feeds.example.com/x"]),
                      http_factory=factory, now=lambda: NOW)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_any_feed_bytes_parse_or_fail_cleanly(data, tmp_path_factory):
    """An unknown encoding name, a bad byte for the declared encoding, a reference to a surrogate:
    the feed parses (what can be read of it), or fails as a clean parse error, never "unexpected"."""
    body = fixture_bytes(data.draw(st.sampled_from(FEED_FIXTURES), label="fixture"))
    if data.draw(st.booleans(), label="declare"):
        name = data.draw(ENCODING_NAMES, label="encoding")
        body = re.sub(rb'encoding="[^"]*"', b'encoding="' + name.encode() + b'"', body, count=1)
    for _ in range(data.draw(st.integers(min_value=0, max_value=6), label="splices")):
        at = data.draw(st.integers(min_value=0, max_value=len(body)), label="at")
        body = body[:at] + data.draw(FEED_NOISE, label="noise") + body[at:]
    source = _feed_source(body)
    store = Store(tmp_path_factory.mktemp("feed") / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, OneQuery(source, "https://feeds.example.com/x"), Matcher(BRAND.terms))
    assert len(store.recent_runs(source.key)) == 1
    assert not any("unexpected" in e for e in stats.errors), stats.errors
    _stored_strings_are_clean(store)
    store.close()


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0" encoding="x-bogus-9"?><rss version="2.0"><channel><title>t</title><item>'
    b"<title>Acme one</title><link>https://a.example/1</link></item></channel></rss>",
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>'
    b"<title>Acme \xff\xfe one</title><link>https://a.example/1</link></item></channel></rss>",
    b'<?xml version="1.0" encoding="shift_jis"?><rss version="2.0"><channel><title>t</title><item>'
    b"<title>Acme \x81\x20 one</title><link>https://a.example/1</link></item></channel></rss>",
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
    b"<title>Acme &#xD800; one</title><link>https://a.example/1</link></item></channel></rss>",
    b'<?xml version="1.0" encoding="idna"?><rss version="2.0"><channel><title>t</title><item>'  # no "replace"
    b"<title>Acme \xff one</title><link>https://a.example/1</link></item></channel></rss>",
])
def test_the_feeds_that_failed_as_unexpected_errors_now_parse(body, tmp_path):
    source = _feed_source(body)
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, OneQuery(source, "https://feeds.example.com/x"), Matcher(BRAND.terms))
    assert stats.ok and stats.new == 1, stats.errors
    title = store.query("SELECT title FROM mentions")[0]["title"]
    assert title.startswith("Acme") and title.endswith("one")
    store.close()


# ------------------------------------------------------------------------------ linear cleaning
# No timing: the scanning loops go through module-level patterns, which are wrapped here to
# count the characters each search scans. A linear cleaner scans each character a bounded
# number of times; the quadratic one (every unclosed <script> searched to the end again) scanned
# n²/16 for n characters of "<script>". And the patterns themselves may not scan far past the
# character that starts their next attempt (no ".*", no "[^>]*").


class Counting:
    def __init__(self, pattern, tally: list[int]) -> None:
        self.pattern, self.tally = pattern, tally

    def search(self, string, pos=0):
        found = self.pattern.search(string, pos)
        self.tally[0] += (found.end() if found else len(string)) - pos
        return found


@pytest.fixture
def scanned(monkeypatch):
    tally = [0]
    for module, names in ((_common, ("_LT", "_GT")),
                          (feeds, ("_CDATA_OPEN", "_CDATA_END", "_DOCTYPE", "_DOCTYPE_STOP", "_SUBSET_END"))):
        for name in names:
            monkeypatch.setattr(module, name, Counting(getattr(module, name), tally))
    for name in ("_BLOCK_OPEN", "_BLOCK_END"):
        patterns = getattr(_common, name)
        monkeypatch.setattr(_common, name, {k: Counting(v, tally) for k, v in patterns.items()})
    return tally


HTML_TOKENS = ["<script>", "<script", "</script", "</script>", "<style>", "<noscript >", "</style >", "<template>",
               "<", ">", "<<", ">>", "<br", "<br>", "<p>", "</p", "< /p>", "<b>", "&lt;script&gt;", "&lt;", "&gt;",
               "&amp;lt;", "<!--", "-->", "a", " ", "\n", "acme", "<a href='", "'>", "&#x3c;"]
ADVERSARIAL_HTML = st.lists(st.sampled_from(HTML_TOKENS), min_size=1, max_size=600).map("".join)
CLEANERS = {"strip_html": _common.strip_html, "html_to_text": html_to_text,
            "stackexchange.html_to_text": se_html_to_text,
            "drop_html_tags": lambda t: _common.drop_html_tags(t, entities=True), "markdown_text": markdown_text}
WORK_PER_CHARACTER = 24  # the bound: a few passes of a few patterns over the text, and no more


@pytest.mark.parametrize("cleaner", sorted(CLEANERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ADVERSARIAL_HTML)
def test_cleaning_scans_each_character_a_bounded_number_of_times(cleaner, text, scanned):
    scanned[0] = 0
    out = CLEANERS[cleaner](text)
    assert scanned[0] <= WORK_PER_CHARACTER * len(text) + 100, (scanned[0], len(text))
    assert cleaner != "strip_html" or not _common.has_tag(out)  # the others keep "<...>" that is not HTML


@pytest.mark.parametrize("text", ["<script>" * 16_384, "<script>" + "a<" * 65_536, "<" * 131_072,
                                  "<style>" * 8_192 + "</style>", "&lt;script&gt;" * 8_192, "<br" * 32_768])
@pytest.mark.parametrize("cleaner", sorted(CLEANERS))
def test_a_128_kilobyte_adversary_is_cleaned_in_linear_work(cleaner, text, scanned):
    CLEANERS[cleaner](text)
    assert scanned[0] <= WORK_PER_CHARACTER * len(text), (scanned[0], len(text))


FEED_TOKENS = [b"<![CDATA[", b"]]>", b"<!DOCTYPE", b"<!DOCTYPE x [", b"]", b">", b"[", b"<rss>", b"<item>",
               b"<author>", b"a", b" ", b"<", b"&#xD800;"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(FEED_TOKENS), min_size=1, max_size=600))
def test_feed_hardening_scans_each_byte_a_bounded_number_of_times(parts, scanned):
    data = b"".join(parts)
    scanned[0] = 0
    with contextlib.suppress(SourceError):
        feeds.harden_feed(data)
    assert scanned[0] <= 8 * len(data) + 100, (scanned[0], len(data))


@pytest.mark.parametrize("data", [b"<rss>" + b"]]>" * 40_000 + b"<![CDATA[" * 40_000,
                                  b"<rss>" + b"<!DOCTYPE[" * 24_000, b"<rss>" + b"<!DOCTYPE x [" * 20_000 + b"]>"])
def test_a_malformed_234_kilobyte_feed_is_hardened_in_linear_work(data, scanned):
    with contextlib.suppress(SourceError):
        feeds.harden_feed(data)
    assert scanned[0] <= 8 * len(data)


def _patterns(module):
    for value in vars(module).values():
        found = value.values() if isinstance(value, dict) else [value]
        yield from (p for p in found if isinstance(p, re.Pattern))


@pytest.mark.parametrize("module", [_common, feeds, hackernews], ids=lambda m: m.__name__)
def test_cleaning_patterns_cannot_scan_past_their_next_start(module):
    for pattern in _patterns(module):
        source = pattern.pattern if isinstance(pattern.pattern, str) else pattern.pattern.decode("latin-1")
        assert not re.search(r"(?<!\\)\.[*+]", source), f"unbounded '.*' in {source!r}"
        for negated in re.findall(r"\[\^((?:\\.|[^\]])*)\][*+]", source):
            assert "<" in negated, f"[^{negated}]* runs past the next '<' in {source!r}"


# ------------------------------------------------------------------------------ Google Play

GP_APP, GP_QUERY, GP_FIXTURE = "com.acme.notes", "com.acme.notes:en:us", "googleplay/reviews_newest.txt"
# where a review's fields sit (google-play-scraper's positions): id, name, stars, text, time, thumbs, reply, version
GP_PATHS = [(0,), (1, 0), (2,), (4,), (5, 0), (5,), (6,), (7, 1), (7, 2, 0), (10,)]


def _googleplay(body: bytes) -> GooglePlayReviewsSource:
    return _json_source(GooglePlayReviewsSource, GooglePlaySettings(type="googleplay", app_ids=[GP_APP]), body)


def _list_paths(node, prefix=()):
    if isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _list_paths(v, prefix + (i,))


def _damage(review, draw):
    review = copy.deepcopy(review)
    for path in draw(st.lists(st.sampled_from(list(_list_paths(review))), min_size=1, max_size=4, unique=True)):
        target = review
        try:
            for i in path[:-1]:
                target = target[i]
            if draw(st.booleans()):
                target[path[-1]] = draw(values)
            else:
                del target[path[-1]]
        except (IndexError, KeyError, TypeError):
            continue
    return review


def _put_at(review, path, value):
    """``review[p0][p1]... = value``, making the arrays on the way where there are none."""
    for i in path[:-1]:
        review += [None] * (i + 1 - len(review))
        if not isinstance(review[i], list):
            review[i] = []
        review = review[i]
    review += [None] * (path[-1] + 1 - len(review))
    review[path[-1]] = value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_googleplay_review_damage_is_contained(data, tmp_path_factory):
    body = fixture_bytes(GP_FIXTURE)
    payload = unwrap(body)
    reviews = payload[0]
    good = len(reviews)
    reviews.append(_damage(reviews[0], data.draw))
    reviews.insert(0, _damage(reviews[-2], data.draw))
    result = _googleplay(rewrap(body, payload)).fetch(GP_QUERY, None)  # two bad reviews of five: no API change
    assert len(result.mentions) + result.skipped <= good + 2
    assert len(result.mentions) >= good
    store = Store(tmp_path_factory.mktemp("gp") / "m.db", now=lambda: NOW)
    store.save_batch("Acme:googleplay", GP_QUERY, result)
    for m in result.mentions:
        assert m.text and m.created_at.tzinfo is not None and 1 <= (m.rating or 0) <= 5
    store.close()


GP_ANSWERS = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b")]}'\n\n" + b),
    values.map(lambda v: b")]}'\n\n" + json.dumps(v).encode()),
    values.map(lambda v: wrap(v)),
    st.lists(values, max_size=4).map(lambda v: wrap([v, [None, "tok"]])),
    st.lists(st.lists(values, max_size=12), max_size=4).map(lambda rs: wrap([rs, [None, "CsIBCr8B"]])),
    st.sampled_from([b")]}'", b")]}'\n\n[", b")]}'\n\n[[\"wrb.fr\"]]", b")]}'\n\n[[\"wrb.fr\",\"oCPfdb\",7]]",
                     b")]}'\n\n[[\"wrb.fr\",\"oCPfdb\",\"[\"]]", b"\xef\xbb\xbf)]}'\n\n[]", b")]}'" + b"[" * 5000]),
)


@settings(max_examples=150, deadline=None)
@given(body=GP_ANSWERS)
def test_any_googleplay_answer_parses_or_fails_as_a_source_error(body):
    try:
        result = _googleplay(body).fetch(GP_QUERY, None)
    except SourceError:
        return
    assert isinstance(result, FetchResult)
    for m in result.mentions:
        assert m.text and m.created_at.tzinfo is not None and 1 <= (m.rating or 0) <= 5
        m.text.encode("utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_an_out_of_range_googleplay_value_costs_its_review_at_most(data, tmp_path_factory):
    body = fixture_bytes(GP_FIXTURE)
    payload = unwrap(body)
    payload[1] = [None, None]  # one page
    good = len(payload[0])
    _put_at(payload[0][0], data.draw(st.sampled_from(GP_PATHS), label="path"), data.draw(HOSTILE, label="value"))
    source = _googleplay(rewrap(body, payload))
    store = Store(tmp_path_factory.mktemp("gp-hostile") / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, OneQuery(source, GP_QUERY), Matcher(BRAND.terms))
    (run,) = store.recent_runs(source.key)
    assert stats.ok and run["ok"] == 1, stats.errors
    assert stats.new >= good - 1
    assert store.get_cursor(source.key, GP_QUERY) is not None
    _stored_strings_are_clean(store)
    store.close()
