"""Property tests: every JSON source fed real fixture items with random fields replaced by
random JSON (strings with lone surrogates and control characters, huge ints, deep
nesting, nulls, wrong types). Nothing but SourceError may escape ``fetch``; what comes
out is storable; every item is either a mention or counted as skipped."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.collect.appstore import AppStoreReviewsSource
from monitor.collect.bluesky import BlueskySource
from monitor.collect.hackernews import HackerNewsSource
from monitor.collect.mastodon import MastodonSource
from monitor.collect.reddit import RedditSource
from monitor.config import AppStoreSettings, BlueskySettings, HackerNewsSettings, MastodonSettings, Terms
from monitor.errors import SourceError
from monitor.http_client import HttpFactory, HttpPolicy
from monitor.records import FetchResult
from monitor.store import Store
from tests.fakes.sources import fixture_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
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
}


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
