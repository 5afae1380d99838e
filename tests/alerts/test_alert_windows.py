"""Windowed rules (volume spike, share dip, promoter turned negative, source silent), the
backtest, and the `monitor alerts` commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from alert_fakes import KeywordClassifier, add_mentions, mention
from click.testing import CliRunner
from test_alert_rules import settings

from monitor import pipeline
from monitor.alerts.backtest import replay
from monitor.alerts.engine import AlertEngine
from monitor.cli import main
from monitor.store import Store

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def fill(store, items):
    """items: (hours before NOW, text, author, source_key)."""
    for n, (hours, text, author, key) in enumerate(items, start=1):
        add_mentions(store, [mention(n, text, at=NOW - timedelta(hours=hours), author=author)], source_key=key)
    pipeline.classify_pending(store, KeywordClassifier())


def keys(store):
    return [r["key"] for r in store.query("SELECT key FROM alerts ORDER BY id")]


SPIKE = {"name": "spike", "window": {"kind": "volume_spike", "window": "1h", "baseline": "3d", "min_count": 5,
                                      "threshold": 3}}


def test_volume_spike_against_own_baseline(store, clock):
    clock.t = NOW
    base = [(h + 0.5, "acme fine", f"u{h}", "Acme:hackernews") for h in range(1, 72) if h % 2]  # one every 2h
    fill(store, base + [(0.1 + i / 100, f"acme hmm {i}", f"s{i}", "Acme:hackernews") for i in range(8)])
    engine = AlertEngine.from_settings(settings(SPIKE), store)
    assert engine.tick() == 1
    assert keys(store) == ["spike:volume_spike:Acme:2026-11-02T12:00:00+00:00"]
    body = store.query("SELECT body FROM alerts")[0]["body"]
    assert "8 matching mentions" in body and "in the last 1h, against a median of 1" in body
    assert engine.tick() == 0  # the same window never fires twice


def test_no_spike_under_min_count_or_within_normal_variation(store, clock):
    clock.t = NOW
    noisy = [(h + 0.5, f"acme {i}", f"u{h}{i}", "Acme:hackernews") for h in range(1, 72) for i in range(h % 5)]
    fill(store, noisy + [(0.2 + i / 100, f"acme now {i}", f"s{i}", "Acme:hackernews") for i in range(5)])
    assert AlertEngine.from_settings(settings(SPIKE), store).tick() == 0  # 5 is within median 2 +- 3 MADs
    strict = {**SPIKE, "window": {**SPIKE["window"], "min_count": 6}}
    assert AlertEngine.from_settings(settings(strict), store).tick() == 0


def test_share_of_positive_dips(store, clock):
    clock.t = NOW
    before = [(30 + i, "love acme" if i % 2 else "acme ok", f"u{i}", "Acme:hackernews") for i in range(20)]
    today = [(1 + i, "love acme" if i == 0 else "acme ok", f"t{i}", "Acme:hackernews") for i in range(10)]
    fill(store, before + today)
    rule = {"name": "dip", "window": {"kind": "share_dip", "of": "positive", "window": "1d", "baseline": "3d",
                                      "min_count": 10, "drop": 0.3}}
    assert AlertEngine.from_settings(settings(rule), store).tick() == 1
    title = store.query("SELECT title FROM alerts")[0]["title"]
    assert "positive share 10% (was 50%)" in title
    softer = {**rule, "name": "dip2", "window": {**rule["window"], "drop": 0.5}}
    assert AlertEngine.from_settings(settings(softer), store).tick() == 0


def test_known_promoter_turning_negative(store, clock):
    clock.t = NOW
    fill(store, [(50, "love acme", "bob", "Acme:hackernews"), (40, "love acme more", "bob", "Acme:hackernews"),
                 (3, "I hate acme now", "bob", "Acme:hackernews"), (2, "I hate acme", "carol", "Acme:hackernews")])
    rule = {"name": "turned", "window": {"kind": "promoter_turned_negative", "window": "1d", "min_past": 2}}
    engine = AlertEngine.from_settings(settings(rule), store)
    assert engine.tick() == 1
    assert keys(store)[0].startswith("turned:turned:")
    assert "promoter bob" in store.query("SELECT title FROM alerts")[0]["title"]
    assert engine.tick() == 0


def test_source_going_silent(store, clock):
    clock.t = NOW
    fill(store, [(30 + i, f"acme {i}", "u", "Acme:hackernews") for i in range(4)]
         + [(1 + i, f"acme {i}", "v", "Acme:reddit") for i in range(4)])
    rule = {"name": "silent", "window": {"kind": "source_silent", "after": "6h", "baseline": "3d", "min_count": 3}}
    engine = AlertEngine.from_settings(settings(rule), store)
    assert engine.tick() == 1
    assert "no mentions from Acme:hackernews" in store.query("SELECT title FROM alerts")[0]["title"]
    assert engine.tick() == 0


def test_windowed_cooldown_by_brand(store, clock):
    clock.t = NOW
    base = [(h + 0.5, "acme fine", f"u{h}", "Acme:hackernews") for h in range(1, 72) if h % 2]
    fill(store, base + [(0.1 + i / 100, f"acme hmm {i}", f"s{i}", "Acme:hackernews") for i in range(8)])
    rule = {**SPIKE, "cooldown": "6h"}
    engine = AlertEngine.from_settings(settings(rule), store)
    assert engine.tick() == 1
    add_mentions(store, [mention(900 + i, f"acme again {i}", at=NOW + timedelta(minutes=50), author=f"z{i}")
                         for i in range(9)])
    pipeline.classify_pending(store, KeywordClassifier())
    clock.t = NOW + timedelta(hours=1)
    assert engine.tick() == 0  # a new window, but the brand is cooling down


def test_backtest_counts_per_day_with_noise_control(store):
    day1, day2 = datetime(2026, 10, 20, 9, tzinfo=UTC), datetime(2026, 10, 21, 9, tzinfo=UTC)
    ms = [mention(i, "I hate acme", at=day1 + timedelta(minutes=10 * i), author=f"a{i}") for i in range(4)]
    ms += [mention(10 + i, "I hate acme", at=day2 + timedelta(minutes=10 * i), author=f"b{i}") for i in range(3)]
    add_mentions(store, ms)
    pipeline.classify_pending(store, KeywordClassifier())
    alerts = settings({"name": "every", "when": {"sentiment": "negative"}},
                      {"name": "cooled", "when": {"sentiment": "negative"}, "cooldown": "1h"},
                      {"name": "digested", "when": {"sentiment": "negative"},
                       "digest": {"immediate": 1, "every": "1d"}})
    fired = replay(alerts, store, datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC),
                   timedelta(hours=1))
    assert dict(fired["every"]) == {"2026-10-20": 4, "2026-10-21": 3}
    assert dict(fired["cooled"]) == {"2026-10-20": 1, "2026-10-21": 1}
    # one immediate per day, then the day's digest lands at the start of the next day
    assert dict(fired["digested"]) == {"2026-10-20": 1, "2026-10-21": 2, "2026-10-22": 1}
    assert store.query("SELECT count(*) AS n FROM alerts")[0]["n"] == 0  # a replay writes nothing


def _config(tmp_path, rules, channels=None) -> str:
    cfg = {"database": str(tmp_path / "monitor.db"),
           "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
           "alerts": {"channels": channels or {"console": {"type": "console"}}, "rules": rules}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_test_backtest_status(tmp_path):
    store = Store(tmp_path / "monitor.db")
    now = datetime.now(UTC)
    add_mentions(store, [mention(1, "I hate acme <!channel>", at=now - timedelta(hours=2), author="bob"),
                         mention(2, "love acme", at=now - timedelta(hours=1), author="carol")])
    pipeline.classify_pending(store, KeywordClassifier())
    from monitor.alerts.outbox import deliver_due
    from monitor.records import Alert

    store.alerts.insert([Alert(rule="neg", key="neg:x", severity="warning", title="t", body="b")], {"neg": ["gone"]})
    deliver_due(store, {})  # no such channel: dead-lettered, with its attempt
    store.close()
    cfg = _config(tmp_path, [{"name": "neg", "when": {"sentiment": "negative"}, "channels": ["console"]},
                             {"name": "spike", "window": {"kind": "volume_spike"}, "channels": ["console"]}])
    runner = CliRunner()
    out = runner.invoke(main, ["-c", cfg, "alerts", "test", "neg"])
    assert out.exit_code == 0, out.output
    assert "1 of 2 classified mention(s)" in out.output and "bob" in out.output and "carol" not in out.output
    out = runner.invoke(main, ["-c", cfg, "alerts", "test", "spike"])
    assert out.exit_code == 0 and "0 alert(s) would fire now" in out.output, out.output
    out = runner.invoke(main, ["-c", cfg, "alerts", "test", "nope"])
    assert out.exit_code == 1 and "no alert rule named 'nope'" in out.output
    out = runner.invoke(main, ["-c", cfg, "alerts", "backtest", "--since", "30d"])
    assert out.exit_code == 0, out.output
    assert "neg" in out.output and "fires per day" in out.output
    out = runner.invoke(main, ["-c", cfg, "alerts", "status"])
    assert out.exit_code == 0, out.output
    assert "deliveries: pending 0 (failing 0), sent 0, dead 1" in out.output
    assert "channel 'gone' is not configured" in out.output and "recent attempts" in out.output
