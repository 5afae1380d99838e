"""Sources: the outside world -> Mention. One module per source; ``REGISTRY`` maps a
config ``type`` to its class.

Contract (every source passes tests/test_source_contract.py):

* ``key`` names the job, its cursors and its health: "<brand>:<name>".
* ``queries()`` lists the search strings; each has its own cursor.
* ``fetch(query, cursor)`` returns one page: mentions (not yet filtered by the brand's
  terms: the pipeline does that for every source alike), the cursor to resume from
  after this page, ``done`` when nothing more is waiting, and ``skipped`` for raw
  items that were malformed (logged and counted, never fatal to the page). A stored
  cursor it cannot read raises ``CursorError`` before any request: the pipeline reports
  it and starts the query afresh.
* ``reach(handle)`` (optional) looks up an author's reach when the page did not carry it.
* ``prime(cursors)`` (optional) is shown every query's stored cursor ({query: cursor or
  None}) before a run's first fetch: state a source keeps across its queries (YouTube's
  daily quota tally) is read from all of them.
* ``cursor_since(query, when)`` (optional) returns a cursor that makes the next fetch
  start at ``when`` (``monitor backfill``); None when the source cannot go back.
* ``match_all`` (optional, default False): every item is about the brand (its own app's
  reviews, its own blog); the pipeline then keeps items that do not name a term.
* ``canonical_url`` is set only for mentions that are a web page's story (see
  collect/_common.py); the store links copies of one story with ``duplicate_of``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from monitor.records import FetchResult

if TYPE_CHECKING:
    from monitor.settings_sources import Brand


@runtime_checkable
class Source(Protocol):
    key: str
    type: str

    def queries(self) -> list[str]: ...

    def fetch(self, query: str, cursor: str | None) -> FetchResult: ...


def source_key(brand: str, settings: Any) -> str:
    return f"{brand}:{settings.name or settings.type}"


# Config ``type`` -> "module:class". Imported on demand: PRAW and feedparser load only
# when a source of theirs is configured.
REGISTRY: dict[str, str] = {
    "hackernews": "monitor.collect.hackernews:HackerNewsSource",
    "demo": "monitor.collect.demo:DemoSource",
    "reddit": "monitor.collect.reddit:RedditSource",
    "feed": "monitor.collect.feeds:FeedSource",
    "appstore": "monitor.collect.appstore:AppStoreReviewsSource",
    "bluesky": "monitor.collect.bluesky:BlueskySource",
    "mastodon": "monitor.collect.mastodon:MastodonSource",
    "stackexchange": "monitor.collect.stackexchange:StackExchangeSource",
    "github": "monitor.collect.github:GitHubSource",
    "youtube": "monitor.collect.youtube:YouTubeSource",
    "lemmy": "monitor.collect.lemmy:LemmySource",
    "discourse": "monitor.collect.discourse:DiscourseSource",
    "googleplay": "monitor.collect.googleplay:GooglePlayReviewsSource",
}


def source_class(type_name: str) -> type[Any]:
    """The class of a config ``type``; every one is built as ``build_source`` does."""
    import importlib

    module, name = REGISTRY[type_name].split(":")
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls


def build_source(brand: Brand, settings: Any, *, http_factory: Callable[..., Any],
                 now: Callable[[], datetime]) -> Source:
    """Make the source for one (brand, source settings) pair of the config."""
    source: Source = source_class(settings.type)(brand=brand, settings=settings, http_factory=http_factory, now=now)
    return source
