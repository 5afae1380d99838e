"""Per-mention conditions, known authors, and the pipeline path that commits alerts with
the classification that caused them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alert_fakes import KeywordClassifier, add_mentions, mention
from hypothesis import given
from hypothesis import strategies as st

from monitor import pipeline
from monitor.alerts.engine import AlertEngine
from monitor.alerts.rules import mention_matches
from monitor.config import AlertSettings, RuleWhen
from monitor.records import Classification, LabelScore


def settings(*rules, **extra) -> AlertSettings:
    return AlertSettings.model_validate({"channels": {"console": {"type": "console"}},
                                         "rules": [{"channels": ["console"], **r} for r in rules], **extra})


def cls(sent="negative", p=0.9, adv="detractor", q=0.8, status="ok", uncertain=False) -> Classification:
    return Classification(LabelScore(sent, {sent: p}), LabelScore(adv, {adv: q}), "m@1", uncertain=uncertain,
                          status=status)


ROW = {"id": 1, "brand": "Acme", "source": "hackernews", "source_key": "Acme:hn", "reach": 500, "rating": 2,
       "lang": "en", "title": None, "text": "The Acme Cloud outage again", "author": "bob", "author_id": 7}


@pytest.mark.parametrize(("when", "expected"), [
    ({}, True),
    ({"brands": ["Acme"]}, True),
    ({"brands": ["Other"]}, False),
    ({"sources": ["hackernews"]}, True),
    ({"sources": ["Acme:hn"]}, True),
    ({"sources": ["reddit"]}, False),
    ({"sentiment": "negative", "min_probability": 0.85}, True),
    ({"sentiment": "negative", "min_probability": 0.95}, False),
    ({"sentiment": ["positive", "neutral"]}, False),
    ({"advocacy": "detractor", "min_advocacy_probability": 0.8}, True),
    ({"advocacy": "detractor", "min_advocacy_probability": 0.81}, False),
    ({"sentiment": "negative", "advocacy": "detractor", "min_sentiment_probability": 0.9,
      "min_advocacy_probability": 0.5}, True),
    ({"min_reach": 500}, True),
    ({"min_reach": 501}, False),
    ({"max_rating": 2}, True),
    ({"min_rating": 3}, False),
    ({"terms": ["outage"]}, True),
    ({"terms": ['"acme cloud"']}, True),
    ({"terms": ["out"]}, False),  # whole words only
    ({"exclude_terms": ["again"]}, False),
    ({"languages": ["en"]}, True),
    ({"languages": ["de", "fr"]}, False),
])
def test_each_condition(when, expected):
    assert mention_matches(RuleWhen.model_validate(when), ROW, cls()) is expected


def test_missing_rating_or_reach_never_matches_a_threshold():
    row = {**ROW, "rating": None, "reach": None}
    assert not mention_matches(RuleWhen(min_rating=1), row, cls())
    assert not mention_matches(RuleWhen(min_reach=1), row, cls())


def test_unclassifiable_and_uncertain():
    assert not mention_matches(RuleWhen(), ROW, cls(status="empty"))
    assert mention_matches(RuleWhen(), ROW, cls(uncertain=True))
    assert not mention_matches(RuleWhen(include_uncertain=False), ROW, cls(uncertain=True))


def test_duplicates_alert_once_unless_asked():
    dup = {**ROW, "duplicate_of": 1}
    assert not mention_matches(RuleWhen(), dup, cls())
    assert mention_matches(RuleWhen(include_duplicates=True), dup, cls())


def test_known_author_uses_history():
    when = RuleWhen(known_author="detractor", known_author_min_mentions=3, known_author_min_share=0.6)
    assert mention_matches(when, ROW, cls(), lambda: {"detractor": 2, "none": 1})
    assert not mention_matches(when, ROW, cls(), lambda: {"detractor": 2})  # too few
    assert not mention_matches(when, ROW, cls(), lambda: {"detractor": 1, "promoter": 2})


@given(p=st.floats(0, 1), t1=st.floats(0, 1), t2=st.floats(0, 1))
def test_raising_a_threshold_never_adds_matches(p, t1, t2):
    lo, hi = sorted((t1, t2))
    c = cls(p=p)
    if mention_matches(RuleWhen(sentiment=["negative"], min_probability=hi), ROW, c):
        assert mention_matches(RuleWhen(sentiment=["negative"], min_probability=lo), ROW, c)


@given(brands=st.lists(st.sampled_from(["Acme", "Other", "Third"]), max_size=3),
       sentiments=st.lists(st.sampled_from(["negative", "neutral", "positive"]), max_size=3))
def test_adding_a_condition_only_narrows(brands, sentiments):
    base = RuleWhen(brands=brands)
    narrower = RuleWhen(brands=brands, sentiment=sentiments)
    if mention_matches(narrower, ROW, cls()):
        assert mention_matches(base, ROW, cls())


def test_pipeline_commits_alert_with_classification_and_known_author(store, clock):
    alerts = settings(
        {"name": "neg", "when": {"sentiment": "negative", "min_probability": 0.8}},
        {"name": "detractor-again", "when": {"known_author": "detractor", "known_author_min_mentions": 2}},
        web_base_url="https://monitor.example",
    )
    add_mentions(store, [mention(1, "I hate acme", author="bob"), mention(2, "acme is fine", author="carol"),
                         mention(3, "hate hate acme", author="bob")])
    engine = AlertEngine.from_settings(alerts, store)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine, batch_size=1)
    rows = store.query("SELECT rule, key, body, data FROM alerts ORDER BY id")
    assert [(r["rule"], r["key"]) for r in rows] == [("neg", "neg:mention:1"), ("neg", "neg:mention:3")]
    assert "https://monitor.example/mentions/1" in rows[0]["body"]
    assert "bob (10 karma)" in rows[0]["body"] and "negative 90%" in rows[0]["body"]
    # bob has two earlier detractor mentions once a fourth arrives
    add_mentions(store, [mention(4, "acme again", author="bob")])
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    keys = [r["key"] for r in store.query("SELECT key FROM alerts")]
    assert "detractor-again:mention:4" in keys
    deliveries = store.query("SELECT channel, status FROM deliveries")
    assert len(deliveries) == 3 and {d["status"] for d in deliveries} == {"pending"}


def test_reclassifying_never_duplicates(store):
    alerts = settings({"name": "neg", "when": {"sentiment": "negative"}})
    add_mentions(store, [mention(1, "I hate acme")])
    engine = AlertEngine.from_settings(alerts, store)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    store.conn.execute("DELETE FROM classifications")
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    assert store.query("SELECT count(*) AS n FROM alerts")[0]["n"] == 1
    assert store.query("SELECT count(*) AS n FROM deliveries")[0]["n"] == 1


def test_severity_filters_channels():
    alerts = AlertSettings.model_validate({
        "channels": {"all": {"type": "console"}, "pager": {"type": "console", "min_severity": "critical"}},
        "rules": [{"name": "a", "channels": ["all", "pager"], "severity": "warning"},
                  {"name": "b", "channels": ["all", "pager"], "severity": "critical"}]})
    assert alerts.channels_for() == {"a": ["all"], "b": ["all", "pager"]}


def test_cooldown_is_a_duration():
    rule = settings({"name": "x", "cooldown": "30m"}).rules[0]
    assert rule.cooldown == timedelta(minutes=30)


def test_rules_list_path_used_by_demo(store):
    alerts = settings({"name": "neg", "when": {"sentiment": "negative"}})
    add_mentions(store, [mention(1, "I hate acme"), mention(2, "love acme")])
    pipeline.classify_pending(store, KeywordClassifier(), alerts.rules, alerts.channels_for())
    assert [d["channel"] for d in store.query("SELECT channel FROM deliveries")] == ["console"]
