"""Cooldown, grouping, digests (with an injected clock and a real SQLite store), quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime

from alert_fakes import KeywordClassifier, add_mentions, mention
from test_alert_rules import settings

from monitor import pipeline
from monitor.alerts.engine import AlertEngine
from monitor.alerts.outbox import quiet_until
from monitor.config import QuietHours


def run(store, engine, *texts, start=100, author=None):
    ms = [mention(start + i, t, author=author or f"user{start + i}") for i, t in enumerate(texts)]
    add_mentions(store, ms)
    pipeline.classify_pending(store, KeywordClassifier(), engine=engine)


def alerts(store):
    return store.query("SELECT rule, key, title, body, mention_ids, data, created_at FROM alerts ORDER BY id")


def test_cooldown_per_rule_and_key(store, clock):
    engine = AlertEngine.from_settings(settings(
        {"name": "neg", "when": {"sentiment": "negative"}, "cooldown": "1h", "cooldown_by": "author"}), store)
    run(store, engine, "hate acme", "hate acme twice", author="bob")
    run(store, engine, "hate acme", start=200, author="carol")  # another key: not in bob's cooldown
    assert [a["key"] for a in alerts(store)] == ["neg:mention:1", "neg:mention:3"]
    clock.advance(minutes=61)
    run(store, engine, "hate acme once more", start=300, author="bob")
    last = alerts(store)[-1]
    assert last["key"] == "neg:mention:4"
    assert "1 similar match(es) were held back by the cooldown" in last["body"]


def test_grouping_sends_one_alert_for_a_burst(store, clock):
    engine = AlertEngine.from_settings(settings(
        {"name": "burst", "when": {"sentiment": "negative"}, "group": {"by": "brand", "wait": "5m", "examples": 2}}),
        store)
    run(store, engine, *[f"hate acme {i}" for i in range(7)])
    assert alerts(store) == []
    clock.advance(minutes=4)
    assert engine.tick() == 0
    clock.advance(minutes=2)
    assert engine.tick() == 1
    (a,) = alerts(store)
    assert a["key"] == "burst:group:brand=Acme:1"
    assert "7 mention(s)" in a["title"] and "... and 5 more" in a["body"]
    assert len(eval(a["mention_ids"])) == 7  # noqa: S307 - a JSON list of ints
    assert engine.tick() == 0  # released: never twice
    run(store, engine, "hate acme later", start=200)
    clock.advance(minutes=6)
    assert engine.tick() == 1
    assert alerts(store)[-1]["key"] == "burst:group:brand=Acme:8"


def test_digest_first_n_immediately_then_a_summary(store, clock):
    engine = AlertEngine.from_settings(settings(
        {"name": "dig", "when": {"sentiment": "negative"}, "digest": {"immediate": 2, "every": "1h"}}), store)
    run(store, engine, *[f"hate acme {i}" for i in range(5)])
    assert [a["key"] for a in alerts(store)] == ["dig:mention:1", "dig:mention:2"]
    clock.advance(minutes=30)
    assert engine.tick() == 0  # the period (12:00-13:00) is not over
    clock.advance(minutes=31)
    assert engine.tick() == 1
    digest = alerts(store)[-1]
    assert digest["key"] == "dig:digest:2026-11-02T12:00:00+00:00"
    assert "Digest: 3 more mention(s)" in digest["body"]
    run(store, engine, "hate acme next hour", start=200)  # a new period: immediate again
    assert alerts(store)[-1]["key"] == "dig:mention:6"


def test_holds_survive_a_restart(store, clock, tmp_path):
    rule = {"name": "burst", "when": {"sentiment": "negative"}, "group": {"wait": "5m"}}
    run(store, AlertEngine.from_settings(settings(rule), store), "hate acme", "hate acme 2")
    clock.advance(minutes=10)
    fresh = AlertEngine.from_settings(settings(rule), store)  # a new process: state comes from SQLite
    assert fresh.tick() == 1


def test_removed_rule_releases_its_holds(store, clock):
    run(store, AlertEngine.from_settings(settings({"name": "burst", "group": {"wait": "5m"}}), store), "hate acme")
    clock.advance(minutes=10)
    assert AlertEngine.from_settings(settings({"name": "other"}), store).tick() == 0
    assert store.query("SELECT count(*) AS n FROM alert_holds WHERE released_at IS NULL")[0]["n"] == 0


def test_quiet_hours_over_midnight_in_local_time():
    q = QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")
    # 21:30 UTC is 22:30 in Berlin (CET): quiet until 07:00 Berlin = 06:00 UTC next day
    assert quiet_until(q, "warning", datetime(2026, 11, 2, 21, 30, tzinfo=UTC)) == datetime(2026, 11, 3, 6, 0,
                                                                                            tzinfo=UTC)
    assert quiet_until(q, "warning", datetime(2026, 11, 3, 5, 0, tzinfo=UTC)) == datetime(2026, 11, 3, 6, 0,
                                                                                         tzinfo=UTC)
    assert quiet_until(q, "warning", datetime(2026, 11, 3, 6, 0, tzinfo=UTC)) is None
    assert quiet_until(q, "warning", datetime(2026, 11, 2, 12, 0, tzinfo=UTC)) is None
    assert quiet_until(q, "critical", datetime(2026, 11, 2, 23, 0, tzinfo=UTC)) is None  # bypass


def test_quiet_hours_same_day():
    q = QuietHours(start="12:00", end="14:00", bypass=[])
    assert quiet_until(q, "critical", datetime(2026, 11, 2, 13, 0, tzinfo=UTC)) == datetime(2026, 11, 2, 14, 0,
                                                                                           tzinfo=UTC)
    assert quiet_until(q, "critical", datetime(2026, 11, 2, 14, 0, tzinfo=UTC)) is None
