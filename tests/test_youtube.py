"""YouTube comments: what a comment-thread page becomes (top-level comments and the replies
included, subscriber counts as reach, batched), how videos are found (a channel's uploads, a
search at most every ``search_every``) and walked (newest first, down to the last run's newest
comment), the quota (charged per call, kept in the cursors, reset at midnight Pacific time,
403 ``quotaExceeded``), refused keys, and drift (optional fields missing, one bad thread, a
page of only bad threads). Real-shaped fixtures served on 127.0.0.1 through the real, guarded
HTTP client."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from monitor import pipeline
from monitor.collect.youtube import YouTubeSource, comment_text, pacific_offset, quota_day, quota_reset
from monitor.config import Terms, YouTubeSettings
from monitor.errors import BlockedAddressError, CursorError, SourceAuthError, SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.redaction import collect_secrets
from monitor.store import Store
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, fixture_bytes, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 04:00 in California (PST)
BRAND = SimpleNamespace(name="Acme", terms=Terms(include=["acme"]))
KEY = "AIzaSyTest-youtube-key-9Qw3"
API = "/youtube/v3"
CHANNEL = "UCa1B2c3D4e5F6g7H8i9J0kL"
VIDEO = "kJ3xVnT8pQa"


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server():
    with FixtureServer() as s:
        s.routes[f"{API}/search"] = Reply(body=fixture_bytes("youtube/search.json"))
        s.routes[f"{API}/commentThreads"] = Reply(body=fixture_bytes("youtube/comment_threads.json"))
        s.routes[f"{API}/playlistItems"] = Reply(body=fixture_bytes("youtube/playlist_items.json"))
        s.routes[f"{API}/channels"] = lambda seen: Reply(body=fixture_bytes(
            "youtube/channels_statistics.json" if seen.query["part"] == ["statistics"]
            else "youtube/channels_uploads.json"))
        yield s


def make(server, *, clock=None, resolver=None, base_url=None, **settings):
    settings.setdefault("search", not (settings.get("channels") or settings.get("videos")))
    ss = YouTubeSettings(type="youtube", key=SecretStr(KEY), base_url=base_url or f"{server.url}{API}", **settings)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",) if resolver is None else (),
                        resolve=resolver or FakeResolver(), retries=0, sleep=lambda s: None)
    return YouTubeSource(brand=BRAND, settings=ss, http_factory=HttpFactory(policy), now=clock or (lambda: NOW))


def calls(server, method: str):
    return [s for s in server.seen if s.path == f"{API}/{method}"]


def params(seen) -> dict[str, str]:
    return {k: v[0] for k, v in seen.query.items()}


def walk(source, query: str, cursor: str | None = None, limit: int = 20):
    """Fetch pages until the source says done; (mentions, last cursor)."""
    mentions = []
    for _ in range(limit):
        result = source.fetch(query, cursor)
        mentions += result.mentions
        cursor = result.cursor
        if result.done:
            return mentions, cursor
    raise AssertionError("never done")


def threads(**changes) -> bytes:
    data = fixture_json("youtube/comment_threads.json")
    data.update(changes)
    return json.dumps(data).encode()


def store_for(tmp_path, clock=None) -> Store:
    return Store(tmp_path / "m.db", now=clock or (lambda: NOW))


# ------------------------------------------------------------------------------ a page


def test_search_finds_videos_then_their_comment_threads_become_mentions(server):
    source = make(server)
    assert source.queries() == ["search:acme"]
    first = source.fetch("search:acme", None)  # discovery: one search
    assert first.mentions == [] and not first.done
    (search,) = calls(server, "search")
    q = params(search)
    assert q["q"] == "acme" and q["type"] == "video" and q["order"] == "date" and q["part"] == "snippet"
    assert q["key"] == KEY and q["maxResults"] == "50"
    assert q["publishedAfter"] == (NOW - timedelta(days=7, seconds=600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    second = source.fetch("search:acme", first.cursor)  # the newest video's comments
    assert not second.done and second.skipped == 0
    top, reply, other_reply, pricing, question = second.mentions
    assert top.native_id == "UgzQ7x1bT2rNcW4mVfB4AaABAg" and top.kind == "comment"
    assert top.url == f"https://www.youtube.com/watch?v={VIDEO}&lc=UgzQ7x1bT2rNcW4mVfB4AaABAg"
    assert top.created_at == datetime(2026, 11, 20, 9, 14, 3, tzinfo=UTC)
    assert top.text.startswith("Switched our whole team to Acme")
    assert top.author is not None and top.author.handle == "UCx9vL2Qm7TnR4kP1sYwZ3bA"
    assert top.author.display_name == "@mayabuilds" and top.author.url == "https://www.youtube.com/@mayabuilds"
    assert top.author.reach is None  # looked up later, batched
    assert top.extra == {"video_id": VIDEO, "like_count": 57, "reply_count": 2, "updated_at": "2026-11-20T09:14:03Z",
                         "video_title": "Acme vs. the rest: build caching in 2026 & what actually matters"}
    assert reply.kind == "reply" and reply.extra["parent_id"] == top.native_id
    assert reply.url.endswith("&lc=UgzQ7x1bT2rNcW4mVfB4AaABAg.A2fK9pLmQ3xA2fKbTz8nRw")
    assert other_reply.text == "+1, same experience" and pricing.extra["like_count"] == 31
    assert question.text == "Great video! Does Acme work with Bazel remote execution & buildbarn?"  # textDisplay
    c = params(calls(server, "commentThreads")[0])
    assert c == {"part": "snippet,replies", "videoId": VIDEO, "order": "time", "maxResults": "100",
                 "textFormat": "plainText", "key": KEY}
    third = source.fetch("search:acme", second.cursor)  # the second video, then the cycle is done
    assert third.done and params(calls(server, "commentThreads")[1])["videoId"] == "Zp7QmW2xR4s"


def test_comment_text_is_kept_as_typed():
    assert comment_text({"textOriginal": "love it <3 but a < b > c"}) == "love it <3 but a < b > c"
    assert comment_text({"textDisplay": "<b>Acme</b> &amp; co<script>alert(1)</script>"}) == "Acme & co"
    assert comment_text({"textOriginal": "", "textDisplay": "shown"}) == "shown"
    assert comment_text({"textOriginal": 42}) == ""


def test_missing_optional_fields_are_derived_and_marked(server):
    data = fixture_json("youtube/comment_threads.json")
    first, second, third = data["items"]
    del first["id"]  # the thread's id is its top-level comment's
    del first["snippet"]["topLevelComment"]["snippet"]["publishedAt"]  # dated by updatedAt, marked
    s2 = second["snippet"]["topLevelComment"]["snippet"]
    del s2["publishedAt"], s2["updatedAt"], s2["authorChannelId"]  # the fetch time; the @handle as author
    del third["snippet"]["totalReplyCount"], third["snippet"]["topLevelComment"]["snippet"]["likeCount"]
    server.routes[f"{API}/commentThreads"] = Reply(body=json.dumps(data).encode())
    result = make(server, videos=[VIDEO]).fetch(f"video:{VIDEO}", None)
    assert result.skipped == 0 and len(result.mentions) == 5
    top, _, _, pricing, question = result.mentions
    assert top.native_id == "UgzQ7x1bT2rNcW4mVfB4AaABAg" and top.extra["date_guessed"] == "updated"
    assert top.created_at == datetime(2026, 11, 20, 9, 14, 3, tzinfo=UTC)
    assert pricing.created_at == NOW and pricing.extra["date_guessed"] == "fetched"
    assert pricing.author is not None and pricing.author.handle == "@ops.nadia"
    assert "reply_count" not in question.extra and "like_count" not in question.extra


def test_one_bad_thread_or_reply_costs_itself_only(server):
    data = fixture_json("youtube/comment_threads.json")
    data["items"].insert(1, {"kind": "youtube#commentThread", "id": "x", "snippet": "gone"})
    data["items"][0]["replies"]["comments"][1]["id"] = ["not", "an", "id"]
    server.routes[f"{API}/commentThreads"] = Reply(body=json.dumps(data).encode())
    result = make(server, videos=[VIDEO]).fetch(f"video:{VIDEO}", None)
    assert result.skipped == 2 and len(result.mentions) == 4


def test_a_page_of_only_broken_threads_is_an_api_change(server, tmp_path):
    data = fixture_json("youtube/comment_threads.json")
    for item in data["items"]:
        item["snippet"]["topLevelComment"] = item["snippet"]["topLevelComment"]["snippet"]  # a reshaped thread
    server.routes[f"{API}/commentThreads"] = Reply(body=json.dumps(data).encode())
    store = store_for(tmp_path)
    stats = pipeline.collect(store, make(server, videos=[VIDEO]), Matcher(BRAND.terms))
    assert stats.api_changed is not None and not stats.ok
    store.close()


def test_a_response_without_items_is_malformed(server):
    server.routes[f"{API}/commentThreads"] = Reply(body=b'{"kind": "youtube#commentThreadListResponse"}')
    with pytest.raises(SourceError, match="no 'items' list"):
        make(server, videos=[VIDEO]).fetch(f"video:{VIDEO}", None)


# ------------------------------------------------------------------------------ finding videos


def test_a_channels_new_uploads_are_followed(server):
    source = make(server, channels=[CHANNEL])
    assert source.queries() == [f"channel:{CHANNEL}"]
    query = f"channel:{CHANNEL}"
    mentions, cursor = walk(source, query)
    (lookup,) = calls(server, "channels")
    assert params(lookup) == {"part": "contentDetails", "id": CHANNEL, "maxResults": "1", "key": KEY}
    (listing,) = calls(server, "playlistItems")
    assert params(listing)["playlistId"] == "UUa1B2c3D4e5F6g7H8i9J0kL"
    state = json.loads(cursor)
    assert [v["id"] for v in state["videos"]] == [VIDEO]  # the October upload is older than video_days
    assert len(calls(server, "commentThreads")) == 1 and len(mentions) == 5
    walk(source, query, cursor)  # the next run: the uploads playlist is known, listed again
    assert len(calls(server, "channels")) == 1 and len(calls(server, "playlistItems")) == 2


def test_an_unknown_channel_is_an_error_naming_it(server):
    server.routes[f"{API}/channels"] = Reply(body=fixture_bytes("youtube/channels_not_found.json"))
    with pytest.raises(SourceError, match=f"no channel {CHANNEL}"):
        make(server, channels=[CHANNEL]).fetch(f"channel:{CHANNEL}", None)


def test_search_runs_at_most_every_search_every(server):
    clock = Clock()
    source = make(server, clock=clock)
    _, cursor = walk(source, "search:acme")
    clock.now = NOW + timedelta(hours=2)
    _, cursor = walk(source, "search:acme", cursor)
    assert len(calls(server, "search")) == 1 and len(calls(server, "commentThreads")) == 4  # comments still polled
    clock.now = NOW + timedelta(hours=6)
    walk(source, "search:acme", cursor)
    assert len(calls(server, "search")) == 2
    newest = datetime(2026, 11, 19, 16, 0, 6, tzinfo=UTC) - timedelta(seconds=600)
    assert params(calls(server, "search")[-1])["publishedAfter"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_phrases_are_searched_as_phrases(server):
    source = make(server)
    source.fetch('search:"acme cloud"', None)
    assert params(calls(server, "search")[0])["q"] == '"acme cloud"'


# ------------------------------------------------------------------------------ walking comments


def test_pages_are_followed_then_the_next_run_stops_at_the_newest_stored_comment(server):
    pages = {None: threads(nextPageToken="QURTSl9pMHZ6"),
             "QURTSl9pMHZ6": fixture_bytes("youtube/comment_threads_page2.json")}
    server.routes[f"{API}/commentThreads"] = lambda seen: Reply(body=pages[params(seen).get("pageToken")])
    source = make(server, videos=[VIDEO])
    query = f"video:{VIDEO}"
    first = source.fetch(query, None)
    assert not first.done and len(first.mentions) == 5
    second = source.fetch(query, first.cursor)
    assert second.done and len(second.mentions) == 3
    assert params(calls(server, "commentThreads")[1])["pageToken"] == "QURTSl9pMHZ6"
    state = json.loads(second.cursor)
    assert state["videos"][0]["after"] == int(datetime(2026, 11, 20, 9, 14, 3, tzinfo=UTC).timestamp())
    # the next run: the first page reaches back past the newest stored comment, so page 2 is not asked for
    third = source.fetch(query, second.cursor)
    assert third.done and len(calls(server, "commentThreads")) == 3
    assert [m.native_id for m in third.mentions] == [
        "UgzQ7x1bT2rNcW4mVfB4AaABAg", "UgzQ7x1bT2rNcW4mVfB4AaABAg.A2fK9pLmQ3xA2fKbTz8nRw",
        "UgzQ7x1bT2rNcW4mVfB4AaABAg.A2fK9pLmQ3xA2fLcUq1vXe"]  # within the overlap, and replies after it


def test_comments_disabled_drops_the_video_and_goes_on(server):
    server.routes[f"{API}/commentThreads"] = lambda seen: Reply(
        403, fixture_bytes("youtube/error_comments_disabled.json")) if params(seen)["videoId"] == VIDEO \
        else Reply(body=fixture_bytes("youtube/comment_threads_page2.json"))
    source = make(server)
    mentions, cursor = walk(source, "search:acme")
    assert len(mentions) == 3
    assert [v["id"] for v in json.loads(cursor)["videos"]] == ["Zp7QmW2xR4s"]


@pytest.mark.parametrize("cursor", ["not json", '{"since": "x"}', '{"since": 1795168971, "phase": "later"}',
                                    '{"since": 1795168971, "videos": [{"id": "../../etc"}]}',
                                    json.dumps({"since": int((NOW + timedelta(days=3)).timestamp())})])
def test_an_unreadable_cursor_fails_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        make(server).fetch("search:acme", cursor)
    assert server.seen == []


def test_backfill_cursor_discovers_from_the_date(server):
    cursor = make(server).cursor_since("search:acme", NOW - timedelta(days=30))
    assert json.loads(cursor)["since"] == int((NOW - timedelta(days=30)).timestamp())


# ------------------------------------------------------------------------------ reach


def test_subscriber_counts_are_looked_up_in_batches(server, tmp_path):
    store = store_for(tmp_path)
    source = make(server, videos=[VIDEO])
    stats = pipeline.collect(store, source, Matcher(BRAND.terms))
    assert stats.ok, stats.errors
    (lookup,) = [s for s in calls(server, "channels") if params(s)["part"] == "statistics"]
    ids = params(lookup)["id"].split(",")
    assert len(ids) == 5 and "UCx9vL2Qm7TnR4kP1sYwZ3bA" in ids  # every author of the page, one request
    reach = {r["handle"]: (r["reach"], r["reach_kind"]) for r in store.query("SELECT handle, reach, reach_kind "
                                                                              "FROM authors")}
    assert reach["UCx9vL2Qm7TnR4kP1sYwZ3bA"] == (24800, "subscribers")
    assert reach["UCb2T8nW5qLr0yHc7XeJ4mPd"] == (731, "subscribers")
    assert reach["UCm4Hs9Wq2ZpL7vD1kNf8RxE"] == (None, None)  # hiddenSubscriberCount
    assert source.quota_used() == 2  # one page of comments, one lookup of five channels
    store.close()


def test_no_subscriber_lookups_when_off(server):
    source = make(server, videos=[VIDEO], fetch_subscribers=False)
    assert source.reach("UCx9vL2Qm7TnR4kP1sYwZ3bA") is None and server.seen == []
    assert make(server, videos=[VIDEO]).reach("@ops.nadia") is None and server.seen == []


# ------------------------------------------------------------------------------ quota


def test_the_quota_day_is_californian():
    assert pacific_offset(datetime(2026, 11, 20, 12, tzinfo=UTC)) == timedelta(hours=-8)
    assert pacific_offset(datetime(2026, 7, 1, tzinfo=UTC)) == timedelta(hours=-7)
    assert pacific_offset(datetime(2026, 3, 8, 9, 59, tzinfo=UTC)) == timedelta(hours=-8)  # 01:59 PST
    assert pacific_offset(datetime(2026, 3, 8, 10, 0, tzinfo=UTC)) == timedelta(hours=-7)  # 03:00 PDT
    assert pacific_offset(datetime(2026, 11, 1, 8, 59, tzinfo=UTC)) == timedelta(hours=-7)
    assert pacific_offset(datetime(2026, 11, 1, 9, 0, tzinfo=UTC)) == timedelta(hours=-8)
    assert quota_day(datetime(2026, 11, 20, 7, 59, tzinfo=UTC)) == "2026-11-19"
    assert quota_day(datetime(2026, 11, 20, 8, 0, tzinfo=UTC)) == "2026-11-20"
    assert quota_reset(NOW) == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert quota_reset(datetime(2026, 7, 1, 12, tzinfo=UTC)) == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)
    # 01:00 PDT on the morning the clocks go back: the next midnight is in PST
    assert quota_reset(datetime(2026, 11, 1, 8, 0, tzinfo=UTC)) == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert quota_reset(datetime(2026, 3, 8, 9, 0, tzinfo=UTC)) == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)


def test_each_call_is_charged_and_the_tally_kept_in_the_cursor(server):
    source = make(server)
    _, cursor = walk(source, "search:acme")
    assert source.quota_used() == 102  # a search (100) and two pages of comments (1 each)
    state = json.loads(cursor)
    assert state["quota_day"] == "2026-11-20" and state["quota_used"] == 102
    fresh = make(server)  # a restart: the tally is read from every query's cursor before the run
    fresh.prime({"search:acme": cursor, "search:other": None, "search:bad": "{"})
    assert fresh.quota_used() == 102


def test_a_run_starts_from_the_highest_tally_of_all_its_queries(server, tmp_path):
    terms = Terms(include=["acme", "other"])
    source = make(server, daily_quota=150, terms=terms)
    _, cursor = walk(source, "search:acme")  # 102 units; a search is not due again for 6 h
    state = json.loads(cursor)
    store = store_for(tmp_path)
    store.set_cursor(source.key, "search:acme", cursor)
    # another query of the source, written later in the day, saw 149 units spent
    store.set_cursor(source.key, "search:other", json.dumps({**state, "quota_used": 149}))
    restarted = make(server, daily_quota=150, terms=terms)
    assert restarted.queries() == ["search:acme", "search:other"]
    stats = pipeline.collect(store, restarted, Matcher(BRAND.terms), max_pages=1)
    assert json.loads(store.get_cursor(source.key, "search:acme") or "{}")["quota_used"] == 150  # 149 + 1 page
    assert len(calls(server, "commentThreads")) == 3  # the first query's one page; the second's would pass 150
    assert stats.errors == [f"{source.key}: YouTube daily quota: 150 of 150 units used, the next call needs 1; it "
                            "resets at midnight Pacific time, in 20.0 h"]
    # the reach lookups wait for the quota too, without spending the authors' attempts
    lookups = store.query("SELECT attempts FROM reach_lookups")
    assert lookups and all(r["attempts"] == 0 for r in lookups)
    store.close()


def test_a_call_the_quota_cannot_pay_for_is_not_sent(server, tmp_path):
    clock = Clock()
    source = make(server, daily_quota=150, clock=clock)
    _, cursor = walk(source, "search:acme")
    assert source.quota_used() == 102
    clock.now = NOW + timedelta(hours=7)  # a search is due again, and costs 100
    store = store_for(tmp_path, clock)
    store.set_cursor(source.key, "search:acme", cursor)
    stats = pipeline.collect(store, make(server, daily_quota=150, clock=clock), Matcher(BRAND.terms))
    assert not stats.ok and not stats.auth_failed and len(calls(server, "search")) == 1
    assert "102 of 150 units used" in stats.errors[0] and "midnight Pacific" in stats.errors[0]
    run = store.recent_runs(source.key)[0]
    assert run["ok"] == 0 and "quota" in run["error"]  # what monitor status and source health show
    clock.now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)  # midnight in California: a new quota day
    stats = pipeline.collect(store, make(server, daily_quota=150, clock=clock), Matcher(BRAND.terms))
    assert stats.ok, stats.errors
    assert len(calls(server, "search")) == 2
    store.close()


def test_quota_exceeded_stops_every_call_until_the_reset(server):
    clock = Clock()
    server.routes[f"{API}/search"] = Reply(403, fixture_bytes("youtube/error_quota_exceeded.json"))
    source = make(server, clock=clock)
    with pytest.raises(SourceError) as info:
        source.fetch("search:acme", None)
    assert not isinstance(info.value, SourceAuthError) and "quotaExceeded" in str(info.value)
    assert "<a" not in str(info.value) and info.value.retry_after == 20 * 3600  # 04:00 PST -> midnight
    with pytest.raises(SourceError, match="no request until"):
        source.fetch("search:other", None)
    with pytest.raises(SourceError, match="no request until"):
        source.reach("UCx9vL2Qm7TnR4kP1sYwZ3bA")  # reach lookups wait too
    assert len(server.seen) == 1
    clock.now = datetime(2026, 11, 21, 8, 0, 1, tzinfo=UTC)
    server.routes[f"{API}/search"] = Reply(body=fixture_bytes("youtube/search.json"))
    assert source.fetch("search:acme", None).cursor is not None and len(server.seen) == 2


@pytest.mark.parametrize(("status", "fixture"), [(400, "error_key_invalid.json"), (400, "error_key_expired.json"),
                                                 (403, "error_key_invalid_legacy.json")])
def test_a_refused_key_is_an_auth_failure_that_never_shows_the_key(server, tmp_path, caplog, status, fixture):
    server.routes[f"{API}/search"] = Reply(status, fixture_bytes(f"youtube/{fixture}"))
    store = store_for(tmp_path)
    with caplog.at_level(logging.DEBUG):
        stats = pipeline.collect(store, make(server), Matcher(BRAND.terms))
    assert not stats.ok and stats.auth_failed
    assert "refused the API key" in stats.errors[0]
    assert KEY not in json.dumps(store.query("SELECT * FROM source_runs")) and KEY not in "; ".join(stats.errors)
    assert KEY not in "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("monitor"))
    # httpx logs whole URLs (the key rides in the query string): the CLI mutes it below WARNING,
    # and its redacting log filter knows the key, as every secret of the settings
    assert KEY in collect_secrets(make(server).settings)
    store.close()


@pytest.mark.parametrize(("status", "body"), [(429, b'{"error": {"code": 429, "message": "Too many requests"}}'),
                                              (403, fixture_bytes("youtube/error_rate_limit.json"))])
def test_rate_limits_fail_the_run_without_auth(server, tmp_path, status, body):
    server.routes[f"{API}/search"] = Reply(status, body, headers={"Retry-After": "30"})
    store = store_for(tmp_path)
    stats = pipeline.collect(store, make(server), Matcher(BRAND.terms))
    assert not stats.ok and not stats.auth_failed
    with pytest.raises(SourceError) as info:
        make(server).fetch("search:acme", None)
    assert info.value.retry_after == 30
    store.close()


def test_a_base_url_on_a_private_address_is_refused(server):
    resolver = FakeResolver({"yt.internal.example": ["10.0.0.5"]})
    source = make(server, resolver=resolver, base_url="https://yt.internal.example/youtube/v3")
    with pytest.raises(BlockedAddressError, match="10.0.0.5"):
        source.fetch("search:acme", None)
    assert server.seen == []


# ------------------------------------------------------------------------------ settings


def test_settings():
    with pytest.raises(ValidationError, match="channels, videos or search"):
        YouTubeSettings(type="youtube", key=SecretStr(KEY), search=False)
    with pytest.raises(ValidationError):
        YouTubeSettings(type="youtube", key=SecretStr(KEY), channels=["@acme"])
    with pytest.raises(ValidationError):
        YouTubeSettings(type="youtube", key=SecretStr(KEY), videos=["https://youtu.be/kJ3xVnT8pQa"])
    with pytest.raises(ValidationError, match="ENV_VAR"):
        YouTubeSettings(type="youtube", key=KEY)
    ss = YouTubeSettings(type="youtube", key=SecretStr(KEY))
    assert ss.daily_quota == 10_000 and ss.search_every == timedelta(hours=6) and ss.max_pages == 30


# ------------------------------------------------------------------------------ fuzz: listings, reach, error bodies

_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                     st.floats(allow_nan=True), st.text(max_size=30),
                     st.sampled_from(["\ud800", "UCx9vL2Qm7TnR4kP1sYwZ3bA", "kJ3xVnT8pQa", "99999999999999999999",
                                      "-5", "2026-11-19T16:00:06Z", "9999-12-31T23:59:59-23:59", "<script>x</script>"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=8)


def _damaged(data, draw):
    """``data`` with a few fields (at any depth) replaced by random JSON or deleted."""
    paths: list[tuple] = []

    def walk_paths(node, prefix=()):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((*prefix, k))
                walk_paths(v, (*prefix, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((*prefix, i))
                walk_paths(v, (*prefix, i))

    walk_paths(data)
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4, unique=True)):
        target = data
        try:
            for k in path[:-1]:
                target = target[k]
            if draw(st.booleans()):
                target[path[-1]] = draw(_values)
            else:
                del target[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
    return data


def _mock_source(routes: dict[str, bytes], **settings):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=routes[request.url.path.rsplit("/", 1)[-1]])

    settings.setdefault("search", not (settings.get("channels") or settings.get("videos")))
    factory = HttpFactory(HttpPolicy(retries=0, sleep=lambda s: None), transport=httpx.MockTransport(handler))
    ss = YouTubeSettings(type="youtube", key=SecretStr(KEY), **settings)
    return YouTubeSource(brand=BRAND, settings=ss, http_factory=factory, now=lambda: NOW)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_listings_and_statistics_fail_cleanly(data):
    which = data.draw(st.sampled_from(["search", "playlistItems", "channels"]))
    body = {"search": "search.json", "playlistItems": "playlist_items.json",
            "channels": "channels_statistics.json"}[which]
    damaged = json.dumps(_damaged(fixture_json(f"youtube/{body}"), data.draw)).encode()
    routes = {"search": fixture_bytes("youtube/search.json"),
              "channels": fixture_bytes("youtube/channels_uploads.json"),
              "playlistItems": fixture_bytes("youtube/playlist_items.json"),
              "commentThreads": fixture_bytes("youtube/comment_threads.json"), which: damaged}
    try:
        if which == "channels":
            found = _mock_source(routes, videos=[VIDEO]).reach("UCx9vL2Qm7TnR4kP1sYwZ3bA")
            assert found is None or (isinstance(found[0], int) and 0 <= found[0] < 2**63 and found[1] == "subscribers")
            return
        source = _mock_source(routes, channels=[CHANNEL] if which == "playlistItems" else [])
        query = f"channel:{CHANNEL}" if which == "playlistItems" else "search:acme"
        cursor = source.fetch(query, None).cursor
        if which == "playlistItems":
            cursor = source.fetch(query, cursor).cursor
    except SourceError:
        return
    state = json.loads(cursor or "{}")
    assert all(isinstance(v["id"], str) and len(v["id"]) == 11 for v in state["videos"])
    _mock_source(routes, videos=[VIDEO]).fetch(query, cursor)  # the cursor written is one the source reads back


@settings(max_examples=100, deadline=None)
@given(body=st.one_of(st.binary(max_size=200), _values.map(lambda v: json.dumps(v).encode()),
                      _values.map(lambda v: json.dumps({"error": v}).encode()),
                      _values.map(lambda v: json.dumps({"error": {"code": 403, "errors": [{"reason": v}],
                                                                  "message": v}}).encode())),
       status=st.sampled_from([400, 401, 403, 404, 429, 500, 503]))
def test_any_error_body_is_a_source_error(body, status):
    routes = {"commentThreads": body}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=routes["commentThreads"])

    factory = HttpFactory(HttpPolicy(retries=0, sleep=lambda s: None), transport=httpx.MockTransport(handler))
    ss = YouTubeSettings(type="youtube", key=SecretStr(KEY), videos=[VIDEO], search=False)
    source = YouTubeSource(brand=BRAND, settings=ss, http_factory=factory, now=lambda: NOW)
    try:
        result = source.fetch(f"video:{VIDEO}", None)
    except SourceError as exc:
        assert KEY not in str(exc)
        return
    assert result.mentions == []  # a video gone or with comments off: no longer followed, not an error
