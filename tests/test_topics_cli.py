"""`monitor topics` through click, on a real database with synthetic sentence vectors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from monitor.cli import main
from monitor.store import Store
from tests.topics_data import MODEL, add_themes


def config(tmp_path, **themes):
    (tmp_path / "config.yaml").write_text(
        "database: m.db\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n"
        "  - name: Quiet\n    terms: {include: [quiet]}\n")
    store = Store(tmp_path / "m.db")
    add_themes(store, themes or {"battery": 40, "support": 30, "shipping": 20}, now=datetime.now(UTC),
               extra=" \x9b31m\u202e")  # a C1 escape and a bidi override, as scraped text can hold
    store.close()
    return str(tmp_path / "config.yaml")


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_topics_table_names_each_theme_with_clean_examples(tmp_path):
    cfg = config(tmp_path)
    r = run(["-c", cfg, "topics", "--brand", "acme"])
    assert r.exit_code == 0, r.output
    assert "Acme: 90 mentions since" in r.output and MODEL in r.output
    for word in ("battery", "support", "shipping"):
        assert word in r.output
    assert "\x9b" not in r.output and "\u202e" not in r.output and "\x1b" not in r.output
    assert "new (was 0)" in r.output


def test_topics_json_keeps_ids_between_runs_and_every_brand_gets_a_line(tmp_path):
    cfg = config(tmp_path)
    first = [json.loads(line) for line in run(["-c", cfg, "topics", "--format", "json"]).stdout.splitlines()]
    assert [b["brand"] for b in first] == ["Acme", "Quiet"]
    acme, quiet = first
    assert len(acme["themes"]) == 3 and acme["note"] is None
    assert sum(t["size"] for t in acme["themes"]) + acme["other"] == acme["mentions"] == 90
    assert len(acme["themes"][0]["examples"]) == 3 and set(acme["themes"][0]["sentiment"]) == {
        "positive", "neutral", "negative"}
    assert quiet["themes"] == [] and "not enough data: 0 mentions" in quiet["note"]
    again = json.loads(run(["-c", cfg, "topics", "--brand", "Acme", "--format", "json"]).stdout)
    assert [t["id"] for t in again["themes"]] == [t["id"] for t in acme["themes"]]


def test_topics_for_detractors_and_the_not_enough_data_cases(tmp_path):
    cfg = config(tmp_path, battery=40, support=3)
    r = run(["-c", cfg, "topics", "--brand", "Acme", "--stance", "detractor"])
    assert r.exit_code == 0 and "40 detractors' mentions" in r.output and "no distinct themes" in r.output
    r = run(["-c", cfg, "topics", "--brand", "Acme", "--stance", "promoter"])
    assert "not enough data: 3 promoters' mentions" in r.output
    r = run(["-c", cfg, "topics", "--brand", "Quiet", "--since", "7d"])
    assert r.exit_code == 0 and "not enough data: 0 mentions" in r.output


def test_topics_usage_errors(tmp_path):
    cfg = config(tmp_path, battery=3)
    r = CliRunner().invoke(main, ["-c", cfg, "topics", "--brand", "Nobody"])
    assert r.exit_code == 2 and "no brand 'Nobody'" in r.output
    r = CliRunner().invoke(main, ["-c", cfg, "topics", "--since", "2999-01-01"])
    assert r.exit_code == 2 and "not in the past" in r.output
