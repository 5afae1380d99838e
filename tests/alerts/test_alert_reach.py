"""Rules with ``min_reach`` wait for the author's reach: a match whose author's lookup is
still queued is judged again when the reach is stored, when the lookup ends without one,
or when ``reach_wait`` is over; lookups go to waiting authors first, across runs, and the
queue outlives a kill."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from alert_fakes import KeywordClassifier
from hypothesis import given
from hypothesis import strategies as st

from monitor import pipeline
from monitor.alerts.engine import AlertEngine
from monitor.alerts.rules import mention_matches, waits_for_reach
from monitor.cli_alert_views import show_status
from monitor.config import AlertSettings, RuleWhen, Terms
from monitor.errors import SourceError
from monitor.matching import Matcher
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store

RULE = {"name": "negative-with-reach", "when": {"sentiment": "negative", "min_reach": 100}, "channels": ["console"]}
MATCHER = Matcher(Terms(include=["acme"]))


class Killed(BaseException):
    """The process dying at this point (kill -9): nothing after it runs."""


@dataclass
class ReachSource:
    """A source whose pages carry no reach and whose ``reach(handle)`` looks it up (like
    Hacker News karma): ``pages`` of mentions, one query, an index as cursor."""

    pages: list[list[Mention]]
    reach_of: dict[str, int | None]
    failing: set[str] = field(default_factory=set)
    kill_on_lookup: bool = False
    lookups: list[str] = field(default_factory=list)
    key: str = "Acme:hackernews"
    type: str = "hackernews"

    def queries(self) -> list[str]:
        return ["acme"]

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        i = int(cursor or 0)
        if i >= len(self.pages):
            return FetchResult([], str(i), done=True)
        return FetchResult(self.pages[i], str(i + 1), done=i + 1 == len(self.pages))

    def reach(self, handle: str) -> tuple[int, str] | None:
        if self.kill_on_lookup:
            raise Killed()
        self.lookups.append(handle)
        if handle in self.failing:
            raise SourceError("HTTP 503 from /users")
        value = self.reach_of.get(handle)
        return None if value is None else (value, "karma")


def mentions(clock, n: int, authors: int, text: str = "I hate acme") -> list[Mention]:
    return [Mention(source="hackernews", native_id=str(i), brand="Acme", text=f"{text} #{i}",
                    created_at=clock() - timedelta(minutes=1), author=Author("hackernews", f"user{i % authors}"))
            for i in range(n)]


def paged(items: list[Mention], size: int) -> list[list[Mention]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def engine_for(store: Store, clock, rules=(RULE,), **alerts) -> AlertEngine:
    settings = AlertSettings.model_validate({"rules": list(rules), **alerts})
    return AlertEngine.from_settings(settings, store, now=clock)


def run(store: Store, source: ReachSource, clock, engine: AlertEngine, *, max_pages: int = 2) -> None:
    """One daemon cycle: a collect job, then the classify job; then time passes."""
    pipeline.collect(store, source, MATCHER, max_pages=max_pages)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    clock.advance(minutes=10)


def alerted(store: Store) -> set[int]:
    """The native ids of the mentions the reach rule alerted on."""
    return {int(r["native_id"]) for r in store.query(
        "SELECT m.native_id FROM alerts a JOIN mentions m ON a.key = a.rule || ':mention:' || m.id WHERE a.rule = ?",
        [RULE["name"]])}


def mention_ids(store: Store) -> set[int]:
    return {int(r["native_id"]) for r in store.query("SELECT native_id FROM mentions")}


def kill_before_lookups(store: Store, source: ReachSource, engine: AlertEngine) -> None:
    """Pages stored, then killed before any lookup; after the restart the classify job ran
    first: the matches wait for their authors' reach."""
    source.kill_on_lookup = True
    with pytest.raises(Killed):
        pipeline.collect(store, source, MATCHER, max_pages=10)
    source.kill_on_lookup = False
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)


