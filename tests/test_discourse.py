"""Discourse: what a search page becomes (the whole posts fetched per topic, or the blurb alone,
marked), what ``/posts.json`` becomes in ``latest`` mode, how both cursors walk, how drifted
shapes are read, and how the forum's limits and refusals are honoured: 429 with Retry-After,
``error_type: rate_limit`` with ``extras.wait_seconds``, the search's own "slow down", a login
the forum wants, a redirect. API key headers are sent and never logged. Real-shaped fixtures
served on 127.0.0.1 through the real, guarded HTTP client."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import SecretStr, ValidationError

from monitor import pipeline
from monitor.collect.discourse import DiscourseSource
from monitor.config import DiscourseSettings, Terms
from monitor.errors import CursorError, SourceAuthError, SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.store import Store
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, Seen, fixture_bytes, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = SimpleNamespace(name="Acme", terms=Terms(include=["acme"]))
KEY = "d1sc0urse-key-7f3a9"
SEARCH, LATEST = "/search.json", "/posts.json"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server():
    with FixtureServer() as s:
        s.routes[SEARCH] = Reply(body=fixture_bytes("discourse/search.json"))
        s.routes["/t/*"] = topic_posts
        s.routes[LATEST] = Reply(body=fixture_bytes("discourse/latest_posts.json"))
        yield s


def topic_posts(seen: Seen) -> Reply:
    """``/t/<id>/posts.json?post_ids[]=...``: the asked posts of the topic's fixture."""
    topic = seen.path.split("/")[2]
    data = fixture_json(f"discourse/topic_{topic}_posts.json")
    wanted = {int(i) for i in seen.query.get("post_ids[]", [])}
    data["post_stream"]["posts"] = [p for p in data["post_stream"]["posts"] if p["id"] in wanted]
    return Reply(body=json.dumps(data).encode())


def make(server, *, clock=None, sleeps=None, key: str | None = None, forum: str | None = None, **settings):
    if key is not None:
        settings.update(api_key=SecretStr(key), api_username=SecretStr("monitor_bot"))
    settings = DiscourseSettings(type="discourse", forum=forum or server.url, **settings)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",), resolve=FakeResolver({"forum.internal": ["10.0.0.7"]}),
                        retries=0, sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return DiscourseSource(brand=BRAND, settings=settings, http_factory=HttpFactory(policy),
                           now=clock or (lambda: NOW))


def body(data) -> bytes:
    return json.dumps(data).encode()


def seen(server, path):
    return [s for s in server.seen if s.path == path or (path.endswith("*") and s.path.startswith(path[:-1]))]


def collect(tmp_path, source):
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    return store, pipeline.collect(store, source, Matcher(BRAND.terms))


# ------------------------------------------------------------------------------ search


def test_search_hits_become_whole_posts(server):
    source = make(server)
    result = source.fetch("acme", None)
    assert result.done and result.skipped == 0
    opening, reply, quoting = result.mentions
    host = server.url.removeprefix("http://")
    assert opening.kind == "post" and opening.native_id == f"{host}:41877"
    assert opening.url == f"{server.url}/t/acme-4-0-remote-cache-fails-behind-a-corporate-proxy/8812/1"
    assert opening.title == "Acme 4.0 remote cache fails behind a corporate proxy"
    assert "acme: remote cache: connection reset (HTTPS_PROXY=http://proxy.corp:3128)\n  retrying in 2s" \
        in opening.text  # code keeps its lines and indentation
    assert "Is Vec<Proxy> in acme.toml the right place?" in opening.text  # cooked is decoded once
    assert "<" not in opening.text.replace("Vec<Proxy>", "") and "excerpt_only" not in opening.extra
    assert opening.extra["trust_level"] == 2 and opening.extra["tags"] == ["acme", "proxy"]
    assert opening.extra["category_id"] == 7 and opening.extra["likes"] == 4
    assert opening.author is not None and opening.author.handle == f"priya_r@{host}"
    assert opening.author.display_name == "Priya Raman" and opening.author.url == f"{server.url}/u/priya_r"
    assert opening.author.reach is None  # trust level is standing, not audience: kept in extra
    assert opening.created_at == datetime(2026, 11, 20, 9, 58, 12, 744000, tzinfo=UTC)
    assert reply.kind == "comment" and reply.url.endswith("/t/what-does-your-ci-stack-look-like-in-2026/8790/6")
    assert "Map<String, List<Job>> configs and all." in reply.text
    assert reply.author is not None and reply.author.display_name is None  # "name": ""
    assert "We dropped Acme after the pricing change & went back" in quoting.text
    q = seen(server, SEARCH)[0].query
    assert q["q"] == ["acme order:latest after:2026-11-17"] and q["page"] == ["1"]
    topics = seen(server, "/t/*")
    assert sorted(s.path for s in topics) == ["/t/8790/posts.json", "/t/8812/posts.json"]  # one request a topic
    assert sorted(next(s for s in topics if s.path == "/t/8790/posts.json").query["post_ids[]"]) == ["41802", "41860"]
    assert all("Api-Key" not in s.headers for s in server.seen)


