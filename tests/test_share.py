"""Share of voice (monitor.share): the figures on a real SQLite file, `monitor share` through
click, and the Compare page in-process through httpx's ASGI transport."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from monitor import advocates
from monitor.cli import main
from monitor.config import ConfigError, Settings, load_settings
from monitor.share import competitors, share_of_voice
from monitor.store import Store
from tests.topics_data import NOW, add_themes
from tests.web_support import client as web_client
from tests.web_support import login, make_app, make_db

HOSTILE = ' <script>alert("x")</script>'


def settings(db) -> Settings:
    return Settings.model_validate({
        "database": str(db),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                   {"name": "Globex", "terms": {"include": ["globex"]}, "competitor": True},
                   {"name": "Initech", "terms": {"include": ["initech"]}, "competitor": True}],
        "advocates": {"index_min_sample": 5},
    })


def seed(store: Store, now: datetime = NOW) -> None:
    add_themes(store, {"battery": 40, "support": 30, "shipping": 20}, now=now, extra=HOSTILE)
    add_themes(store, {"support": 30}, brand="Globex", start_id=1000, now=now)


def test_competitor_flag_is_optional_and_a_broken_value_names_its_key(tmp_path):
    s = settings(tmp_path / "m.db")
    assert competitors(s.brands) == {"Globex", "Initech"}
    assert Settings.model_validate({"brands": [{"name": "A", "terms": {"include": ["a"]}}]}).brands[0].competitor \
        is False
    (tmp_path / "c.yaml").write_text("brands:\n  - name: A\n    terms: {include: [a]}\n    competitor: maybe\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "c.yaml")
    assert "line 4: brands[0].competitor: Input should be a valid boolean" in " ".join(err.value.problems)


def test_share_of_voice_side_by_side_with_index_and_weekly_series(tmp_path):
    s = settings(tmp_path / "m.db")
    store = Store(s.database_path, now=lambda: NOW)
    seed(store)
    advocates.refresh(store, s.advocates, now=NOW)
    report = share_of_voice(store, ["Globex", "Acme", "Initech"], s.advocates, since=NOW - timedelta(days=30),
                            until=NOW, rivals=competitors(s.brands))
    assert [b.brand for b in report.brands] == ["Acme", "Globex", "Initech"]  # own brands first
    acme, globex, initech = report.brands
    assert report.total == 120 and report.note is None
    assert acme.mentions == 90 and acme.share == pytest.approx(0.75) and globex.share == pytest.approx(0.25)
    assert not acme.competitor and globex.competitor
    assert acme.sentiment == {"positive": pytest.approx(30 / 90, abs=1e-4), "neutral": 0.0,
                              "negative": pytest.approx(60 / 90, abs=1e-4)}
    # the advocacy index and its interval are advocates.nps's: (30 - 40) / 90
    assert acme.index == advocates.nps(30, 20, 40, min_sample=5, confidence=s.advocates.index_confidence)
    assert acme.index["value"] == pytest.approx(-11.1) and acme.index["low"] < -11.1 < acme.index["high"]
    assert globex.index["value"] == 100.0
    assert initech.mentions == 0 and initech.share == 0.0 and "not enough data" in (initech.note or "")
    assert initech.index["value"] is None and initech.sentiment is None
    shares = report.weekly_shares()
    assert len(report.weeks) >= 3 and all(len(v) == len(report.weeks) for v in shares.values())
    for i in range(len(report.weeks)):
        assert sum(v[i] or 0 for v in shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(acme.weeks.values()) == 90
    data = report.as_dict()
    assert data["brands"][2]["share"] == 0.0 and data["brands"][0]["weekly"]["share"] == shares["Acme"]


def test_no_mentions_at_all_is_not_enough_data_not_a_division_by_zero(tmp_path):
    s = settings(tmp_path / "m.db")
    store = Store(s.database_path, now=lambda: NOW)
    report = share_of_voice(store, ["Acme", "Globex"], s.advocates, since=NOW - timedelta(days=30), until=NOW,
                            rivals={"Globex"})
    assert report.total == 0 and "not enough data" in (report.note or "")
    assert all(b.share is None and b.note and b.index["value"] is None for b in report.brands)
    assert report.weekly_shares() == {"Acme": [], "Globex": []}
    assert share_of_voice(store, [], s.advocates, since=NOW - timedelta(days=3), until=NOW).note


def _config(tmp_path, with_data: bool = True) -> str:
    (tmp_path / "config.yaml").write_text(
        "database: m.db\nadvocates: {index_min_sample: 5}\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n"
        "  - name: Globex\n    terms: {include: [globex]}\n    competitor: true\n"
        "  - name: Initech\n    terms: {include: [initech]}\n    competitor: true\n")
    store = Store(tmp_path / "m.db")
    if with_data:
        seed(store, now=datetime.now(UTC))
    advocates.refresh(store, settings(tmp_path / "m.db").advocates)
    store.close()
    return str(tmp_path / "config.yaml")


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_share_command_table_and_json(tmp_path):
    cfg = _config(tmp_path)
    r = run(["-c", cfg, "share", "--since", "30d"])
    assert r.exit_code == 0, r.output
    assert "120 mentions of 3 brand(s)" in r.output and "Globex (competitor)" in r.output
    assert "75%" in r.output and "25%" in r.output and "not enough data" in r.output
    assert "battery" in r.output
    data = json.loads(run(["-c", cfg, "share", "--format", "json"]).stdout)
    assert [b["brand"] for b in data["brands"]] == ["Acme", "Globex", "Initech"]
    acme = data["brands"][0]
    assert acme["mentions"] == 90 and acme["share"] == 0.75 and acme["index"]["value"] == pytest.approx(-11.1)
    assert acme["themes"] and all(isinstance(t, str) for t in acme["themes"])
    assert data["brands"][2]["note"].startswith("not enough data")


def test_share_command_with_no_mentions(tmp_path):
    cfg = _config(tmp_path, with_data=False)
    r = run(["-c", cfg, "share"])
    assert r.exit_code == 0 and "not enough data: no mentions of any brand" in r.output
    r = CliRunner().invoke(main, ["-c", cfg, "share", "--since", "bogus"])
    assert r.exit_code == 2


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_compare_page_side_by_side_escaped_with_a_chart(tmp_path):
    web_settings, store = make_db(tmp_path, seeder=seed)
    async with web_client(make_app(web_settings, store)) as c:
        r = await c.get("/compare")
        assert r.status_code == 303  # login first
        await login(c)
        r = await c.get("/compare?days=30")
        assert r.status_code == 200
        html = r.text
        assert 'href="/compare" class="on"' in html and "<b>Acme</b>" in html and "<b>Globex</b>" in html
        assert "75%" in html and "25%" in html and "battery" in html
        assert "<script>alert" not in html
        series = json.loads(re.search(r'<script type="application/json" id="compare-data">(.*?)</script>', html,
                                      re.S).group(1))
        assert [b["brand"] for b in series["brands"]] == ["Acme", "Globex"]
        assert all(len(b["share"]) == len(series["weeks"]) for b in series["brands"])
        r = await c.get("/compare?days=1")  # a day with nothing in it: whole weeks still hold the mentions
        assert r.status_code == 200


@pytest.mark.anyio
async def test_compare_page_with_no_mentions(tmp_path):
    web_settings, store = make_db(tmp_path, seeder=lambda s: None)
    async with web_client(make_app(web_settings, store)) as c:
        await login(c)
        r = await c.get("/compare?days=99999")
        assert r.status_code == 200 and "not enough data: no mentions of any brand" in r.text
        assert "chart-compare" not in r.text


@pytest.mark.anyio
async def test_compare_page_a_competitor_with_no_data_says_so(tmp_path):
    from monitor.web.app import create_app
    from monitor.web.security import hash_password
    from tests.web_support import PASSWORD

    s = settings(tmp_path / "m.db")  # Initech: a competitor configured, never mentioned
    store = Store(s.database_path, now=lambda: NOW)
    seed(store)
    store.accounts.add_user("maria", hash_password(PASSWORD, n=2**12))
    advocates.refresh(store, s.advocates, now=NOW)
    reader = Store(s.database_path, readonly=True, now=lambda: NOW)
    async with web_client(create_app(s, reader, store, now=lambda: NOW)) as c:
        await login(c)
        html = (await c.get("/compare?days=30")).text
    row = re.search(r'<tr id="brand-3">(.*?)</tr>', html, re.S).group(1)
    assert "<b>Initech</b>" in row and "competitor" in row and "not enough data: no mentions of Initech" in row
    assert "%" not in row  # no share made up for it
    series = json.loads(re.search(r'id="compare-data">(.*?)</script>', html, re.S).group(1))
    assert series["brands"][2]["mentions"] == [0] * len(series["weeks"])
    reader.close()
