"""Lemmy: what a v3 search page becomes (posts and comments, ``ap_id`` as id and URL, markdown
kept as typed, no reach), how older and drifted shapes are read (naive 0.18 times, a missing
``published``, ``ap_id`` or creator), how the cursor walks, and how the instance's limits are
kept: the source's own search budget, 429, ``rate_limit_error``; an instance without API v3
(Lemmy 1.0: /api/v4 only) is named as such. Real-shaped fixtures served on 127.0.0.1 through the
real, guarded HTTP client."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from monitor import pipeline
from monitor.collect.lemmy import LemmySource
from monitor.config import LemmySettings, Terms
from monitor.errors import CursorError, SourceAuthError, SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.store import Store
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, fixture_bytes, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = SimpleNamespace(name="Acme", terms=Terms(include=["acme"]))
SEARCH = "/api/v3/search"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server():
    with FixtureServer() as s:
        yield s


def make(server, *, clock=None, retries: int = 0, allow: bool = True, instance: str | None = None, **settings):
    settings = LemmySettings(type="lemmy", instance=instance or server.url, **settings)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",) if allow else (),
                        resolve=FakeResolver({"lemmy.internal": ["10.0.0.7"]}), retries=retries,
                        sleep=lambda s: None)
    return LemmySource(brand=BRAND, settings=settings, http_factory=HttpFactory(policy), now=clock or (lambda: NOW))


def body(data) -> bytes:
    return json.dumps(data).encode()


def searches(server):
    return [s for s in server.seen if s.path == SEARCH]


def collect(tmp_path, source):
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    return store, pipeline.collect(store, source, Matcher(BRAND.terms))


# ------------------------------------------------------------------------------ a page


def test_posts_and_comments_become_mentions(server):
    data = fixture_json("lemmy/search.json")
    data["comments"][0]["comment"]["content"] += " <Vec<T>> in the error message didn't help either."
    server.routes[SEARCH] = Reply(body=body(data))
    result = make(server).fetch("acme", None)
    assert result.done and result.skipped == 0
    link, text_post, comment, remote_comment = result.mentions
    assert link.kind == "post" and link.native_id == link.url == "https://programming.dev/post/20340555"
    assert link.title == "Acme 4.0 released: remote cache is now free for open source" and link.text == link.title
    assert link.canonical_url == "https://acme.example.com/blog/acme-4"  # a link post: the page it points to
    assert link.extra["link"].startswith("https://acme.example.com/blog/acme-4?utm_source=lemmy")
    assert link.extra["community"] == "devops@programming.dev" and link.extra["score"] == 41
    assert link.extra["comments"] == 8
    assert link.author is not None and link.author.handle == "mbrandt@programming.dev"
    assert link.author.display_name == "Mara Brandt" and link.author.url == "https://programming.dev/u/mbrandt"
    assert link.author.reach is None and link.author.reach_kind is None  # Lemmy has no followers
    assert link.created_at == datetime(2026, 11, 20, 10, 12, 44, 877010, tzinfo=UTC)
    assert text_post.canonical_url is None and "We have **two** repos" in text_post.text
    assert '"free under 10 seats" & I can\'t tell' in text_post.text
    assert comment.kind == "comment" and comment.title is None
    assert comment.native_id == "https://lemmy.world/comment/11904377"
    assert "<Vec<T>> in the error message" in comment.text  # markdown: <...> kept as typed
    assert '```toml\n[cache]\nmode = "remote"\n```' in comment.text
    assert comment.extra["post_title"] == "What are you all using for build caching these days?"
    assert comment.extra["post_url"] == "https://programming.dev/post/20331872" and comment.extra["child_count"] == 2
    assert remote_comment.author is not None and remote_comment.author.handle == "kessel@feddit.de"
    assert remote_comment.author.display_name is None and remote_comment.extra["score"] == -2
    (req,) = searches(server)
    q = {k: v[0] for k, v in req.query.items()}
    assert q == {"q": "acme", "type_": "All", "sort": "New", "listing_type": "All", "page": "1", "limit": "50"}


def test_types_and_listing_type_narrow_the_search(server):
    server.routes[SEARCH] = Reply(body=body({"type_": "Posts", "posts": [], "communities": [], "users": []}))
    result = make(server, types=["posts"], listing_type="Local").fetch("acme", None)
    assert result.mentions == [] and result.done  # a missing comments list is an empty one
    q = searches(server)[0].query
    assert q["type_"] == ["Posts"] and q["listing_type"] == ["Local"]


def test_a_comment_matches_on_its_own_text_not_its_posts_title(server, tmp_path):
    data = fixture_json("lemmy/search.json")
    data["comments"][1]["comment"]["content"] = "Same here, support never answered."  # the post title names Acme
    server.routes[SEARCH] = Reply(body=body(data))
    store, stats = collect(tmp_path, make(server))
    assert stats.ok and stats.new == 3
    assert "https://feddit.de/comment/4418230" not in {r["native_id"] for r in store.query("SELECT * FROM mentions")}
    store.close()


# ------------------------------------------------------------------------------ drift


def test_older_and_drifted_shapes_are_read_and_what_is_derived_is_marked(server):
    data = fixture_json("lemmy/search.json")
    data["posts"][0]["post"]["published"] = "2026-11-20T10:12:44.877010"  # Lemmy 0.18: naive UTC
    del data["posts"][1]["post"]["published"]  # the time comes from the counts
    del data["posts"][1]["post"]["ap_id"]  # the id from the instance's own
    del data["comments"][0]["comment"]["published"]
    del data["comments"][0]["counts"]  # no time anywhere: the fetch time, marked
    del data["comments"][1]["creator"]
    del data["comments"][1]["community"]
    server.routes[SEARCH] = Reply(body=body(data))
    source = make(server)
    result = source.fetch("acme", None)
    assert result.skipped == 0 and len(result.mentions) == 4
    naive, no_ap_id, no_time, no_creator = result.mentions
    assert naive.created_at == datetime(2026, 11, 20, 10, 12, 44, 877010, tzinfo=UTC)
    assert no_ap_id.created_at == datetime(2026, 11, 19, 15, 27, 9, 550000, tzinfo=UTC)
    assert no_ap_id.native_id == f"{server.url}/post/3921877" and no_ap_id.extra["id_derived"] is True
    assert no_time.created_at == NOW and no_time.extra["created_at_estimated"] is True
    assert "score" not in no_time.extra
    assert no_creator.author is None and "community" not in no_creator.extra
    assert json.loads(result.cursor)["since"] == int(naive.created_at.timestamp())  # an estimate never moves it


def test_deleted_and_removed_items_are_dropped_not_counted(server):
    data = fixture_json("lemmy/search.json")
    data["posts"][0]["post"]["deleted"] = True
    data["comments"][0]["comment"]["removed"] = True
    data["comments"][1]["comment"]["content"] = ""
    server.routes[SEARCH] = Reply(body=body(data))
    result = make(server).fetch("acme", None)
    assert [m.native_id for m in result.mentions] == ["https://lemmy.world/post/3921877"]
    assert result.skipped == 0


@pytest.mark.parametrize("damage", [
    lambda v: v.pop("post"),
    lambda v: v.update(post="a post"),
    lambda v: v["post"].update(id=None, ap_id=None),
    lambda v: v["post"].update(name=None, body=None),
])
def test_an_item_without_id_or_text_is_skipped_alone(server, damage):
    data = fixture_json("lemmy/search.json")
    damage(data["posts"][0])
    server.routes[SEARCH] = Reply(body=body(data))
    result = make(server).fetch("acme", None)
    assert result.skipped == 1 and len(result.mentions) == 3


def test_a_page_of_only_broken_items_is_an_api_change(server, tmp_path):
    data = fixture_json("lemmy/search.json")
    for view in data["posts"] + data["comments"]:
        view.pop("post")
        view.pop("comment", None)
    server.routes[SEARCH] = Reply(body=body(data))
    store, stats = collect(tmp_path, make(server))
    assert stats.api_changed is not None and not stats.ok
    store.close()


# ------------------------------------------------------------------------------ the cursor


def _full_page(data, newest: datetime, step: timedelta):
    view = data["posts"][1]
    posts = []
    for i in range(50):
        v = copy.deepcopy(view)
        v["post"]["id"] = 5_000_000 + i
        v["post"]["ap_id"] = f"https://lemmy.world/post/{5_000_000 + i}"
        v["post"]["published"] = (newest - i * step).isoformat().replace("+00:00", "Z")
        posts.append(v)
    return {"posts": posts, "comments": []}


def test_a_full_page_inside_the_window_leads_to_the_next_then_since_moves_to_the_newest(server):
    data = fixture_json("lemmy/search.json")
    server.routes[SEARCH] = Reply(body=body(_full_page(data, NOW - timedelta(minutes=5), timedelta(minutes=10))))
    source = make(server)
    first = source.fetch("acme", None)
    assert not first.done and len(first.mentions) == 50
    state = json.loads(first.cursor)
    assert state["page"] == 2 and state["top"] == int((NOW - timedelta(minutes=5)).timestamp())
    server.routes[SEARCH] = Reply(body=body({"posts": [], "comments": []}))
    last = source.fetch("acme", first.cursor)
    assert last.done and searches(server)[-1].query["page"] == ["2"]
    assert json.loads(last.cursor) == {"since": state["top"], "page": 1, "top": None}


def test_a_full_page_reaching_below_since_ends_the_walk(server):
    data = fixture_json("lemmy/search.json")
    server.routes[SEARCH] = Reply(body=body(_full_page(data, NOW - timedelta(minutes=5), timedelta(hours=2))))
    result = make(server).fetch("acme", None)  # 50 posts over 4 days: the 2-day window is covered
    assert result.done and json.loads(result.cursor)["page"] == 1


@pytest.mark.parametrize("cursor", ["not json", '{"since": "x"}', '{"since": 1795168971, "page": 0}',
                                    json.dumps({"since": int((NOW + timedelta(days=3)).timestamp())})])
def test_an_unreadable_cursor_fails_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        make(server).fetch("acme", cursor)
    assert server.seen == []


def test_backfill_cursor_starts_at_the_date(server):
    cursor = make(server).cursor_since("acme", NOW - timedelta(days=30))
    assert json.loads(cursor)["since"] == int((NOW - timedelta(days=30)).timestamp())


# ------------------------------------------------------------------------------ limits and errors


def test_the_source_keeps_to_its_search_budget(server):
    clock = Clock()
    server.routes[SEARCH] = Reply(body=fixture_bytes("lemmy/search.json"))
    source = make(server, clock=clock, search_budget=2)
    source.fetch("acme", None)
    source.fetch("acme", None)
    held = source.fetch("acme", '{"since": 1795100000, "page": 3, "top": 1795168000}')
    assert held.mentions == [] and held.done and json.loads(held.cursor)["page"] == 3  # kept for the next run
    assert len(searches(server)) == 2
    clock.now = NOW + timedelta(minutes=10, seconds=1)
    assert len(source.fetch("acme", None).mentions) == 4
    assert len(searches(server)) == 3


def test_429_fails_the_run_and_no_request_goes_out_until_the_wait_is_over(server, tmp_path):
    clock = Clock()
    server.routes[SEARCH] = Reply(429, b"", headers={"Retry-After": "120"})
    source = make(server, clock=clock)
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, source, Matcher(BRAND.terms))
    assert not stats.ok and not stats.auth_failed and "rate limited" in stats.errors[0]
    server.routes[SEARCH] = Reply(body=fixture_bytes("lemmy/search.json"))
    clock.now = NOW + timedelta(seconds=60)
    assert source.fetch("acme", None).mentions == [] and len(searches(server)) == 1
    clock.now = NOW + timedelta(seconds=121)
    assert len(source.fetch("acme", None).mentions) == 4
    store.close()


@pytest.mark.parametrize(("status", "headers", "wait", "why"), [
    (429, {}, 60, "rate limited"), (503, {"Retry-After": "90"}, 90, r"unavailable \(HTTP 503\)")])
def test_a_429_without_retry_after_or_a_503_naming_its_wait_hold_requests(server, status, headers, wait, why):
    clock = Clock()
    server.routes[SEARCH] = Reply(status, b"", headers=headers)
    source = make(server, clock=clock)
    with pytest.raises(SourceError, match=why) as info:
        source.fetch("acme", None)
    assert info.value.retry_after == wait
    clock.now = NOW + timedelta(seconds=wait - 1)
    source.fetch("acme", None)
    assert len(searches(server)) == 1


def test_a_rate_limit_error_body_waits_too(server):
    clock = Clock()
    server.routes[SEARCH] = Reply(400, fixture_bytes("lemmy/error_rate_limit.json"))
    source = make(server, clock=clock)
    with pytest.raises(SourceError) as info:
        source.fetch("acme", None)
    assert info.value.retry_after == 60 and not isinstance(info.value, SourceAuthError)
    clock.now = NOW + timedelta(seconds=30)
    source.fetch("acme", None)
    assert len(searches(server)) == 1


def test_an_instance_without_api_v3_is_named_as_such(server, tmp_path):
    server.routes["/api/v4/search"] = Reply(body=b'{"items": []}')  # Lemmy 1.0: v4 only, v3 is 404
    store, stats = collect(tmp_path, make(server))
    assert not stats.ok and not stats.auth_failed
    assert "no Lemmy API v3" in stats.errors[0] and "/api/v4" in stats.errors[0]
    store.close()


def test_other_lemmy_errors_are_named(server):
    server.routes[SEARCH] = Reply(400, fixture_bytes("lemmy/error_not_found.json"))
    with pytest.raises(SourceError, match="couldnt_find_object"):
        make(server).fetch("acme", None)


@pytest.mark.parametrize("status", [400, 401, 403])
def test_an_instance_that_refuses_anonymous_reads_is_an_auth_failure(server, tmp_path, status):
    server.routes[SEARCH] = Reply(status, b'{"error": "not_logged_in"}')  # a private instance
    store, stats = collect(tmp_path, make(server))
    assert not stats.ok and stats.auth_failed
    store.close()


def test_an_instance_on_a_private_address_is_refused(server, tmp_path):
    store, stats = collect(tmp_path, make(server, allow=False, instance="http://lemmy.internal"))
    assert not stats.ok and "non-public" in stats.errors[0] and "10.0.0.7" in stats.errors[0]
    assert server.seen == []
    store.close()


# ------------------------------------------------------------------------------ settings


def test_instance_or_base_url_names_the_server():
    assert LemmySettings(type="lemmy", base_url="https://lemmy.world/").instance == "https://lemmy.world"
    assert LemmySettings(type="lemmy", instance="https://lemmy.world", base_url="https://lemmy.world").instance
    with pytest.raises(ValidationError, match="instance is required"):
        LemmySettings(type="lemmy")
    with pytest.raises(ValidationError, match="different servers"):
        LemmySettings(type="lemmy", instance="https://lemmy.world", base_url="https://lemmy.ml")
    with pytest.raises(ValidationError):
        LemmySettings(type="lemmy", instance="https://lemmy.world", types=[])