def test_without_full_text_the_blurb_is_stored_and_marked(server):
    data = fixture_json("discourse/search.json")
    data["posts"][1]["blurb"] = data["posts"][1]["blurb"].replace("Configs and", "Map<String, List<Job>> configs and")
    server.routes[SEARCH] = Reply(body=body(data))
    result = make(server, full_text=False).fetch("acme", None)
    assert seen(server, "/t/*") == []
    opening, reply, quoting = result.mentions
    assert all(m.extra["excerpt_only"] is True for m in result.mentions)
    assert "The log says connection reset and" in opening.text  # a <code> tag in the blurb dropped
    assert reply.text == "...honestly Acme is the only tool in our pipeline that never breaks. " \
                         "Map<String, List<Job>> configs and all..."  # highlight markup gone, <T> kept
    assert "pricing change & went back" in quoting.text


@pytest.mark.parametrize("status", [403, 404, 429])
def test_a_topic_that_cannot_be_read_keeps_its_blurbs(server, status):
    server.routes["/t/8790/posts.json"] = Reply(status, b'{"errors": ["not allowed"]}', headers={"Retry-After": "600"})
    opening, reply, quoting = make(server).fetch("acme", None).mentions
    assert "excerpt_only" not in opening.extra  # topic 8812 was read before 8790 failed
    assert reply.extra["excerpt_only"] is True and quoting.extra["excerpt_only"] is True


def test_api_key_headers_are_sent_and_never_logged(server, tmp_path, caplog):
    server.routes[SEARCH] = Reply(403, fixture_bytes("discourse/error_invalid_access.json"))
    store, stats = collect(tmp_path, make(server, key=KEY))
    assert not stats.ok and stats.auth_failed and "API key was refused" in stats.errors[0]
    assert seen(server, SEARCH)[0].headers["Api-Key"] == KEY
    assert seen(server, SEARCH)[0].headers["Api-Username"] == "monitor_bot"
    assert KEY not in caplog.text and KEY not in json.dumps(store.query("SELECT * FROM source_runs"))
    store.close()


def test_a_forum_that_wants_a_login_is_an_auth_failure(server, tmp_path):
    server.routes[SEARCH] = Reply(403, fixture_bytes("discourse/error_invalid_access.json"))
    store, stats = collect(tmp_path, make(server))
    assert stats.auth_failed and "needs a login" in stats.errors[0]
    store.close()


# ------------------------------------------------------------------------------ drift