def outcomes(store: Store) -> dict[str, int]:
    return store.alerts.wait_counts()


def test_every_matching_mention_alerts_when_every_author_has_the_reach(store, clock):
    """The attack run's case: 438 negative mentions by 150 authors, all above the threshold,
    far more authors a run than the lookups a run allows."""
    source = ReachSource(paged(mentions(clock, 438, 150), 50), {f"user{i}": 500 + i for i in range(150)})
    engine = engine_for(store, clock)
    for _ in range(8):
        run(store, source, clock, engine)
    assert len(mention_ids(store)) == 438
    assert alerted(store) == mention_ids(store)
    assert sorted(source.lookups) == sorted({f"user{i}" for i in range(150)})  # each author once
    assert set(outcomes(store)) == {"matched"}  # some waited, and every one that did alerted
    assert store.query("SELECT count(*) AS n FROM reach_lookups")[0]["n"] == 0


def test_authors_with_waiting_mentions_are_looked_up_first(store, clock):
    quiet = mentions(clock, 10, 10, text="I love acme")  # queued first, but no rule waits for them
    loud = [replace(m, native_id=str(100 + i), author=Author("hackernews", f"loud{i}"))
            for i, m in enumerate(mentions(clock, 60, 60))]
    source = ReachSource([quiet, loud], {**{f"user{i}": 500 for i in range(10)},
                                         **{f"loud{i}": 500 for i in range(60)}})
    engine = engine_for(store, clock)
    kill_before_lookups(store, source, engine)
    assert outcomes(store) == {"waiting": 60}
    pipeline.collect(store, source, MATCHER)
    assert len(source.lookups) == pipeline.REACH_LOOKUPS_PER_RUN
    assert all(h.startswith("loud") for h in source.lookups)
    pipeline.collect(store, source, MATCHER)  # the next run: the other 10 waiting, then the quiet ones
    assert source.lookups[50:60] == [f"loud{i}" for i in range(50, 60)] and len(source.lookups) == 70


def test_a_kill_between_the_page_and_the_lookups_loses_no_alert(tmp_path, clock):
    db = tmp_path / "monitor.db"
    source = ReachSource(paged(mentions(clock, 60, 20), 30), {f"user{i}": 200 for i in range(20)},
                         kill_on_lookup=True)
    store = Store(db, now=clock)
    with pytest.raises(Killed):
        pipeline.collect(store, source, MATCHER, max_pages=5)  # both pages committed, then killed
    store.close()

    store = Store(db, now=clock)  # the restart: nothing in memory survived
    source.kill_on_lookup = False
    engine = engine_for(store, clock)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)  # the classify job ran first
    assert alerted(store) == set() and outcomes(store) == {"waiting": 60}
    run(store, source, clock, engine)
    assert alerted(store) == mention_ids(store) and len(alerted(store)) == 60
    assert outcomes(store) == {"matched": 60}
    store.close()


def test_reach_below_the_threshold_or_never_found_is_judged_and_marked(store, clock, caplog, capsys):
    caplog.set_level(logging.INFO, logger="monitor")
    reach = {"user0": 500, "user1": 50, "user2": None, "user3": 900}
    source = ReachSource([mentions(clock, 8, 4)], reach, failing={"user3"})
    engine = engine_for(store, clock)
    kill_before_lookups(store, source, engine)
    assert outcomes(store) == {"waiting": 8}
    for _ in range(pipeline.REACH_ATTEMPTS + 1):
        run(store, source, clock, engine)
        clock.advance(minutes=10)  # past every retry's back-off (5, 10 min)
    assert alerted(store) == {0, 4}  # user0's two mentions
    assert source.lookups.count("user3") == pipeline.REACH_ATTEMPTS  # then given up
    assert outcomes(store) == {"matched": 2, "no match": 2, "reach unknown": 4}
    assert "judged without its author's reach" in caplog.text and "given up after 3 attempts" in caplog.text
    show_status(store, 5)
    assert ("matches that waited for their author's reach: matched 2, no match 2, reach unknown 4"
            in capsys.readouterr().out)


