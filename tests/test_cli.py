"""The command line: check, mentions (filters and formats), demo with the shipped model;
scraped text is never interpreted as markup in the table or the console alert."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from monitor import pipeline
from monitor.alerts.channels import ConsoleChannel
from monitor.alerts.engine import AlertEngine
from monitor.cli import main
from monitor.config import load_settings
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store

from .conftest import ROOT, KeywordClassifier, write_config

MARKUP = "[bold]x[/bold] <script>alert(1)</script> [link=https://evil.example]click[/link]"

CONFIG = """\
database: monitor.db
brands:
  - name: Acme
    terms: {include: [acme]}
  - name: Other
    terms: {include: [other]}
alerts:
  channels: {console: {type: console}}
  rules:
    - name: negative
      when: {sentiment: negative}
      channels: [console]
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def filled(tmp_path):
    """A config and a database holding classified mentions of two brands from two sources."""
    cfg = write_config(tmp_path / "config.yaml", CONFIG)
    now = datetime.now(UTC)
    rows = [
        ("Acme", "hackernews", "1", "acme is terrible, avoid", 1),
        ("Acme", "reddit", "2", "I recommend acme", 30),
        ("Acme", "hackernews", "3", f"acme {MARKUP}", 50),
        ("Other", "hackernews", "4", "other is terrible", 2),
        ("Acme", "reddit", "5", "old acme news", 24 * 10),
    ]
    store = Store(tmp_path / "monitor.db")
    for brand, source, nid, text, hours in rows:
        m = Mention(source=source, native_id=nid, brand=brand, text=text, created_at=now - timedelta(hours=hours),
                    author=Author(source, f"user{nid}"))
        store.save_batch(f"{brand}:{source}", brand.lower(), FetchResult([m], "c"))
    pipeline.classify_pending(store, KeywordClassifier())
    store.close()
    return cfg


def test_check_the_shipped_config():
    result = invoke("-c", str(ROOT / "config.yaml"), "check")
    assert result.exit_code == 0
    assert "config.yaml: OK: 1 brand(s), 1 source job(s), 3 alert rule(s)" in result.output


