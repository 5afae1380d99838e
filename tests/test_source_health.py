"""Source health from recorded runs: failing streaks, silent zeros against a baseline,
one alert per episode, and `monitor status`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from monitor import pipeline
from monitor.cli import main
from monitor.config import HealthSettings, Terms
from monitor.errors import SourceError
from monitor.health import HealthCheck, assess
from monitor.matching import Matcher
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


class ScriptedSource:
    """A source whose runs follow a script: an int (that many mentions), a (mentions, skipped
    as malformed) pair, or an exception."""

    type = "scripted"

    def __init__(self, script):
        self.key = "Acme:scripted"
        self.brand = "Acme"
        self.script = list(script)
        self.n = 0

    def queries(self):
        return ["acme"]

    def fetch(self, query, cursor):
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        step, skipped = step if isinstance(step, tuple) else (step, 0)
        out = []
        for _ in range(step):
            self.n += 1
            out.append(Mention(source="scripted", native_id=str(self.n), brand="Acme", text=f"acme #{self.n}",
                               created_at=T0, author=Author(source="scripted", handle="u")))
        return FetchResult(out, str(self.n), skipped=skipped)


def run_script(tmp_path, script, policy=None):
    clock = Clock()
    store = Store(tmp_path / "m.db", now=clock)
    source = ScriptedSource(script)
    check = HealthCheck(policy or HealthSettings(), channels=["console"], brand="Acme")
    matcher = Matcher(Terms(include=["acme"]))
    for _ in script:
        clock.t += timedelta(minutes=10)
        pipeline.collect(store, source, matcher, health=check)
    return store, source


def status_config(tmp_path, db):
    """A config naming the database, for `monitor status` on it."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {db}\nbrands:\n  - name: Acme\n    terms: {{include: [acme]}}\n"
                   "    sources: [{type: hackernews}]\n", encoding="utf-8")
    return cfg


def alerts(store):
    return store.query("SELECT key, title, body, severity FROM alerts WHERE rule = 'source-health' ORDER BY id")


def test_healthy_source(tmp_path):
    store, source = run_script(tmp_path, [2, 0, 1])
    h = assess(store, source.key, HealthSettings())
    assert h.state == "ok" and h.fetched == 1 and h.consecutive_failures == 0 and h.last_success
    assert alerts(store) == []


def test_consecutive_failures_raise_one_alert_per_episode(tmp_path):
    boom = SourceError("HTTP 503 after 4 attempts")
    store, source = run_script(tmp_path, [2, boom, boom, boom, boom, 1, boom, boom, boom])
    got = alerts(store)
    assert len(got) == 2  # two separate episodes, the second after a recovery
    assert got[0]["key"] != got[1]["key"]
    assert "3 consecutive failed runs" in got[0]["body"] and got[0]["severity"] == "critical"
    assert store.query("SELECT channel, status FROM deliveries") == [{"channel": "console", "status": "pending"}] * 2


def test_an_episode_longer_than_the_window_read_keeps_one_alert(tmp_path):
    """A source broken for more runs than assess reads (max_failures + zero_runs + baseline + 5)
    keeps the run that opened the episode: one alert, not a new one each run."""
    boom = SourceError("HTTP 503 after 4 attempts")
    policy = HealthSettings()
    window = policy.max_failures + policy.zero_runs + policy.baseline_runs + 5
    store, source = run_script(tmp_path, [2] + [boom] * (window + 25))
    assert len(alerts(store)) == 1
    first_failed = store.query("SELECT min(id) AS id FROM source_runs WHERE ok = 0")[0]["id"]
    assert assess(store, source.key, policy).opened_by == first_failed


def test_two_failures_are_degraded_not_broken(tmp_path):
    boom = SourceError("timeout")
    store, source = run_script(tmp_path, [1, boom, boom])
    assert assess(store, source.key, HealthSettings()).state == "degraded"
    assert alerts(store) == []


def test_silent_zero_against_a_baseline_alerts(tmp_path):
    store, source = run_script(tmp_path, [3, 2, 4, 1, 2, 5, 0, 0, 0])
    h = assess(store, source.key, HealthSettings())
    assert h.state == "silent" and h.zero_streak == 3
    assert len(alerts(store)) == 1 and "fetched nothing" in alerts(store)[0]["body"]


@pytest.mark.parametrize("script", [
    [0, 0, 0, 0, 0, 0, 0, 0],  # a quiet brand: zeros are normal
    [3, 0, 0, 0],  # too little history for a baseline
    [3, 0, 2, 0, 1, 0, 0, 0],  # mostly zeros before: no baseline of results
])
def test_zeros_without_a_baseline_do_not_alert(tmp_path, script):
    store, source = run_script(tmp_path, script)
    assert assess(store, source.key, HealthSettings()).state == "ok"
    assert alerts(store) == []


def test_status_command_shows_each_source(tmp_path):
    db = tmp_path / "m.db"
    store, source = run_script(tmp_path, [2, SourceError("HTTP 500"), SourceError("HTTP 500"), SourceError("HTTP 500")])
    store.close()
    cfg = status_config(tmp_path, db)
    result = CliRunner().invoke(main, ["-c", str(cfg), "status", "--format", "json", "--fail-on-broken"])
    assert result.exit_code == 3, result.output
    assert '"source": "Acme:hackernews", "state": "never-run"' in result.output
    assert '"source": "Acme:scripted", "state": "failing"' in result.output
    assert '"consecutive_failures": 3' in result.output
    table = CliRunner().invoke(main, ["-c", str(cfg), "status"])
    assert table.exit_code == 0 and "failing" in table.output and "never" in table.output


def test_daemon_collect_job_raises_the_source_health_alert(tmp_path):
    from monitor.config import Settings
    from monitor.daemon import Daemon

    settings = Settings.model_validate({
        "database": str(tmp_path / "m.db"), "health": {"max_failures": 2},
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
    })
    store = Store(settings.database_path)
    source = ScriptedSource([SourceError("HTTP 502"), SourceError("HTTP 502")])
    daemon = Daemon(settings, store, sources=[], classifier_factory=lambda: None, channels={}, collect_only=True)
    matcher = Matcher(Terms(include=["acme"]))
    daemon.collect_job(source, matcher, 1)
    daemon.collect_job(source, matcher, 1)
    got = alerts(store)
    assert len(got) == 1 and got[0]["title"] == "source broken: Acme:scripted (failing)"
    assert [d["channel"] for d in store.query("SELECT channel FROM deliveries")] == ["console"]