def test_a_lookup_that_never_comes_ends_the_wait_at_reach_wait(store, clock):
    source = ReachSource([mentions(clock, 3, 3)], {f"user{i}": 500 for i in range(3)}, kill_on_lookup=True)
    engine = engine_for(store, clock, reach_wait="30m")
    with pytest.raises(Killed):
        pipeline.collect(store, source, MATCHER)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    assert outcomes(store) == {"waiting": 3}
    clock.advance(minutes=29)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    assert outcomes(store) == {"waiting": 3}
    clock.advance(minutes=2)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    assert outcomes(store) == {"reach unknown": 3} and alerted(store) == set()


def test_only_reach_waits_and_only_for_the_rest_of_the_conditions(store, clock):
    rules = [RULE, {"name": "any-negative", "when": {"sentiment": "negative"}, "channels": ["console"]}]
    items = mentions(clock, 2, 2) + [Mention(source="hackernews", native_id="9", brand="Acme", text="I love acme",
                                             created_at=clock(), author=Author("hackernews", "user0"))]
    source = ReachSource([items], {"user0": 500, "user1": 500}, kill_on_lookup=True)
    engine = engine_for(store, clock, rules=rules)
    with pytest.raises(Killed):
        pipeline.collect(store, source, MATCHER)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    # the rule without min_reach alerted at once; the positive mention never waits
    assert {r["key"] for r in store.query("SELECT key FROM alerts")} == {"any-negative:mention:1",
                                                                        "any-negative:mention:2"}
    assert store.query("SELECT rule, mention_id FROM alert_waits ORDER BY mention_id") == [
        {"rule": "negative-with-reach", "mention_id": 1}, {"rule": "negative-with-reach", "mention_id": 2}]


def test_a_reach_the_page_carries_alerts_at_once(store, clock):
    """Sources whose pages carry the reach (Mastodon, Bluesky) queue no lookup and never wait."""
    items = [Mention(source="hackernews", native_id=str(i), brand="Acme", text="I hate acme", created_at=clock(),
                     author=Author("hackernews", f"user{i}", reach=150 * i, reach_kind="followers"))
             for i in range(3)]
    source = ReachSource([items], {})
    engine = engine_for(store, clock)
    pipeline.collect(store, source, MATCHER)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    assert alerted(store) == {1, 2} and source.lookups == [] and outcomes(store) == {}


ROW = {"id": 1, "brand": "Acme", "source": "hackernews", "source_key": "Acme:hn", "reach": None, "rating": None,
       "lang": "en", "title": None, "text": "I hate acme", "author": "bob", "author_id": 7}


@given(reach=st.one_of(st.none(), st.integers(0, 2**63 - 1)), threshold=st.one_of(st.none(), st.integers(0, 10**9)),
       sentiment=st.sampled_from(["negative", "positive"]))
def test_waiting_is_for_the_reach_alone(reach, threshold, sentiment):
    """A match that waits is one the reach alone can still decide: assuming the reach matches
    whatever the real one matches, and, the reach aside, exactly the rule without min_reach."""
    when = RuleWhen(sentiment=["negative"], min_reach=threshold)
    row = {**ROW, "reach": reach}
    c = KeywordClassifier().classify([f"I {'hate' if sentiment == 'negative' else 'love'} acme"])[0]
    assumed = mention_matches(when, row, c, assume_reach=True)
    assert assumed == mention_matches(RuleWhen(sentiment=["negative"]), row, c)
    if mention_matches(when, row, c):
        assert assumed
    assert waits_for_reach(when, row) == (bool(threshold) and reach is None)
    if reach is None and threshold:
        assert not mention_matches(when, row, c)  # an unknown reach is below any min_reach
