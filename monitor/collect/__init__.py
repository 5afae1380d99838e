"""Sources: the outside world -> Mention. One module per source; ``SOURCES`` maps a
config ``type`` to its class.

Contract (every source passes tests/test_source_contract.py):

* ``key`` names the job, its cursors and its health: "<brand>:<name>".
* ``queries()`` lists the search strings; each has its own cursor.
* ``fetch(query, cursor)`` returns one page: mentions (not yet filtered by the brand's
  terms: the pipeline does that for every source alike), the cursor to resume from
  after this page, ``done`` when nothing more is waiting, and ``skipped`` for raw
  items that were malformed (logged and counted, never fatal to the page).
* ``reach(handle)`` (optional) looks up an author's reach when the page did not carry it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from monitor.records import FetchResult


@runtime_checkable
class Source(Protocol):
    key: str
    type: str

    def queries(self) -> list[str]: ...

    def fetch(self, query: str, cursor: str | None) -> FetchResult: ...


def source_key(brand: str, settings: Any) -> str:
    return f"{brand}:{settings.name or settings.type}"


def build_source(brand, settings, *, http_factory, now) -> Source:
    """Make the source for one (brand, source settings) pair of the config."""
    from monitor.collect.demo import DemoSource
    from monitor.collect.hackernews import HackerNewsSource

    registry = {"hackernews": HackerNewsSource, "demo": DemoSource}
    cls = registry[settings.type]
    return cls(brand=brand, settings=settings, http_factory=http_factory, now=now)
