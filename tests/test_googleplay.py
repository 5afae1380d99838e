"""Google Play reviews: what a batchexecute answer becomes (stars kept, UTC times, the app page
with the review id as link, the developer's reply, anonymous reviewers without an author), the
request the library would send, how the cursor walks the continuation tokens, how a changed
answer is reported as an API change (health alerts at once), and throttling. Real-shaped
answers served on 127.0.0.1 through the real, guarded HTTP client."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
from pydantic import ValidationError

from monitor import pipeline
from monitor.advocates import stance_of
from monitor.collect import googleplay
from monitor.collect.googleplay import GooglePlayReviewsSource, parse_reply, review_text
from monitor.config import GooglePlaySettings, HealthSettings, Terms
from monitor.errors import ApiChangedError, CursorError, MalformedResponseError, SourceAuthError, SourceError
from monitor.health import HealthCheck, assess
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.matching import Matcher
from monitor.store import Store
from tests.fakes.googleplay import rewrap, unwrap, wrap
from tests.fakes.sources import FakeResolver, FixtureServer, Reply, fixture_bytes

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = SimpleNamespace(name="Acme", terms=Terms(include=["acme"]))
RPC_PATH = "/_/PlayStoreUi/data/batchexecute"
APP = "com.acme.notes"
QUERY = f"{APP}:en:us"
NEWEST = "googleplay/reviews_newest.txt"
OLDER = "googleplay/reviews_older.txt"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server():
    with FixtureServer() as s:
        yield s


def make(server, *, clock=None, retries: int = 0, **settings) -> GooglePlayReviewsSource:
    s = GooglePlaySettings(type="googleplay", base_url=server.url, app_ids=[APP], **settings)
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",), resolve=FakeResolver(), retries=retries,
                        sleep=lambda s: None)
    return GooglePlayReviewsSource(brand=BRAND, settings=s, http_factory=HttpFactory(policy),
                                   now=clock or (lambda: NOW))


def serve(server, *bodies: bytes) -> None:
    """Answer the reviews RPC with ``bodies`` in turn (the last one again after that)."""
    queue = list(bodies)

    def answer(seen):
        return Reply(body=queue.pop(0) if len(queue) > 1 else queue[0], content_type="application/json; charset=utf-8")

    server.routes[RPC_PATH] = answer


def calls(server):
    return [s for s in server.seen if s.path == RPC_PATH]


def freq_args(seen) -> list:
    """The reviews RPC's arguments as the request carried them."""
    form = parse_qs(seen.body.decode())
    (freq,) = form["f.req"]
    ((rpc, args, _none, generic),) = json.loads(freq)[0]
    assert rpc == "oCPfdb" and generic == "generic"
    return json.loads(args)


def collect(store, source):
    return pipeline.collect(store, source, Matcher(BRAND.terms),
                            health=HealthCheck(HealthSettings(), channels=[], brand="Acme"))


# ------------------------------------------------------------------------------ a page


def test_reviews_become_mentions_with_their_stars(server):
    serve(server, fixture_bytes(NEWEST))
    result = make(server).fetch(QUERY, None)
    assert result.skipped == 0 and not result.done  # a continuation token: more pages wait
    happy, unhappy, anonymous = result.mentions
    assert [m.rating for m in result.mentions] == [5, 2, 4]
    assert {m.kind for m in result.mentions} == {"review"} and {m.source for m in result.mentions} == {"googleplay"}
    assert happy.native_id.startswith("gp:AOqpTOFq3Zp8")
    assert happy.created_at == datetime(2026, 11, 20, 9, 14, 27, tzinfo=UTC)  # epoch seconds, UTC (not local time)
    assert happy.text.startswith("Acme finally fixed the sync bug.")
    assert happy.author is not None and happy.author.handle == "Priya Raman" and happy.author.reach is None
    assert happy.url == f"https://play.google.com/store/apps/details?id={APP}&hl=en&gl=us&reviewId=" + \
        happy.native_id.replace(":", "%3A")
    assert happy.extra["url_kind"] == "app_page"  # no review has a URL of its own
    assert happy.extra["thumbs_up"] == 14 and happy.extra["app_version"] == "4.12.1"
    assert happy.extra["app_id"] == APP and happy.extra["country"] == "us" and happy.lang == "en"
    assert 'Support said "clear the cache" -- did that' in unhappy.text and "&" in unhappy.text
    assert unhappy.extra["reply"]["text"].startswith("Hi Marco, sorry about the logouts.")
    assert unhappy.extra["reply"]["at"] == "2026-11-20T00:10:02+00:00"
    # the review with its optional fields missing: no user, thumbs, reply or version; still a review
    assert anonymous.author is None and anonymous.rating == 4
    assert not {"reply", "app_version", "thumbs_up"} & set(anonymous.extra)