def test_check_a_broken_config_exits_2(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", CONFIG.replace("include: [acme]", "inclde: [acme]"))
    result = CliRunner().invoke(main, ["-c", str(cfg), "check"])
    assert result.exit_code == 2
    assert "line 4" in result.output and "brands[0].terms.inclde: unknown key" in result.output


def json_rows(result) -> list[dict]:
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize(("args", "ids"), [
    ([], ["1", "4", "2", "3", "5"]),
    (["--brand", "Acme"], ["1", "2", "3", "5"]),
    (["--source", "reddit"], ["2", "5"]),
    (["--source", "Acme:hackernews"], ["1", "3"]),
    (["--sentiment", "negative"], ["1", "4"]),
    (["--sentiment", "positive", "--brand", "Acme"], ["2"]),
    (["--advocacy", "detractor"], ["1"]),
    (["--since", "2d"], ["1", "4", "2"]),
    (["--since", "3h"], ["1", "4"]),
    (["--since", (datetime.now(UTC) - timedelta(days=3)).date().isoformat()], ["1", "4", "2", "3"]),
    (["--limit", "2"], ["1", "4"]),
])
def test_mentions_filters(filled, args, ids):
    result = invoke("-c", str(filled), "mentions", "--format", "json", *args)
    assert result.exit_code == 0
    got = json_rows(result)
    assert [str(r["id"]) for r in got] == ids


def test_mentions_json_and_csv_carry_the_classification(filled):
    rows = json_rows(invoke("-c", str(filled), "mentions", "--format", "json", "--brand", "Acme"))
    first = rows[0]
    assert first["text"] == "acme is terrible, avoid"
    assert first["sentiment"] == "negative" and first["sentiment_p"] == pytest.approx(0.9)
    assert first["model"] == "keyword-fake@1" and first["author"] == "user1"
    out = invoke("-c", str(filled), "mentions", "--format", "csv").output
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert len(parsed) == 5 and parsed[0]["sentiment"] == "negative"
    assert any(r["text"] == f"acme {MARKUP}" for r in parsed)


def test_mentions_table(filled):
    out = invoke("-c", str(filled), "mentions").output
    for col in ("when", "brand", "source", "author", "sentiment", "advocacy", "text"):
        assert col in out
    assert "negative 0.90" in out and "promoter 0.90" in out and "acme is terrible, avoid" in out


def test_the_table_never_interprets_scraped_text_as_markup(filled):
    out = invoke("-c", str(filled), "mentions", "--source", "Acme:hackernews").output
    assert "[bold]x[/bold]" in out and "<script>alert(1)</script>" in out
    assert "[link=https://evil.example]click[/link]" in out
    assert "\x1b" not in out


def test_a_bad_since_is_a_usage_error(filled):
    result = CliRunner().invoke(main, ["-c", str(filled), "mentions", "--since", "last tuesday"])
    assert result.exit_code == 2 and "neither a duration" in result.output


def test_the_console_alert_never_interprets_scraped_text(tmp_path):
    cfg = write_config(tmp_path / "config.yaml", CONFIG)
    settings = load_settings(cfg, env={})
    store = Store(settings.database_path)
    text = f"acme is terrible {MARKUP} \x1b[2J\x1b]8;;https://evil.example\x07"
    store.save_batch("Acme:hackernews", "acme", FetchResult(
        [Mention(source="hackernews", native_id="1", brand="Acme", text=text, created_at=datetime.now(UTC),
                 author=Author("hackernews", "[red]mallory[/red]"))], "c"))
    pipeline.classify_pending(store, KeywordClassifier(), engine=AlertEngine.from_settings(settings.alerts, store))
    out = io.StringIO()
    assert pipeline.deliver(store, {"console": ConsoleChannel(stream=out)})["sent"] == 1
    printed = out.getvalue()
    store.close()
    assert MARKUP in printed and "[red]mallory[/red]" in printed
    assert "\x1b" not in printed and "\x07" not in printed


@pytest.mark.slow
def test_demo_shows_classified_mentions_with_the_shipped_model(tmp_path):
    result = invoke("-c", str(ROOT / "config.yaml"), "demo", "--database", str(tmp_path / "demo.db"))
    assert result.exit_code == 0
    out = result.output
    assert "collected 448 sample mention(s)" in out  # reviews of the brand's own app count without naming it
    assert "collected 31 sample mention(s)" in out  # the competitor: only the posts that name it
    assert "classified 479 mention(s) with advocacy-minilm@" in out
    delivered = re.search(r"^(\d+) alert\(s\) delivered", out, re.M)
    assert "ALERT [" in out and delivered and int(delivered.group(1)) > 0  # the samples hold detractors with reach
    titles = re.findall(r"^ALERT \[\w+\] (.*) by (.*) on (\S+) \((.*)\)$", out, re.M)
    assert len(titles) == out.count("ALERT [")
    assert any(", " in rules for *_, rules in titles) and {src for _, _, src, _ in titles} <= {
        "hackernews", "reddit", "mastodon", "bluesky", "appstore", "google_news"}
    index_weeks = re.findall(r"week of \S+ +[+-]\d+ \[", out)
    assert len(index_weeks) >= 8  # the advocacy index has a number for every full week of the samples
    assert re.search(r"^[1-9]\d* advocates flagged: ", out, re.M) and re.search(r"^[1-9]\d* detractors flagged", out,
                                                                                  re.M)
    store = Store(tmp_path / "demo.db", readonly=True)
    try:
        rows = store.mentions(limit=1000)
        alerted = [i for r in store.query("SELECT mention_ids FROM alerts") for i in json.loads(r["mention_ids"])]
    finally:
        store.close()
    assert len(alerted) == len(titles) == len(set(alerted))  # one alert per mention, naming every rule that matched
    assert len(rows) == 479 and all(r["sentiment"] in {"negative", "neutral", "positive"} for r in rows)
    by_brand = {b: {r["text"] for r in rows if r["brand"] == b} for b in ("Acme", "BigCo")}
    assert len(by_brand["BigCo"]) == 31 and by_brand["BigCo"] <= by_brand["Acme"]  # once per brand it names
    assert all(r["model"].startswith("advocacy-minilm@") for r in rows)
    assert sum(r["sentiment"] in out for r in rows) > 0
