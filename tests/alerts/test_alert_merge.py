"""Several rules matching one mention: each channel gets one alert, that of the most severe
rule, naming every rule that matched; the title says what fired and names the source as the
mentions table does."""

from __future__ import annotations

import io
import json

from alert_fakes import KeywordClassifier, add_mentions, mention
from test_alert_reach import ReachSource, run

from monitor import pipeline
from monitor.alerts.channels import ConsoleChannel
from monitor.alerts.engine import AlertEngine
from monitor.config import AlertSettings
from monitor.records import Author, Mention

DETRACTOR = {"name": "detractor-with-reach", "when": {"advocacy": "detractor", "min_reach": 5}, "severity": "critical"}
NEGATIVE = {"name": "negative-with-reach", "when": {"sentiment": "negative", "min_reach": 5}, "severity": "warning"}


def alert_settings(*rules, channels=("console",)) -> AlertSettings:
    return AlertSettings.model_validate({
        "channels": {c: {"type": "console"} for c in channels},
        "rules": [{"channels": ["console"], **r} for r in rules]})


def alerts(store) -> list[dict]:
    return store.query("SELECT id, rule, key, severity, title, body, data FROM alerts ORDER BY id")


def deliveries(store) -> list[tuple[str, str]]:
    return [(r["rule"], r["channel"]) for r in store.query(
        "SELECT a.rule, d.channel FROM deliveries d JOIN alerts a ON a.id = d.alert_id ORDER BY a.rule, d.channel")]


def test_two_rules_on_one_mention_and_channel_make_one_alert_of_the_higher_severity(store):
    settings = alert_settings(NEGATIVE, DETRACTOR)  # the warning rule first: severity decides, not order
    add_mentions(store, [mention(1, "I hate acme", author="bob"), mention(2, "acme is fine", author="carol")],
                 source_key="Acme:demo")
    engine = AlertEngine.from_settings(settings, store)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)
    [a] = alerts(store)
    assert (a["rule"], a["severity"]) == ("detractor-with-reach", "critical")
    assert a["key"] == "detractor-with-reach:mention:1"
    assert a["title"] == ("[Acme] detractor, negative mention by bob on hackernews "
                          "(detractor-with-reach, negative-with-reach)")
    assert "Acme:demo" not in a["title"] + a["body"]  # the job's key is not the source
    assert "Rule detractor-with-reach (critical) matched" in a["body"]
    assert "Rule negative-with-reach (warning) matched" in a["body"]
    data = json.loads(a["data"])
    assert data["rules"] == ["detractor-with-reach", "negative-with-reach"]
    assert data["mentions"][0]["source"] == "hackernews" and data["mentions"][0]["source_key"] == "Acme:demo"
    assert deliveries(store) == [("detractor-with-reach", "console")]
    out = io.StringIO()
    assert pipeline.deliver(store, {"console": ConsoleChannel(stream=out)})["sent"] == 1
    assert out.getvalue().count("ALERT [") == 1
    assert engine.on_classified([1]) == 0 and len(alerts(store)) == 1  # judged again: nothing new


def test_each_channel_gets_the_most_severe_of_its_own_rules(store):
    settings = AlertSettings.model_validate({
        "channels": {c: {"type": "console"} for c in ("pager", "chat", "mail")},
        "rules": [{**DETRACTOR, "channels": ["pager", "chat"]}, {**NEGATIVE, "channels": ["chat", "mail"]}]})
    add_mentions(store, [mention(1, "I hate acme", author="bob")])
    pipeline.classify_pending(store, KeywordClassifier(), engine=AlertEngine.from_settings(settings, store))
    assert deliveries(store) == [("detractor-with-reach", "chat"), ("detractor-with-reach", "pager"),
                                 ("negative-with-reach", "mail")]
    titles = {a["rule"]: a["title"] for a in alerts(store)}  # each names every rule that matched, its own first
    assert titles["detractor-with-reach"].endswith("(detractor-with-reach, negative-with-reach)")
    assert titles["negative-with-reach"].endswith("(negative-with-reach, detractor-with-reach)")
    mail = next(a for a in alerts(store) if a["rule"] == "negative-with-reach")
    assert mail["severity"] == "warning"  # the mail channel takes the warning rule only


def test_one_rule_titles_say_what_fired(store):
    settings = AlertSettings.model_validate({  # the pager takes critical alerts only: info rules reach no channel
        "channels": {"console": {"type": "console"}, "pager": {"type": "console", "min_severity": "critical"}},
        "rules": [{"name": "detractors", "when": {"advocacy": "detractor"}, "channels": ["console"]},
                  {"name": "low-stars", "when": {"max_rating": 2}, "severity": "info", "channels": ["pager"]},
                  {"name": "anything", "when": {}, "severity": "info", "channels": ["pager"]}]})
    add_mentions(store, [mention(1, "I hate acme", author="bob"),
                         mention(2, "acme app", author="dana", source="appstore", rating=1)])
    pipeline.classify_pending(store, KeywordClassifier(), engine=AlertEngine.from_settings(settings, store))
    titles = {a["key"]: a["title"] for a in alerts(store)}
    assert titles["detractors:mention:1"] == "[Acme] detractor mention by bob on hackernews (detractors, anything)"
    # no rule with a channel matched: one alert is kept, that of the first of the most severe
    assert titles["low-stars:mention:2"] == "[Acme] 1-star mention by dana on appstore (low-stars, anything)"
    assert len(titles) == 2 and deliveries(store) == [("detractors", "console")]


def test_rules_that_waited_for_the_reach_alert_once(store, clock):
    engine = AlertEngine.from_settings(alert_settings(NEGATIVE, DETRACTOR), store, now=clock)
    page = [Mention(source="hackernews", native_id="1", brand="Acme", text="I hate acme", created_at=clock(),
                    author=Author("hackernews", "bob"))]
    source = ReachSource(pages=[page], reach_of={"bob": 900})
    run(store, source, clock, engine)
    engine.settle_waits()
    [a] = alerts(store)
    assert a["rule"] == "detractor-with-reach" and "negative-with-reach" in a["title"]
    assert {r["outcome"] for r in store.query("SELECT outcome FROM alert_waits")} <= {"matched"}