def test_the_request_is_the_librarys(server):
    serve(server, fixture_bytes(NEWEST))
    make(server, languages=["de"], countries=["at"]).fetch(f"{APP}:de:at", None)
    (seen,) = calls(server)
    assert seen.method == "POST" and seen.query == {"hl": ["de"], "gl": ["at"]}
    assert seen.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert freq_args(seen) == [None, [2, 2, [100], None, [None] * 9], [APP, 7]]  # sort 2: newest first


def test_stars_count_in_the_advocacy_index_as_stars():
    assert stance_of(None, "review", 5, False) == ("promoter", "stars")
    assert stance_of("promoter", "review", 2, False) == ("detractor", "stars")


def test_an_anonymous_reviewer_is_nobody(server):
    payload = unwrap(fixture_bytes(OLDER))
    serve(server, wrap(payload))
    result = make(server, clock=lambda: datetime(2026, 11, 10, 12, tzinfo=UTC)).fetch(QUERY, json.dumps(
        {"since": 1794000000}))
    by_id = {m.native_id[:16]: m for m in result.mentions}
    assert by_id["gp:AOqpTOFz8Xc2V"].author is None  # "A Google user" is many people
    assert by_id["gp:AOqpTOEw3Er6T"].author is not None


def test_html_in_a_review_is_made_inert_and_angle_brackets_typed_stay():
    assert review_text('<script>alert("x")</script><img src=x onerror=alert(1)>Acme <b>rocks</b>') == "Acme rocks"
    assert review_text("I <3 Acme, Vec<T> works, a < b > c") == "I <3 Acme, Vec<T> works, a < b > c"


def test_the_package_is_not_imported_and_tls_checks_stay_on():
    source = Path(googleplay.__file__).read_text(encoding="utf-8")
    assert "import google_play_scraper" not in source and "from google_play_scraper" not in source
    assert ssl._create_default_https_context is ssl.create_default_context


# ------------------------------------------------------------------------------ the cursor


def test_the_walk_follows_the_token_and_ends_at_older_reviews(server):
    serve(server, fixture_bytes(NEWEST), fixture_bytes(OLDER))
    source = make(server)
    first = source.fetch(QUERY, None)
    state = json.loads(first.cursor)
    assert not first.done and state["token"].startswith("CsIBCr8B") and state["top"] == 1795166067
    second = source.fetch(QUERY, first.cursor)
    assert freq_args(calls(server)[1])[1][2] == [100, None, state["token"]]
    # the lookback is 7 days: one review of the older page is in it, the two before are not
    assert [m.created_at.date().isoformat() for m in second.mentions] == ["2026-11-16"]
    assert second.done and second.unchanged == 2  # read, known to be older: the source is alive
    assert json.loads(second.cursor) == {"since": 1795166067, "token": None, "top": None, "wait_until": None}
    source.fetch(QUERY, second.cursor)
    assert freq_args(calls(server)[2])[1][2] == [100]  # a new walk starts at the newest


def test_a_run_stores_only_new_reviews(server, tmp_path):
    serve(server, fixture_bytes(NEWEST), fixture_bytes(OLDER), fixture_bytes(NEWEST))
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    source = make(server)
    first = collect(store, source)
    assert first.ok and first.new == 4 and first.skipped == 0
    rows = store.query("SELECT native_id, rating, kind, created_at FROM mentions ORDER BY created_at DESC")
    assert [r["rating"] for r in rows] == [5, 2, 4, 3] and {r["kind"] for r in rows} == {"review"}
    assert rows[0]["created_at"].startswith("2026-11-20T09:14:27")
    second = collect(store, source)
    assert second.ok and second.new == 0
    assert store.query("SELECT count(*) AS n FROM mentions")[0]["n"] == 4
    store.close()


def test_a_token_after_which_the_payload_goes_on_is_read(server):
    payload = unwrap(fixture_bytes(NEWEST))
    payload.append(None)  # [reviews, [null, token], null]: the library's [-1][-1] finds nothing there
    serve(server, wrap(payload))
    result = make(server).fetch(QUERY, None)
    assert json.loads(result.cursor)["token"] == payload[1][1] and not result.done