def test_drifted_search_posts_are_read_and_what_is_derived_is_marked(server):
    data = fixture_json("discourse/search.json")
    del data["posts"][0]["created_at"]  # the topic's opening post: dated by the topic
    del data["topics"][1]  # no topic: no slug, no title
    del data["posts"][2]["topic_id"]  # no topic at all: /p/<id>
    del data["posts"][2]["created_at"]  # nor a time: the fetch time, marked
    server.routes[SEARCH] = Reply(body=body(data))
    result = make(server, full_text=False).fetch("acme", None)
    assert result.skipped == 0
    opening, reply, orphan = result.mentions
    assert opening.created_at == datetime(2026, 11, 20, 9, 58, 12, 612000, tzinfo=UTC)
    assert reply.url == f"{server.url}/t/8790/6" and reply.title is None
    assert orphan.url == f"{server.url}/p/41802" and orphan.extra["created_at_estimated"] is True
    assert orphan.created_at == NOW
    assert json.loads(result.cursor)["since"] == int(datetime(2026, 11, 20, 9, 58, 12, 612000, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("damage", [lambda p: p.pop("id"), lambda p: p.update(id={"n": 1}),
                                    lambda p: p.pop("blurb"), lambda p: p.update(blurb=None)])
def test_a_post_without_id_or_text_is_skipped_alone(server, damage):
    data = fixture_json("discourse/search.json")
    damage(data["posts"][0])
    server.routes[SEARCH] = Reply(body=body(data))
    result = make(server, full_text=False).fetch("acme", None)
    assert result.skipped == 1 and len(result.mentions) == 2


def test_a_page_of_only_broken_posts_is_an_api_change(server, tmp_path):
    data = fixture_json("discourse/search.json")
    for post in data["posts"]:
        del post["id"]
    server.routes[SEARCH] = Reply(body=body(data))
    store, stats = collect(tmp_path, make(server))
    assert stats.api_changed is not None and not stats.ok
    store.close()


# ------------------------------------------------------------------------------ search cursor


def _many(n: int, newest: datetime, step: timedelta):
    data = fixture_json("discourse/search.json")
    post = data["posts"][0]
    data["posts"] = []
    for i in range(n):
        p = copy.deepcopy(post)
        p["id"] = 50_000 + i
        p["created_at"] = (newest - i * step).isoformat().replace("+00:00", "Z")
        data["posts"].append(p)
    data["grouped_search_result"]["more_full_page_results"] = True
    return data


def test_more_results_inside_the_window_lead_to_the_next_page_then_since_moves(server):
    server.routes[SEARCH] = Reply(body=body(_many(50, NOW - timedelta(minutes=5), timedelta(minutes=10))))
    source = make(server, full_text=False)
    first = source.fetch("acme", None)
    assert not first.done and json.loads(first.cursor)["page"] == 2
    top = json.loads(first.cursor)["top"]
    assert top == int((NOW - timedelta(minutes=5)).timestamp())
    server.routes[SEARCH] = Reply(body=body({"posts": [], "topics": [], "grouped_search_result": {
        "more_full_page_results": None, "error": None}}))
    last = source.fetch("acme", first.cursor)
    assert last.done and seen(server, SEARCH)[-1].query["page"] == ["2"]
    assert json.loads(last.cursor) == {"since": top, "page": 1, "top": None}


def test_results_older_than_the_window_end_the_walk(server):
    server.routes[SEARCH] = Reply(body=body(_many(50, NOW - timedelta(minutes=5), timedelta(hours=2))))
    assert make(server, full_text=False).fetch("acme", None).done


@pytest.mark.parametrize("cursor", ["not json", '{"since": "x"}', '{"since": 1795168971, "page": 0}',
                                    json.dumps({"since": int((NOW + timedelta(days=3)).timestamp())})])
def test_an_unreadable_cursor_fails_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        make(server).fetch("acme", cursor)
    with pytest.raises(CursorError):
        make(server, mode="latest").fetch("latest", cursor if "page" not in cursor else '{"last_id": -1}')
    assert server.seen == []


# ------------------------------------------------------------------------------ latest


def test_latest_mode_reads_new_posts_of_the_forum(server):
    source = make(server, mode="latest")
    assert source.queries() == ["latest"]
    result = source.fetch("latest", '{"last_id": 41876, "since": 1795000000}')  # the page reaches it
    assert result.done and result.skipped == 0
    ids = [m.native_id.split(":")[-1] for m in result.mentions]
    assert ids == ["41902", "41899", "41877"]  # a small action dropped
    bug = result.mentions[0]
    assert bug.title == "--offline flag still phones home" and bug.kind == "post"
    assert "acme build --offline\n# tcpdump shows a request to license.acme.example.com" in bug.text
    assert bug.url == f"{server.url}/t/offline-flag-still-phones-home/8830/1" and bug.extra["trust_level"] == 1
    assert result.mentions[1].kind == "comment" and result.mentions[1].text.endswith("on a Sunday")
    assert json.loads(result.cursor) == {"last_id": 41902, "before": None, "top": None, "since": 1795000000}
    below = source.fetch("latest", '{"last_id": 41870, "since": 1795000000}')  # 41871-41876 may lie below
    assert not below.done and json.loads(below.cursor)["before"] == 41877
    assert "before" not in seen(server, LATEST)[0].query


def test_latest_mode_walks_down_to_the_last_stored_post(server):
    source = make(server, mode="latest")
    first = source.fetch("latest", '{"last_id": 41000, "since": 1795000000}')
    assert not first.done
    assert json.loads(first.cursor) == {"last_id": 41000, "before": 41877, "top": 41902, "since": 1795000000}
    older = fixture_json("discourse/latest_posts.json")
    for i, post in enumerate(older["latest_posts"]):
        post["id"] = 41001 - i  # reaches the stored ones
    server.routes[LATEST] = Reply(body=body(older))
    last = source.fetch("latest", first.cursor)
    assert seen(server, LATEST)[-1].query["before"] == ["41877"]
    assert [m.native_id.split(":")[-1] for m in last.mentions] == ["41001"]  # 41000 and below are stored
    assert last.done and json.loads(last.cursor)["last_id"] == 41902


def test_latest_mode_first_run_goes_back_to_its_lookback(server):
    result = make(server, mode="latest").fetch("latest", None)  # every post is within the 2 days
    assert not result.done
    old = fixture_json("discourse/latest_posts.json")
    old["latest_posts"][-1]["created_at"] = "2026-11-01T00:00:00Z"
    server.routes[LATEST] = Reply(body=body(old))
    assert make(server, mode="latest").fetch("latest", None).done


# ------------------------------------------------------------------------------ limits and errors


def test_a_short_429_is_waited_out_once(server):
    sleeps: list[float] = []
    calls = []

    def limited_once(s: Seen) -> Reply:
        calls.append(s)
        if len(calls) == 1:
            return Reply(429, fixture_bytes("discourse/error_rate_limit.json"), headers={"Retry-After": "5"})
        return Reply(body=fixture_bytes("discourse/search.json"))

    server.routes[SEARCH] = limited_once
    result = make(server, sleeps=sleeps).fetch("acme", None)
    assert len(result.mentions) == 3 and sleeps == [5.0] and len(calls) == 2


def test_a_long_rate_limit_fails_the_run_and_holds_requests_until_it_ends(server, tmp_path):
    clock = Clock()
    server.routes[SEARCH] = Reply(429, fixture_bytes("discourse/error_rate_limit.json"))  # no Retry-After
    source = make(server, clock=clock)
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, source, Matcher(BRAND.terms))
    assert not stats.ok and not stats.auth_failed and "retry in 37s" in stats.errors[0]  # extras.wait_seconds
    server.routes[SEARCH] = Reply(body=fixture_bytes("discourse/search.json"))
    clock.now = NOW + timedelta(seconds=30)
    assert source.fetch("acme", None).mentions == [] and len(seen(server, SEARCH)) == 1
    clock.now = NOW + timedelta(seconds=38)
    assert len(source.fetch("acme", None).mentions) == 3
    store.close()


def test_a_rate_limit_body_under_another_status_is_a_rate_limit(server):
    server.routes[SEARCH] = Reply(422, fixture_bytes("discourse/error_rate_limit.json"))
    with pytest.raises(SourceError) as info:
        make(server).fetch("acme", None)
    assert info.value.retry_after == 37 and not isinstance(info.value, SourceAuthError)


def test_the_searchs_own_slow_down_is_a_rate_limit(server):
    data = fixture_json("discourse/search.json")
    data["posts"], data["topics"] = [], []
    data["grouped_search_result"]["error"] = "You’ve performed this action too many times. Please wait a few seconds."
    server.routes[SEARCH] = Reply(body=body(data))
    with pytest.raises(SourceError, match="too many times") as info:
        make(server).fetch("acme", None)
    assert info.value.retry_after == 60


def test_a_redirect_names_where_the_forum_lives(server):
    server.routes[SEARCH] = Reply(301, b"", headers={"Location": "https://forum.example.org/search.json?q=acme"})
    with pytest.raises(SourceError, match="redirects to https://forum.example.org/search.json"):
        make(server).fetch("acme", None)


def test_a_forum_on_a_private_address_is_refused(server, tmp_path):
    store, stats = collect(tmp_path, make(server, forum="http://forum.internal"))
    assert not stats.ok and "non-public" in stats.errors[0] and "10.0.0.7" in stats.errors[0]
    assert server.seen == []
    store.close()


def test_not_a_discourse_forum(server):
    del server.routes[SEARCH]
    with pytest.raises(SourceError, match="is .* a Discourse forum"):
        make(server).fetch("acme", None)


# ------------------------------------------------------------------------------ settings


def test_forum_or_base_url_and_both_api_headers():
    assert DiscourseSettings(type="discourse", base_url="https://meta.discourse.org/").forum == \
        "https://meta.discourse.org"
    with pytest.raises(ValidationError, match="forum is required"):
        DiscourseSettings(type="discourse")
    with pytest.raises(ValidationError, match="different servers"):
        DiscourseSettings(type="discourse", forum="https://a.example", base_url="https://b.example")
    with pytest.raises(ValidationError, match="go together"):
        DiscourseSettings(type="discourse", forum="https://a.example", api_key=SecretStr("k"))
    with pytest.raises(ValidationError, match="ENV"):
        DiscourseSettings(type="discourse", forum="https://a.example", api_key="literal", api_username="literal")
