"""GitHub discussions (``discussions: true``): the GraphQL search, served from real-shaped
fixtures on 127.0.0.1 through the real (guarded) HTTP client. What GraphQL adds to the REST
source: a POST with the query and its variables, a token it cannot do without, answers of
200 that carry ``errors`` (rate limit, a schema that moved, a refused query, a node hidden by
SAML beside the data), ``rateLimit`` in the body, and hostile nodes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from monitor import pipeline
from monitor.cli import main
from monitor.collect.github import DISCUSSIONS, GitHubSource
from monitor.config import Brand, GitHubSettings
from monitor.errors import ApiChangedError, CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.store import Store
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = Brand(name="Acme", terms={"include": ["acme", "acme cloud"]})
ERRORS = fixture_json("github/graphql_errors.json")


def _source(server: FixtureServer, token: str | None = "ghp-abc", **settings) -> GitHubSource:
    ss = GitHubSettings(type="github", base_url=settings.pop("base_url", server.url), discussions=True,
                        token=SecretStr(token) if token else None, **settings)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",), resolve=FakeResolver(), retries=0, sleep=lambda s: None)
    return GitHubSource(brand=BRAND, settings=ss, http_factory=HttpFactory(policy), now=lambda: NOW)


def _answer(nodes=None, remaining: int | None = None) -> bytes:
    data = fixture_json("github/search_discussions.json")
    if nodes is not None:
        data["data"]["search"]["nodes"] = nodes
    if remaining is not None:
        data["data"]["rateLimit"]["remaining"] = remaining
    return json.dumps(data).encode()


def _header(seen, name: str) -> str | None:
    return {k.lower(): v for k, v in seen.headers.items()}.get(name.lower())


@pytest.fixture
def server():
    with FixtureServer() as s:
        s.routes["/graphql"] = Reply(body=_answer())
        s.routes["/search/issues"] = Reply(body=json.dumps(fixture_json("github/search_issues.json")).encode())
        s.routes["/users/*"] = Reply(body=json.dumps(fixture_json("github/user.json")).encode())
        yield s


def test_each_term_gets_a_discussions_query_only_with_a_token(server, caplog):
    assert _source(server).queries() == ["acme", "acme cloud", "discussions:acme", "discussions:acme cloud"]
    with caplog.at_level("INFO"):
        assert _source(server, token=None).queries() == ["acme", "acme cloud"]
    assert "discussions need a token" in caplog.text
    plain = GitHubSettings(type="github", base_url=server.url)
    assert not plain.discussions and plain.config_notes() == []


def test_discussions_become_mentions(server):
    result = _source(server).fetch(DISCUSSIONS + "acme", None)
    assert result.done and result.skipped == 0 and len(result.mentions) == 3
    by_id = {m.native_id: m for m in result.mentions}
    first, empty, third = by_id["D_kwDOJq3nB84AYx2Q"], by_id["D_kwDOHf0a1c4AYwL7"], by_id["D_kwDOFz8kTM4AYvRk"]
    assert {m.kind for m in result.mentions} == {"discussion"}
    assert first.title == "Is Acme's remote cache worth it for a monorepo of 40 services?"
    assert "key for generated protos" in first.text and "$ acme build --remote-cache=grpc://cache:9092" in first.text
    assert first.url == "https://github.com/octo-org/build-tools/discussions/1873"
    assert first.author.handle == "mona-dev" and first.author.url == "https://github.com/mona-dev"
    assert first.created_at == datetime(2026, 11, 20, 10, 41, 19, tzinfo=UTC)
    assert first.extra == {"repository": "octo-org/build-tools", "number": 1873, "comments": 7,
                           "updated_at": "2026-11-20T11:58:02Z"}
    assert empty.author is None and empty.text == empty.title == "Acme CLI on Windows ARM64"
    assert third.author.handle == "hubot"


def test_the_request_is_a_graphql_post_with_the_window(server):
    _source(server).fetch(DISCUSSIONS + "acme cloud", None)
    seen = server.seen[-1]
    assert seen.method == "POST" and seen.path == "/graphql"
    assert _header(seen, "Authorization") == "Bearer ghp-abc"
    assert _header(seen, "Content-Type") == "application/json"
    body = json.loads(seen.body)
    assert "search(query: $q, type: DISCUSSION, first: $first)" in body["query"]
    assert body["variables"] == {"q": '"acme cloud" in:title,body,comments created:>=2026-11-18T11:50:00Z '
                                      'sort:created-desc', "first": 50}


def test_enterprise_graphql_endpoint(server):
    server.routes["/api/graphql"] = Reply(body=_answer())
    result = _source(server, base_url=f"{server.url}/api/v3").fetch(DISCUSSIONS + "acme", None)
    assert len(result.mentions) == 3 and server.seen[-1].path == "/api/graphql"


def test_a_full_page_walks_the_window_down(server):
    base = fixture_json("github/search_discussions.json")["data"]["search"]["nodes"][0]
    nodes = []
    for i in range(50):
        node = copy.deepcopy(base)
        node["id"] = f"D_kwDO{i:08d}"
        node["createdAt"] = (NOW - timedelta(minutes=10 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        nodes.append(node)
    server.routes["/graphql"] = Reply(body=_answer(nodes))
    src = _source(server)
    first = src.fetch(DISCUSSIONS + "acme", None)
    assert not first.done and len(first.mentions) == 50
    server.routes["/graphql"] = Reply(body=_answer([]))
    second = src.fetch(DISCUSSIONS + "acme", first.cursor)
    q = json.loads(server.seen[-1].body)["variables"]["q"]
    assert "created:2026-11-18T11:50:00Z..2026-11-20T11:01:00Z" in q
    assert second.done and json.loads(second.cursor)["since"] == int((NOW - timedelta(minutes=10)).timestamp())


def test_no_points_left_ends_the_run_after_this_page(server):
    base = fixture_json("github/search_discussions.json")["data"]["search"]["nodes"][0]
    nodes = [{**base, "id": f"D_{i}", "createdAt": (NOW - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
             for i in range(50)]
    server.routes["/graphql"] = Reply(body=_answer(nodes, remaining=0))
    result = _source(server).fetch(DISCUSSIONS + "acme", None)
    assert result.done and len(result.mentions) == 50


def test_rate_limited_errors_are_retryable_with_the_reset(server):
    server.routes["/graphql"] = Reply(body=json.dumps(ERRORS["rate_limited"]).encode(),
                                      headers={"x-ratelimit-remaining": "0",
                                               "x-ratelimit-reset": str(int(NOW.timestamp()) + 90)})
    with pytest.raises(SourceError) as info:
        _source(server).fetch(DISCUSSIONS + "acme", None)
    assert not isinstance(info.value, SourceAuthError)
    assert info.value.retry_after == 90 and "rate limit" in str(info.value)


def test_a_field_github_no_longer_knows_is_an_api_change(server):
    server.routes["/graphql"] = Reply(body=json.dumps(ERRORS["undefined_field"]).encode())
    with pytest.raises(ApiChangedError) as info:
        _source(server).fetch(DISCUSSIONS + "acme", None)
    assert "Field 'bodyText' doesn't exist on type 'Discussion'" in str(info.value)


def test_other_errors_without_data_name_the_error(server):
    server.routes["/graphql"] = Reply(body=json.dumps(ERRORS["parse_error"]).encode())
    with pytest.raises(SourceError) as info:
        _source(server).fetch(DISCUSSIONS + "acme", None)
    assert not isinstance(info.value, ApiChangedError) and "Parse error" in str(info.value)


def test_errors_beside_data_keep_the_rest(server, caplog):
    server.routes["/graphql"] = Reply(body=json.dumps(ERRORS["saml_partial"]).encode())
    with caplog.at_level("WARNING"):
        result = _source(server).fetch(DISCUSSIONS + "acme", None)
    assert [m.native_id for m in result.mentions] == ["D_kwDOFz8kTM4AYvRk"] and result.skipped == 0
    assert "SAML" in caplog.text


def test_bad_credentials_and_forbidden_are_auth_failures(server):
    server.routes["/graphql"] = Reply(401, json.dumps(ERRORS["bad_credentials"]).encode())
    with pytest.raises(SourceAuthError):
        _source(server, token="ghp-expired").fetch(DISCUSSIONS + "acme", None)
    with pytest.raises(SourceAuthError):  # a cursor from a config that had the token: no anonymous call
        _source(server, token=None).fetch(DISCUSSIONS + "acme", None)
    assert all(s.headers.get("Authorization") or s.headers.get("authorization") for s in server.seen)


@pytest.mark.parametrize("body", [b"[]", b'{"data": {"search": {"nodes": {"a": 1}}}}', b'{"data": null}',
                                  b'{"data": {"search": null}}', b'{"data": {"search": {"nodes": [',
                                  b"<html><body>Unicorn!</body></html>"])
def test_answers_of_the_wrong_shape_are_malformed(server, body):
    server.routes["/graphql"] = Reply(body=body)
    with pytest.raises(MalformedResponseError):
        _source(server).fetch(DISCUSSIONS + "acme", None)


def test_hostile_nodes_are_skipped_and_counted(server):
    good = fixture_json("github/search_discussions.json")["data"]["search"]["nodes"][0]
    bad = [1, "x", {**good, "id": 5}, {**good, "id": ""}, {**good, "createdAt": "2999-01-01T00:00:00Z"},
           {**good, "createdAt": None}, {**good, "author": {"login": ["x"]}}, {**good, "bodyText": {"md": 1}},
           {k: v for k, v in good.items() if k != "id"}]
    server.routes["/graphql"] = Reply(body=_answer([good, None, {}, *bad]))
    result = _source(server).fetch(DISCUSSIONS + "acme", None)
    assert len(result.mentions) == 1 and result.skipped == len(bad)


def test_script_and_huge_bodies(server):
    good = fixture_json("github/search_discussions.json")["data"]["search"]["nodes"][0]
    nodes = [{**good, "bodyText": '<script>alert("x")</script>Acme <b>rocks</b> &amp; <3 <generated> Vec<String>'},
             {**good, "id": "D_big", "bodyText": "acme " * 200_000}]
    server.routes["/graphql"] = Reply(body=_answer(nodes))
    texts = [m.text for m in _source(server).fetch(DISCUSSIONS + "acme", None).mentions]
    assert "<script" not in texts[0] and "alert" not in texts[0] and "<b>" not in texts[0]
    assert texts[0].endswith("Acme rocks & <3 <generated> Vec<String>")  # plain text: no element, kept as typed
    assert texts[1].startswith("acme acme")


@pytest.mark.parametrize("cursor", ["nonsense", '{"since": "x"}'])
def test_unreadable_cursor_raises_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        _source(server).fetch(DISCUSSIONS + "acme", cursor)
    assert server.seen == []


def test_collect_stores_issues_and_discussions_with_their_own_cursors(server, tmp_path):
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    src = _source(server, fetch_followers=False)
    stats = pipeline.collect(store, src, Matcher(BRAND.terms))
    assert stats.ok and stats.new == 6
    kinds = {r["kind"] for r in store.query("SELECT kind FROM mentions")}
    assert kinds == {"issue", "pull_request", "discussion"}
    assert store.get_cursor(src.key, "discussions:acme") is not None


def test_check_says_discussions_need_a_token(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {tmp_path / 'm.db'}\nbrands:\n  - name: Acme\n    terms: {{include: [acme]}}\n"
                   "    sources: [{type: github, discussions: true}]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["-c", str(cfg), "check"])
    assert result.exit_code == 0, result.output
    assert "note: Acme:github: discussions need a token" in result.output
