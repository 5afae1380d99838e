"""GitHub source: issues and pull requests from the REST search API, served from
real-shaped fixtures on 127.0.0.1 through the real (guarded) HTTP client. The contract and
hostile sets it shares with every source are in test_source_contract.py; here: what is
GitHub's own (markdown, PRs, null bodies, the created: window, rate limits, 422, reach)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from monitor.collect.github import GitHubSource, search_term
from monitor.config import Brand, GitHubSettings
from monitor.errors import CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = Brand(name="Acme", terms={"include": ["acme", "acme cloud"]})


def _source(server: FixtureServer, **settings) -> GitHubSource:
    if "token" in settings:
        settings["token"] = SecretStr(settings["token"])  # as the loader makes of "${ENV}"
    ss = GitHubSettings(type="github", base_url=settings.pop("base_url", server.url), **settings)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",), resolve=FakeResolver(), retries=0, sleep=lambda s: None)
    return GitHubSource(brand=BRAND, settings=ss, http_factory=HttpFactory(policy), now=lambda: NOW)


def _page(items=None, **top) -> bytes:
    data = fixture_json("github/search_issues.json")
    if items is not None:
        data["items"] = items
    data.update(top)
    return json.dumps(data).encode()


def _header(seen, name: str) -> str | None:
    return {k.lower(): v for k, v in seen.headers.items()}.get(name.lower())


@pytest.fixture
def server():
    with FixtureServer() as s:
        s.routes["/search/issues"] = Reply(body=_page())
        s.routes["/users/*"] = Reply(body=json.dumps(fixture_json("github/user.json")).encode())
        yield s


def test_issues_and_pull_requests_become_mentions(server):
    result = _source(server).fetch("acme", None)
    assert result.done and result.skipped == 0
    by_id = {m.native_id: m for m in result.mentions}
    issue, pr, ghost = by_id["2690011412"], by_id["2689870057"], by_id["2689512009"]
    assert issue.kind == "issue" and pr.kind == "pull_request"
    assert issue.title == "Remote cache misses after upgrading to Acme 3.2"
    assert "```\n$ acme build --remote-cache=grpc://cache:9092\nWARN cache miss: key mismatch\n```" in issue.text
    assert issue.url == "https://github.com/octo-org/build-tools/issues/412"
    assert issue.author.handle == "mona-dev" and issue.author.url == "https://github.com/mona-dev"
    assert issue.extra == {"repository": "octo-org/build-tools", "number": 412, "state": "open", "comments": 4,
                           "updated_at": "2026-11-20T11:02:40Z"}
    assert issue.created_at == datetime(2026, 11, 20, 9, 14, 2, tzinfo=UTC)
    assert ghost.text == ghost.title == "Add the Acme VS Code extension to the list"  # body: null


def test_the_query_names_the_term_the_fields_and_the_window(server):
    _source(server).fetch("acme cloud", None)
    seen = server.seen[-1]
    assert seen.path == "/search/issues"
    assert seen.query["q"] == ['"acme cloud" in:title,body,comments created:>=2026-11-18T11:50:00Z']
    assert seen.query["sort"] == ["created"] and seen.query["order"] == ["desc"]
    assert seen.query["per_page"] == ["100"]
    assert _header(seen, "Authorization") is None  # no token: anonymous search
    assert _header(seen, "Accept") == "application/vnd.github+json"


def test_a_token_is_sent_as_bearer(server):
    _source(server, token="ghp-abc").fetch("acme", None)
    assert _header(server.seen[-1], "Authorization") == "Bearer ghp-abc"


def test_enterprise_base_url_keeps_its_path(server):
    server.routes["/api/v3/search/issues"] = Reply(body=_page())
    result = _source(server, base_url=f"{server.url}/api/v3").fetch("acme", None)
    assert len(result.mentions) == 3 and server.seen[-1].path == "/api/v3/search/issues"


def test_markdown_keeps_angle_brackets_and_code_drops_html(server):
    items = fixture_json("github/search_issues.json")["items"][:1]
    items[0]["body"] = ("Crash: `'config': <praw.Config object at 0x7f3a>` then <your-token> is printed\n\n"
                        "<details><summary>log</summary>\n\n    Vec<String> in an indented block\n</details>\n"
                        "<script>alert(1)</script>&amp; done")
    server.routes["/search/issues"] = Reply(body=_page(items))
    text = _source(server).fetch("acme", None).mentions[0].text
    assert "`'config': <praw.Config object at 0x7f3a>`" in text and "<your-token>" in text
    assert "    Vec<String> in an indented block" in text
    assert "<details>" not in text and "<script" not in text and "alert(1)" not in text and "& done" in text


def test_huge_body_is_kept_whole_as_text(server):
    items = fixture_json("github/search_issues.json")["items"][:1]
    items[0]["body"] = "acme " * 200_000
    server.routes["/search/issues"] = Reply(body=_page(items))
    result = _source(server).fetch("acme", None)
    assert len(result.mentions) == 1 and result.mentions[0].text.startswith("acme acme")


def test_a_full_page_walks_the_window_down_then_finishes(server):
    base = fixture_json("github/search_issues.json")["items"][0]
    items = []
    for i in range(100):
        it = copy.deepcopy(base)
        it["id"] = 1000 + i
        it["created_at"] = (NOW - timedelta(minutes=10 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        items.append(it)
    server.routes["/search/issues"] = Reply(body=_page(items))
    src = _source(server)
    first = src.fetch("acme", None)
    state = json.loads(first.cursor)
    assert not first.done and len(first.mentions) == 100
    assert state["upto"] == int((NOW - timedelta(minutes=109)).timestamp())
    assert state["top"] == int((NOW - timedelta(minutes=10)).timestamp())
    server.routes["/search/issues"] = Reply(body=_page([]))
    second = src.fetch("acme", first.cursor)
    assert "created:2026-11-18T11:50:00Z..2026-11-20T10:11:00Z" in server.seen[-1].query["q"][0]
    assert second.done and json.loads(second.cursor) == {"since": state["top"], "upto": None, "top": None}


def test_incomplete_results_keep_the_page(server):
    server.routes["/search/issues"] = Reply(body=_page(incomplete_results=True))
    assert len(_source(server).fetch("acme", None).mentions) == 3


def test_no_search_quota_left_ends_the_run_after_this_page(server):
    server.routes["/search/issues"] = Reply(body=_page(), headers={"x-ratelimit-remaining": "0",
                                                                   "x-ratelimit-reset": str(int(NOW.timestamp()) + 40)})
    result = _source(server).fetch("acme", None)
    assert result.done and len(result.mentions) == 3


def test_secondary_rate_limit_is_retryable_with_the_reset(server):
    body = json.dumps({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                                  "try again.", "documentation_url": "https://docs.github.com/rest"}).encode()
    server.routes["/search/issues"] = Reply(403, body, headers={"x-ratelimit-reset": str(int(NOW.timestamp()) + 60)})
    with pytest.raises(SourceError) as info:
        _source(server).fetch("acme", None)
    assert not isinstance(info.value, SourceAuthError)
    assert info.value.status == 403 and info.value.retry_after == 60 and "rate limit" in str(info.value)


def test_primary_rate_limit_403_uses_the_remaining_header(server):
    server.routes["/search/issues"] = Reply(403, b'{"message": "API rate limit exceeded for 203.0.113.7."}',
                                            headers={"x-ratelimit-remaining": "0",
                                                     "x-ratelimit-reset": str(int(NOW.timestamp()) + 25)})
    with pytest.raises(SourceError) as info:
        _source(server).fetch("acme", None)
    assert not isinstance(info.value, SourceAuthError) and info.value.retry_after == 25


def test_429_honours_retry_after(server):
    server.routes["/search/issues"] = Reply(429, b'{"message": "Too Many Requests"}', headers={"retry-after": "17"})
    with pytest.raises(SourceError) as info:
        _source(server).fetch("acme", None)
    assert not isinstance(info.value, SourceAuthError) and info.value.retry_after == 17


def test_other_403_and_401_are_auth_failures(server):
    server.routes["/search/issues"] = Reply(401, b'{"message": "Bad credentials"}')
    with pytest.raises(SourceAuthError):
        _source(server, token="ghp-expired").fetch("acme", None)
    server.routes["/search/issues"] = Reply(403, b'{"message": "Resource not accessible by integration"}')
    with pytest.raises(SourceAuthError):
        _source(server, token="ghp-abc").fetch("acme", None)


def test_422_names_the_refused_query(server):
    server.routes["/search/issues"] = Reply(422, json.dumps({
        "message": "Validation Failed", "errors": [{"resource": "Search", "field": "q", "code": "invalid"}],
        "documentation_url": "https://docs.github.com/v3/search"}).encode())
    with pytest.raises(SourceError) as info:
        _source(server).fetch("acme", None)
    assert info.value.status == 422 and "validation failed" in str(info.value)


@pytest.mark.parametrize("body", [b'{"total_count": 1}', b'{"items": {"a": 1}}', b"[]", b'{"items": [1, "x", null]'])
def test_a_page_of_the_wrong_shape_is_malformed(server, body):
    server.routes["/search/issues"] = Reply(body=body)
    with pytest.raises(MalformedResponseError):
        _source(server).fetch("acme", None)


def test_items_of_wrong_types_are_skipped_and_counted(server):
    good = fixture_json("github/search_issues.json")["items"][0]
    bad = [1, "x", None, {**good, "id": "abc"}, {**good, "created_at": "2999-01-01T00:00:00Z"},
           {**good, "user": {"login": 5}}, {**good, "body": {"md": "x"}}, {k: v for k, v in good.items() if k != "id"}]
    server.routes["/search/issues"] = Reply(body=_page([good, *bad]))
    result = _source(server).fetch("acme", None)
    assert len(result.mentions) == 1 and result.skipped == len(bad)


@pytest.mark.parametrize("cursor", ["nonsense", "{}", '{"since": "x"}', '{"since": 99999999999999}',
                                    json.dumps({"since": int((NOW + timedelta(days=3)).timestamp())})])
def test_unreadable_cursor_raises_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        _source(server).fetch("acme", cursor)
    assert server.seen == []


def test_followers_as_reach(server):
    src = _source(server)
    assert src.reach("mona-dev") == (1287, "followers")
    assert server.seen[-1].path == "/users/mona-dev"
    server.routes["/users/*"] = Reply(body=b'{"login": "x", "followers": "many"}')
    assert src.reach("x") is None
    assert _source(server, fetch_followers=False).reach("mona-dev") is None


def test_search_term_quotes_phrases():
    assert search_term("acme") == "acme"
    assert search_term("acme cloud") == '"acme cloud"'
    assert search_term('"acme cloud"') == '"acme cloud"'
