"""Model versions in the store: new mentions first, history caught up without alerts,
--reclassify over everything, listings that show only the current model's results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from classify_fakes import FakeClassifier
from click.testing import CliRunner

from monitor import pipeline
from monitor.cli import main
from monitor.config import AlertRule
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store

RULE = AlertRule.model_validate({"name": "detractors", "when": {"advocacy": "detractor", "min_probability": 0.5},
                                 "channels": ["console"]})


def add_mentions(store: Store, texts: list[str], start: int = 0) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    store.save_batch("Acme:demo", "acme", FetchResult([
        Mention(source="demo", native_id=str(start + i), brand="Acme", text=t,
                created_at=t0 + timedelta(hours=start + i),
                author=Author(source="demo", handle=f"u{i}")) for i, t in enumerate(texts)], None))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "m.db")
    add_mentions(s, ["acme is great", "avoid acme", "acme, awful"])
    return s


def counts(store: Store) -> dict[str, int]:
    return {r["model"]: r["n"] for r in store.query("SELECT model, count(*) AS n FROM classifications GROUP BY model")}


def test_a_new_model_catches_up_on_history_without_alerting(store):
    old, new = FakeClassifier("fake@1"), FakeClassifier("fake@2")
    assert pipeline.classify_pending(store, old, [RULE], {"detractors": ["console"]}) == 3
    assert store.counts()["alerts"] == 2
    add_mentions(store, ["acme: avoid, hate it"], start=10)
    assert [r["seen"] for r in store.unclassified("fake@2", 10)] == [0, 1, 1, 1]  # the new mention first
    assert pipeline.classify_pending(store, new, [RULE], {"detractors": ["console"]}) == 4
    assert store.counts()["alerts"] == 3  # only the mention no model had seen
    assert counts(store) == {"fake@1": 3, "fake@2": 4}  # both versions kept, side by side
    assert pipeline.classify_pending(store, new, [RULE], {}) == 0


def test_listing_prefers_the_current_model_and_says_whose_result_it_shows(store):
    pipeline.classify_pending(store, FakeClassifier("fake@1"), [], {})
    rows = store.mentions(model="fake@2", strict=True)
    assert len(rows) == 3 and all(r["model"] is None and r["sentiment"] is None for r in rows)
    assert store.mentions(model="fake@2", sentiment="negative", strict=True) == []
    assert {r["model"] for r in store.mentions(model="fake@2")} == {"fake@1"}  # nothing newer yet
    pipeline.classify_pending(store, FakeClassifier("fake@2"), [], {}, limit=1)
    rows = store.mentions(model="fake@2", strict=True)
    assert sorted((r["model"] or "-") for r in rows) == ["-", "-", "fake@2"]
    assert sorted(r["model"] for r in store.mentions(model="fake@2")) == ["fake@1", "fake@1", "fake@2"]
    # fake@1 classified later than fake@2 still loses to the current model
    pipeline.reclassify_all(store, FakeClassifier("fake@1"))
    assert sorted(r["model"] for r in store.mentions(model="fake@2")) == ["fake@1", "fake@1", "fake@2"]
    assert sorted(r["model"] for r in store.mentions(model="fake@1")) == ["fake@1"] * 3


def test_reclassify_reruns_everything_with_the_current_model(store):
    model = FakeClassifier("fake@1")
    pipeline.classify_pending(store, model, [], {})
    seen = []
    assert pipeline.reclassify_all(store, model, batch_size=2, progress=seen.append) == 3
    assert seen == [2, 1] and counts(store) == {"fake@1": 3} and store.counts()["alerts"] == 0


def test_a_poison_text_is_marked_and_never_retried_forever(store):
    add_mentions(store, ["acme POISON"], start=20)
    model = FakeClassifier("fake@1", fail_on="POISON")
    assert pipeline.classify_pending(store, model, [], {}) == 4
    status = {r["text"]: r["status"] for r in store.mentions(model="fake@1")}
    assert status["acme POISON"] == "error" and status["acme is great"] == "ok"
    assert pipeline.classify_pending(store, model, [], {}) == 0


def write_config(tmp_path, model_dir) -> str:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "database": "m.db",
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}, "sources": [{"type": "demo"}]}],
        "classifier": {"engine": "torch", "model": str(model_dir)},
    }))
    return str(config)


def test_cli_classify_reclassify_and_mentions_use_the_current_model(tmp_path, tiny_model):
    config = write_config(tmp_path, tiny_model)
    store = Store(tmp_path / "m.db")
    add_mentions(store, ["acme is great", "avoid acme", ""])
    pipeline.classify_pending(store, FakeClassifier("older@1"), [], {})
    runner = CliRunner()
    out = runner.invoke(main, ["-c", config, "mentions", "--format", "json", "--model", "tiny-bert@local"])
    assert out.exit_code == 0, out.output
    assert all(json.loads(line)["model"] is None for line in out.stdout.splitlines())
    out = runner.invoke(main, ["-c", config, "mentions", "--model", "tiny-bert@local"])
    assert "3 of these mention(s) are not classified by tiny-bert@local yet" in out.stderr
    out = runner.invoke(main, ["-c", config, "classify"])
    assert out.exit_code == 0, out.output
    assert "classified 3 mention(s) with tiny-bert@local" in out.stdout
    out = runner.invoke(main, ["-c", config, "classify", "--reclassify"])
    assert "classified 3 mention(s)" in out.stdout
    rows = [json.loads(line) for line in runner.invoke(
        main, ["-c", config, "mentions", "--format", "json", "--model", "tiny-bert@local"]).stdout.splitlines()]
    assert {r["model"] for r in rows} == {"tiny-bert@local"}
    assert sorted(r["status"] for r in rows) == ["empty", "ok", "ok"]
    assert counts(store) == {"older@1": 3, "tiny-bert@local": 3}
