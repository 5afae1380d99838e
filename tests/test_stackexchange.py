"""Stack Exchange: what a page becomes (questions and answers, reputation as reach, HTML made
text once), how the cursor walks, and how the API's own signals are honoured: ``backoff``,
``quota_remaining``, error bodies (throttle_violation, a refused key, access_denied), 429.
Real-shaped fixtures served on 127.0.0.1 through the real, guarded HTTP client."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import SecretStr, ValidationError

from monitor import pipeline
from monitor.collect.stackexchange import StackExchangeSource, html_to_text, site_domain
from monitor.config import StackExchangeSettings, Terms
from monitor.errors import CursorError, SourceAuthError, SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.store import Store
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, fixture_bytes, fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = SimpleNamespace(name="Acme", terms=Terms(include=["acme"]))
KEY = "se-app-key-u8Qz"
SEARCH = "/2.3/search/excerpts"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server():
    with FixtureServer() as s:
        yield s


def make(server, *, key: str | None = None, site: str = "stackoverflow", clock=None, retries: int = 0):
    settings = StackExchangeSettings(type="stackexchange", base_url=f"{server.url}/2.3", site=site,
                                     key=SecretStr(key) if key else None)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",), resolve=FakeResolver(), retries=retries,
                        sleep=lambda s: None)
    return StackExchangeSource(brand=BRAND, settings=settings, http_factory=HttpFactory(policy),
                               now=clock or (lambda: NOW))


def page(**changes) -> bytes:
    data = fixture_json("stackexchange/search_excerpts.json")
    data.update(changes)
    return json.dumps(data).encode()


def searches(server):
    return [s for s in server.seen if s.path == SEARCH]


# ------------------------------------------------------------------------------ a page


def test_questions_and_answers_become_mentions(server):
    server.routes[SEARCH] = Reply(body=fixture_bytes("stackexchange/search_excerpts.json"))
    result = make(server, key=KEY).fetch("acme", None)
    assert result.done and result.skipped == 0
    answer, question, orphan = result.mentions
    assert answer.kind == "answer" and answer.native_id == "stackoverflow:a79234702"
    assert answer.url == "https://stackoverflow.com/a/79234702"
    assert answer.title == "Why does Acme's build cache never hit inside Docker?"
    assert '{\n  "features": { "buildkit": true }\n}' in answer.text  # code keeps its lines and indentation
    assert "3 minutes — see the docs." in answer.text and "<" not in answer.text
    assert answer.author is not None and answer.author.reach == 48213 and answer.author.reach_kind == "reputation"
    assert answer.author.display_name == "Renée Okafor" and answer.author.handle == "stackoverflow:1042287"
    assert answer.author.url == "https://stackoverflow.com/users/1042287/renee-okafor"
    assert answer.extra["question_id"] == 79234561 and answer.extra["score"] == 7
    assert question.kind == "question" and question.url == "https://stackoverflow.com/q/79234561"
    assert question.author is not None and question.author.reach == 211
    assert orphan.author is None  # a deleted user ("does_not_exist") is nobody's reach
    assert orphan.created_at == datetime(2026, 11, 19, 21, 40, 13, tzinfo=UTC)
    (req,) = searches(server)
    q = {k: v[0] for k, v in req.query.items()}
    assert q["q"] == "acme" and q["site"] == "stackoverflow" and q["sort"] == "creation" and q["order"] == "desc"
    assert q["filter"] == "withbody" and q["key"] == KEY and q["page"] == "1" and q["pagesize"] == "100"
    assert int(q["fromdate"]) == int((NOW - timedelta(days=2)).timestamp()) - 600


def test_no_key_sends_none(server):
    server.routes[SEARCH] = Reply(body=page())
    make(server).fetch("acme", None)
    assert "key" not in searches(server)[0].query


def test_entities_are_decoded_once_code_in_angle_brackets_survives():
    html = "<p>Why is <code>List&lt;String&gt;</code> not a <code>List&lt;Object&gt;</code>?</p><p>&amp;lt; stays</p>"
    assert html_to_text(html) == "Why is List<String> not a List<Object>?\n\n&lt; stays"
    assert html_to_text('<script>alert(1)</script><img src=x onerror=alert(1)>Acme <b>rocks</b>') == "Acme rocks"


def test_excerpt_stands_in_for_a_missing_body_and_other_sites_link_to_their_domain(server):
    data = fixture_json("stackexchange/search_excerpts.json")
    del data["items"][1]["body"]
    server.routes[SEARCH] = Reply(body=json.dumps(data).encode())
    result = make(server, site="superuser").fetch("acme", None)
    assert result.mentions[1].text.startswith("I set up the Acme cache")
    assert result.mentions[1].url == "https://superuser.com/q/79234561"
    assert site_domain("unix") == "unix.stackexchange.com" and site_domain("mathoverflow.net") == "mathoverflow.net"
    assert site_domain("meta.stackoverflow") == "meta.stackoverflow.com"
    assert site_domain("meta.unix") == "unix.meta.stackexchange.com"
    assert site_domain("ru.stackoverflow") == "ru.stackoverflow.com"


def test_gzip_response_is_decoded(server):
    server.routes[SEARCH] = Reply(body=gzip.compress(page()), headers={"Content-Encoding": "gzip"})
    assert len(make(server).fetch("acme", None).mentions) == 3


def test_site_is_a_site_name_not_a_url():
    with pytest.raises(ValidationError):
        StackExchangeSettings(type="stackexchange", site="https://evil.example/")
    assert StackExchangeSettings(type="stackexchange").site == "stackoverflow"


# ------------------------------------------------------------------------------ the cursor


def test_pages_are_walked_then_since_moves_to_the_newest_item(server):
    server.routes[SEARCH] = Reply(body=page(has_more=True))
    source = make(server)
    first = source.fetch("acme", None)
    assert not first.done
    state = json.loads(first.cursor)
    assert state["page"] == 2 and state["top"] == 1795168971
    server.routes[SEARCH] = Reply(body=page(items=[], has_more=False))
    last = source.fetch("acme", first.cursor)
    assert last.done and searches(server)[-1].query["page"] == ["2"]
    state = json.loads(last.cursor)
    assert state["since"] == 1795168971 and state["page"] == 1 and state["top"] is None


@pytest.mark.parametrize("cursor", ["not json", '{"since": "x"}', '{"since": 1795168971, "page": 0}',
                                    json.dumps({"since": int((NOW + timedelta(days=3)).timestamp())})])
def test_an_unreadable_cursor_fails_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        make(server).fetch("acme", cursor)
    assert server.seen == []


def test_backfill_cursor_starts_at_the_date(server):
    cursor = make(server).cursor_since("acme", NOW - timedelta(days=30))
    assert json.loads(cursor)["since"] == int((NOW - timedelta(days=30)).timestamp())


# ------------------------------------------------------------------------------ backoff and quota


def test_backoff_is_honoured_before_the_next_request(server):
    clock = Clock()
    server.routes[SEARCH] = Reply(body=page(has_more=True, backoff=10))
    source = make(server, clock=clock)
    first = source.fetch("acme", None)
    assert first.done  # more pages wait, but not before the backoff
    assert json.loads(first.cursor)["wait_until"] == NOW.timestamp() + 10
    clock.now = NOW + timedelta(seconds=5)
    again = source.fetch("acme", first.cursor)
    assert again.mentions == [] and again.done and again.cursor == first.cursor
    assert len(searches(server)) == 1  # no request inside the backoff, for any query of the method
    source.fetch("other", None)
    assert len(searches(server)) == 1
    fresh = make(server, clock=clock)  # a restart: the cursor still remembers the backoff
    fresh.fetch("acme", first.cursor)
    assert len(searches(server)) == 1
    clock.now = NOW + timedelta(seconds=11)
    later = source.fetch("acme", first.cursor)
    assert len(searches(server)) == 2 and searches(server)[-1].query["page"] == ["2"]
    assert len(later.mentions) == 3


def test_quota_used_up_waits_for_the_daily_reset(server):
    clock = Clock()
    server.routes[SEARCH] = Reply(body=page(quota_remaining=0))
    source = make(server, clock=clock)
    result = source.fetch("acme", None)
    assert len(result.mentions) == 3
    assert json.loads(result.cursor)["wait_until"] == datetime(2026, 11, 21, tzinfo=UTC).timestamp()
    clock.now = NOW + timedelta(hours=6)
    source.fetch("acme", result.cursor)
    assert len(searches(server)) == 1


# ------------------------------------------------------------------------------ errors


def test_throttle_violation_fails_the_run_and_waits_what_it_says(server):
    clock = Clock()
    server.routes[SEARCH] = Reply(400, fixture_bytes("stackexchange/error_throttle.json"))
    source = make(server, clock=clock)
    with pytest.raises(SourceError) as info:
        source.fetch("acme", None)
    assert not isinstance(info.value, SourceAuthError)
    assert "502 throttle_violation" in str(info.value) and info.value.retry_after == 82128
    server.routes[SEARCH] = Reply(body=page())
    clock.now = NOW + timedelta(hours=1)
    assert source.fetch("acme", None).mentions == []
    assert len(searches(server)) == 1  # banned: no request until the time it named


@pytest.mark.parametrize(("status", "fixture"), [(400, "error_bad_key.json"), (403, "error_access_denied.json")])
def test_a_refused_key_is_an_auth_failure_that_does_not_leak_the_key(server, tmp_path, status, fixture):
    server.routes[SEARCH] = Reply(status, fixture_bytes(f"stackexchange/{fixture}"))
    source = make(server, key=KEY)
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, source, Matcher(BRAND.terms))
    assert not stats.ok and stats.auth_failed
    assert KEY not in json.dumps(store.query("SELECT * FROM source_runs")) and KEY not in "; ".join(stats.errors)
    store.close()


def test_bad_parameter_is_a_plain_failure(server):
    server.routes[SEARCH] = Reply(400, b'{"error_id":400,"error_message":"fromdate","error_name":"bad_parameter"}')
    with pytest.raises(SourceError) as info:
        make(server).fetch("acme", None)
    assert not isinstance(info.value, SourceAuthError) and "400 bad_parameter: fromdate" in str(info.value)


def test_an_error_body_under_http_200_is_an_error(server):
    server.routes[SEARCH] = Reply(200, fixture_bytes("stackexchange/error_throttle.json"))
    with pytest.raises(SourceError, match="throttle_violation"):
        make(server).fetch("acme", None)


@pytest.mark.parametrize("status", [429, 502, 503])
def test_rate_limits_and_outages_fail_the_run_without_auth(server, tmp_path, status):
    server.routes[SEARCH] = Reply(status, b'{"error_id":502,"error_name":"throttle_violation"}',
                                  headers={"Retry-After": "30"})
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, make(server), Matcher(BRAND.terms))
    assert not stats.ok and not stats.auth_failed
    assert store.recent_runs("Acme:stackexchange")[0]["ok"] == 0
    store.close()


def test_a_page_of_only_broken_items_is_an_api_change(server, tmp_path):
    data = fixture_json("stackexchange/search_excerpts.json")
    for item in data["items"]:
        del item["creation_date"]
    server.routes[SEARCH] = Reply(body=json.dumps(data).encode())
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = pipeline.collect(store, make(server), Matcher(BRAND.terms))
    assert stats.api_changed is not None and not stats.ok
    store.close()