def test_the_last_page_has_no_token(server):
    payload = unwrap(fixture_bytes(NEWEST))
    payload[1] = [None, None]
    serve(server, wrap(payload))
    result = make(server).fetch(QUERY, None)
    assert result.done and len(result.mentions) == 3
    assert json.loads(result.cursor)["since"] == 1795166067


def test_an_app_without_reviews_is_an_empty_page(server):
    serve(server, wrap([]))
    result = make(server).fetch(QUERY, None)
    assert result.mentions == [] and result.done and result.skipped == 0


@pytest.mark.parametrize("cursor", ["not json", '{"since": "x"}', '{"since": 1795000000, "token": "a b<c"}',
                                    json.dumps({"since": int((NOW + timedelta(days=3)).timestamp())})])
def test_an_unreadable_cursor_fails_before_any_request(server, cursor):
    with pytest.raises(CursorError):
        make(server).fetch(QUERY, cursor)
    assert calls(server) == []


def test_backfill_walks_down_to_the_date(server):
    cursor = make(server).cursor_since(QUERY, NOW - timedelta(days=30))
    assert json.loads(cursor)["since"] == int((NOW - timedelta(days=30)).timestamp())


def test_queries_are_every_app_language_and_country(server):
    source = make(server, languages=["en", "de"], countries=["us", "gb"])
    assert source.queries() == [f"{APP}:en:us", f"{APP}:en:gb", f"{APP}:de:us", f"{APP}:de:gb"]


def test_settings_take_package_ids_not_urls():
    for bad in ("https://play.google.com/store/apps/details?id=com.acme", "acme", "com.acme/../x"):
        with pytest.raises(ValidationError):
            GooglePlaySettings(type="googleplay", app_ids=[bad])
    with pytest.raises(ValidationError):
        GooglePlaySettings(type="googleplay", app_ids=[APP], languages=["en&gl=x"])
    assert GooglePlaySettings(type="googleplay", app_ids=[APP], languages=["pt-BR"]).match_all


# ------------------------------------------------------------------------------ a changed answer


def _moved(body: bytes) -> bytes:
    """Every review's fields one position further on (a field inserted at [3] by Google)."""
    payload = unwrap(body)
    payload[0] = [r[:3] + [None] + r[3:] for r in payload[0]]
    return rewrap(body, payload)


@pytest.mark.parametrize(("body", "says"), [
    (b'<!doctype html><html><title>Google Play</title><script>x</script></html>',
     "does not start with )]}' (got an HTML page"),
    (fixture_bytes(NEWEST).replace(b'"oCPfdb"', b'"Xy7Qqz"'), "no oCPfdb row in the answer (rows for Xy7Qqz): "
                                                            "the RPC was renamed"),
    (b")]}'\n\n" + json.dumps({"rows": []}).encode(), "not a list of rows"),
    (rewrap(fixture_bytes(NEWEST), [{"reviews": []}]), "no list of reviews at [0]"),
    (_moved(fixture_bytes(NEWEST)), "API changed: field content [4] missing in 3 of 3 reviews"),
])
def test_a_changed_answer_is_an_api_change_that_health_alerts_on(server, tmp_path, body, says):
    serve(server, body)
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = collect(store, make(server))
    assert not stats.ok and stats.api_changed is not None and says in stats.api_changed
    health = assess(store, "Acme:googleplay", HealthSettings())
    assert health.state == "api_changed" and says in (health.problem or "")
    alerts = store.query("SELECT title, body FROM alerts WHERE rule = 'source-health'")
    assert len(alerts) == 1 and "api_changed" in alerts[0]["title"]
    assert store.get_cursor("Acme:googleplay", QUERY) is None  # the cursor did not move past anything
    store.close()


def test_the_same_errors_raised_by_fetch():
    with pytest.raises(ApiChangedError):
        parse_reply(b"[]", "k")
    with pytest.raises(MalformedResponseError) as info:
        parse_reply(fixture_bytes(NEWEST)[:700], "k")  # cut short: not an API change
    assert not isinstance(info.value, ApiChangedError)


