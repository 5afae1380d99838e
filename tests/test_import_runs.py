"""`monitor import` recorded like a source run (``monitor status`` shows when, how many
stored and skipped, and a file that failed), and the survey score in the web page's CSV
export of mentions."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_settings
from monitor.store import Store
from monitor.web.security import hash_password
from tests.test_import import MAP, NPS, run
from tests.web_support import PASSWORD, login, make_app
from tests.web_support import client as web_client


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("database: m.db\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n"
                    "advocates:\n  index_min_sample: 2\n")
    return str(path)


def status(cfg) -> dict[str, dict]:
    r = CliRunner().invoke(main, ["-c", cfg, "status", "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return {row["source"]: row for row in map(json.loads, r.stdout.splitlines())}


def runs(tmp_path) -> list[dict]:
    return Store(tmp_path / "m.db").query(
        "SELECT source_key, fetched, new, skipped, ok, error FROM source_runs ORDER BY id")


def test_an_import_is_a_run_that_status_shows(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS + "r4,,5,2026-11-05,d@x.io\n")  # one row without text
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 0
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 0
    assert [(r["source_key"], r["fetched"], r["new"], r["skipped"], r["ok"]) for r in runs(tmp_path)] == [
        ("Acme:nps", 3, 3, 1, 1), ("Acme:nps", 3, 0, 1, 1)]
    row = status(cfg)["Acme:nps"]
    assert row["state"] == "ok" and row["last_run"] and row["last_success"]
    assert (row["fetched"], row["new"], row["failed"]) == (3, 0, 1)


def test_a_file_that_fails_is_a_failed_run(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS.replace(",", ";"))
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 1
    (tmp_path / "t.csv").write_text("text,score\nx,12\n")
    assert run(cfg, tmp_path / "t.csv", "--brand", "Acme", "--source", "nps", "--score", "score").exit_code == 1
    got = runs(tmp_path)
    assert [(r["ok"], r["new"], r["skipped"]) for r in got] == [(0, 0, 0), (0, 0, 1)]
    assert "nps.csv: line 1: column 'comment' not in the header" in got[0]["error"]
    assert "no importable row" in got[1]["error"]
    row = status(cfg)["Acme:nps"]
    assert row["consecutive_failures"] == 2 and "no importable row" in (row["problem"] or "")
    assert Store(tmp_path / "m.db").query("SELECT count(*) AS n FROM mentions")[0]["n"] == 0


def test_an_unknown_brand_records_no_run(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Nope", "--source", "nps", *MAP).exit_code == 1
    assert not (tmp_path / "m.db").exists() or runs(tmp_path) == []


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_mentions_export_has_the_survey_score(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 0
    settings = load_settings(cfg)
    store = Store(settings.database_path)
    store.accounts.add_user("maria", hash_password(PASSWORD, n=2**12))
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        r = await c.get("/export/mentions.csv")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["text"].splitlines()[0]: row["score"] for row in rows} == {
        "Love the new dashboard": "10", "Fine, I guess": "7", "Support never answered": "2"}
    assert {row["basis"] for row in rows} == {"survey"}
