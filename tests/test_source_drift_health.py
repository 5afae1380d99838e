"""Source drift: one optional field missing never costs every item (App Store entries
without ``updated``), and a page whose items all fail validation is a changed API that
health alerts on at once (``api_changed``), not "50 skipped"."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import HealthSettings
from monitor.health import assess
from monitor.store import Store
from tests.fakes.sources import FixtureServer, Reply, fixture_json
from tests.test_source_contract import CASES, NOW, Case, Harness
from tests.test_source_health import T0, Clock, run_script, status_config

JP = "appstore/reviews_jp_no_updated.json"


# ---------------------------------------------------------------- App Store without `updated`

def _jp_harness(server, tmp_path, body: dict | None = None) -> Harness:
    base = CASES["appstore"]
    case = Case({**base.settings, "countries": ["jp"]},
                {"/jp/rss/customerreviews/*": Reply(body=json.dumps(body or fixture_json(JP)).encode())},
                "/jp/rss/customerreviews/*", 5)
    return Harness(case, server, tmp_path)


def _stored(h: Harness) -> list[dict]:
    rows = h.store.query("SELECT native_id, created_at, rating, text, extra FROM mentions ORDER BY id")
    for r in rows:
        r["extra"] = json.loads(r["extra"]) if isinstance(r["extra"], str) else (r["extra"] or {})
    return rows


def test_fixture_is_real_shaped_and_has_no_entry_dates():
    data = fixture_json(JP)
    assert all("updated" not in e for e in data["feed"]["entry"]) and len(data["feed"]["entry"]) == 5
    assert "updated" in data["feed"]


def test_appstore_reviews_without_updated_take_the_feed_date(tmp_path):
    with FixtureServer() as server:
        h = _jp_harness(server, tmp_path)
        stats = h.collect()
    assert stats.ok and stats.skipped == 0 and stats.new == 5
    rows = _stored(h)
    assert len(rows) == 5 and rows[1]["text"].startswith("4.2.1にしてから")
    assert {r["extra"]["date_guessed"] for r in rows} == {"feed"}
    feed_time = datetime(2026, 11, 21, 3, 15, 3, tzinfo=UTC)  # 2026-11-20T20:15:03-07:00
    assert {datetime.fromisoformat(r["created_at"]) for r in rows} == {feed_time}
    assert h.health().state == "ok"


def test_appstore_without_any_date_uses_the_fetch_time(tmp_path):
    data = fixture_json(JP)
    del data["feed"]["updated"]
    with FixtureServer() as server:
        h = _jp_harness(server, tmp_path, data)
        h.collect()
    rows = _stored(h)
    assert len(rows) == 5 and {r["extra"]["date_guessed"] for r in rows} == {"fetched"}
    assert {datetime.fromisoformat(r["created_at"]) for r in rows} == {NOW}


def test_appstore_entry_date_fields_come_first(tmp_path):
    data = fixture_json(JP)
    data["feed"]["entry"][0]["published"] = {"label": "2026-11-19T09:00:00+09:00"}
    data["feed"]["entry"][1]["updated"] = {"label": "2026-11-18T09:00:00+09:00"}
    with FixtureServer() as server:
        h = _jp_harness(server, tmp_path, data)
        h.collect()
    rows = {r["native_id"]: r for r in _stored(h)}
    first, second = data["feed"]["entry"][0]["id"]["label"], data["feed"]["entry"][1]["id"]["label"]
    assert datetime.fromisoformat(rows[first]["created_at"]) == datetime(2026, 11, 19, 0, 0, tzinfo=UTC)
    assert datetime.fromisoformat(rows[second]["created_at"]) == datetime(2026, 11, 18, 0, 0, tzinfo=UTC)
    assert "date_guessed" not in rows[first]["extra"] and "date_guessed" not in rows[second]["extra"]
    assert sum(1 for r in rows.values() if r["extra"].get("date_guessed") == "feed") == 3


def test_appstore_unreadable_updated_still_skips_the_review(tmp_path):
    data = fixture_json(JP)
    data["feed"]["entry"][0]["updated"] = {"label": "soon"}
    with FixtureServer() as server:
        h = _jp_harness(server, tmp_path, data)
        stats = h.collect()
    assert stats.skipped == 1 and stats.new == 4 and h.health().state == "ok"


def test_appstore_page_of_broken_reviews_is_api_changed_and_logs_one_sample(tmp_path, caplog):
    data = fixture_json(JP)
    for e in data["feed"]["entry"]:
        e["im:rating"] = {"value": e["im:rating"]["label"]}  # a renamed key: every review fails
    with FixtureServer() as server, caplog.at_level(logging.WARNING):
        h = _jp_harness(server, tmp_path, data)
        stats = h.collect()
    assert not stats.ok and stats.skipped == 5 and h.stored() == []
    health = h.health()
    assert health.state == "api_changed" and health.broken
    first = [r for r in caplog.records if "first on page" in r.getMessage()]
    assert len(first) == 1 and "rating.label: Field required" in first[0].getMessage()
    assert not any(e["content"]["label"][:10] in caplog.text for e in data["feed"]["entry"])  # no review text


# ---------------------------------------------------------------- api_changed health

def alerts(store):
    return store.query("SELECT key, title, body FROM alerts WHERE rule = 'source-health' ORDER BY id")


def test_a_page_of_only_failed_items_alerts_once_per_episode(tmp_path):
    store, source = run_script(tmp_path, [(20, 0), (0, 50), (0, 50), (0, 50), (30, 0), (0, 50)])
    got = alerts(store)
    assert len(got) == 2  # two episodes: a recovery in between
    assert got[0]["key"] != got[1]["key"]
    assert got[0]["title"] == "source broken: Acme:scripted (api_changed)"
    assert ("Acme:scripted: all 50 items of a page failed validation — the API may have changed; "
            "see the log for the first error") in got[0]["body"]
    h = assess(store, source.key, HealthSettings())
    assert h.state == "api_changed" and h.failed_items == 50


def test_nearly_all_failed_is_api_changed_too(tmp_path):
    store, source = run_script(tmp_path, [(1, 49)])
    h = assess(store, source.key, HealthSettings())
    assert h.state == "api_changed" and "49 of 50 items failed validation" in h.problem
    assert len(alerts(store)) == 1


@pytest.mark.parametrize("page", [(49, 1), (45, 5), (0, 1), (1, 2)])
def test_a_few_bad_items_stay_ok(tmp_path, page):
    store, source = run_script(tmp_path, [(10, 0), page])
    assert assess(store, source.key, HealthSettings()).state == "ok"
    assert alerts(store) == []


def test_old_runs_recorded_before_the_marker_are_read_from_their_counts(tmp_path):
    store = Store(tmp_path / "m.db", now=Clock())
    store.record_run("Acme:old", T0, fetched=0, new=0, skipped=100, error=None)
    h = assess(store, "Acme:old", HealthSettings())
    assert h.state == "api_changed" and "all 100 items of a page" in h.problem


def test_status_reports_api_changed(tmp_path):
    db = tmp_path / "m.db"
    store, _ = run_script(tmp_path, [(5, 0), (0, 100)])
    store.close()
    cfg = status_config(tmp_path, db)
    result = CliRunner().invoke(main, ["-c", str(cfg), "status", "--format", "json", "--fail-on-broken"])
    assert result.exit_code == 3, result.output
    row = [json.loads(x) for x in result.output.splitlines() if '"Acme:scripted"' in x][0]
    assert row["state"] == "api_changed" and row["failed"] == 100
    assert row["problem"].startswith("all 100 items of a page failed validation — the API may have changed")
    table = CliRunner().invoke(main, ["-c", str(cfg), "status"])
    assert table.exit_code == 0 and "api_changed" in table.output