def test_one_broken_review_costs_only_itself(server, tmp_path):
    body = fixture_bytes(NEWEST)
    payload = unwrap(body)
    payload[0].insert(1, [payload[0][0][0] + "x", None, "five", None, ["not", "text"], "yesterday"])
    serve(server, rewrap(body, payload))
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = collect(store, make(server))
    assert stats.ok and stats.api_changed is None and stats.skipped >= 1 and stats.new == 3
    store.close()


def test_user_names_gone_from_every_review_are_logged(server, caplog):
    body = fixture_bytes(NEWEST)
    payload = unwrap(body)
    for review in payload[0]:
        review[1] = None
    serve(server, rewrap(body, payload))
    result = make(server).fetch(QUERY, None)
    assert len(result.mentions) == 3 and all(m.author is None for m in result.mentions)
    assert "userName [1, 0] missing in all 3 reviews" in caplog.text


def test_reviews_failing_for_different_reasons_are_counted_not_named(server, tmp_path):
    body = fixture_bytes(NEWEST)
    payload = unwrap(body)
    payload[0][0][2], payload[0][1][4], payload[0][2][5] = None, None, None
    serve(server, rewrap(body, payload))
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = collect(store, make(server))
    assert stats.api_changed is not None and "all 3 items of a page failed validation" in stats.api_changed
    store.close()


# ------------------------------------------------------------------------------ errors and throttling


def test_throttling_fails_the_run_and_no_request_follows_before_the_wait(server):
    clock = Clock()
    serve(server, fixture_bytes("googleplay/throttled.txt"))
    source = make(server, clock=clock)
    with pytest.raises(SourceError, match="throttling") as info:
        source.fetch(QUERY, None)
    assert info.value.retry_after == googleplay.THROTTLE_WAIT and not isinstance(info.value, ApiChangedError)
    serve(server, fixture_bytes(NEWEST))
    clock.now = NOW + timedelta(seconds=60)
    assert source.fetch(QUERY, None).mentions == [] and len(calls(server)) == 1
    assert source.fetch(f"{APP}:de:us", None).mentions == [] and len(calls(server)) == 1  # every query waits
    clock.now = NOW + timedelta(seconds=googleplay.THROTTLE_WAIT + 1)
    assert len(source.fetch(QUERY, None).mentions) == 3


def test_http_429_honours_retry_after(server):
    clock = Clock()
    server.routes[RPC_PATH] = Reply(429, b"<html>Too Many Requests</html>", headers={"Retry-After": "120"},
                                    content_type="text/html")
    slept: list[float] = []
    s = GooglePlaySettings(type="googleplay", base_url=server.url, app_ids=[APP])
    policy = HttpPolicy(allow_networks=("127.0.0.1/32",), resolve=FakeResolver(), retries=1, sleep=slept.append)
    source = GooglePlayReviewsSource(brand=BRAND, settings=s, http_factory=HttpFactory(policy), now=clock)
    with pytest.raises(SourceError) as info:
        source.fetch(QUERY, None)
    assert slept == [120.0] and info.value.retry_after == 120.0 and len(calls(server)) == 2
    clock.now = NOW + timedelta(seconds=100)
    assert source.fetch(QUERY, None).mentions == [] and len(calls(server)) == 2
    clock.now = NOW + timedelta(seconds=121)
    with pytest.raises(SourceError):
        source.fetch(QUERY, None)
    assert len(calls(server)) == 4


def test_403_is_reported_as_a_refusal_without_credentials(server, tmp_path):
    server.routes[RPC_PATH] = Reply(403, b"<html>403. That's an error.</html>", content_type="text/html")
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    stats = collect(store, make(server))
    assert not stats.ok and stats.auth_failed
    assert "no credential is involved" in stats.errors[0]
    store.close()


def test_an_unknown_app_is_a_plain_failure(server):
    serve(server, fixture_bytes("googleplay/not_found.txt"))
    with pytest.raises(SourceError, match="NOT_FOUND") as info:
        make(server).fetch(QUERY, None)
    assert not isinstance(info.value, SourceAuthError | ApiChangedError)


def test_a_review_dated_in_the_future_is_skipped(server):
    body = fixture_bytes(NEWEST)
    payload = unwrap(body)
    payload[0][0][5] = [int((NOW + timedelta(days=2)).timestamp()), 0]
    serve(server, rewrap(body, payload))
    result = make(server).fetch(QUERY, None)
    assert result.skipped == 1 and len(result.mentions) == 2
    assert json.loads(result.cursor)["top"] == 1795125831  # it did not move the cursor past later reviews
