"""Data governance: retention with its figures kept, `monitor forget`, their CLI and daemon job."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from monitor import advocates, governance
from monitor.cli import main
from monitor.config import Settings, load_settings
from monitor.errors import ConfigError
from monitor.records import Alert, Author, FetchResult, Mention
from monitor.store import Store
from monitor.web.views import Views
from tests.pg_support import database_text
from tests.web_data import NOW, add, classification, seed

from .conftest import write_config

MENTION_TABLES = ("classifications", "corrections", "alert_holds", "alert_waits")


def settings_with(tmp_path, brand_retention=None, sources=(), **extra) -> Settings:
    brand = {"name": "Acme", "terms": {"include": ["acme"]}, "sources": list(sources)}
    if brand_retention:
        brand["retention"] = brand_retention
    return Settings.model_validate({"database": str(tmp_path / "monitor.db"), "advocates": {"index_min_sample": 2},
                                    "brands": [brand, {"name": "Globex", "terms": {"include": ["globex"]}}], **extra})


@pytest.fixture
def seeded(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    seed(store)
    yield store
    store.close()


def totals(store: Store, settings: Settings, brand: str | None = "Acme") -> dict:
    view = Views(store, settings, now=lambda: NOW).overview(brand, weeks=26)
    return {"totals": view["totals"], "mentions": view["series"]["mentions"], "index": view["series"]["index"],
            "sources": view["top_sources"]}


def ids_older_than(store: Store, days: int) -> list[int]:
    cut = (NOW - timedelta(days=days)).isoformat(timespec="seconds")
    return [r["id"] for r in store.query("SELECT id FROM mentions WHERE brand = 'Acme' AND created_at < ?", [cut])]


def test_retention_deletes_old_mentions_with_derived_rows_and_keeps_the_overview_figures(seeded, tmp_path):
    settings = settings_with(tmp_path, brand_retention="20d")
    old = ids_older_than(seeded, 20)
    assert len(old) == 4  # alice at 24 and 31 days, carol at 30 and 40
    seeded.accounts.add_correction(old[0], "advocacy", "detractor", "maria")
    seeded.alerts.hold("r", "group", "g", old[1], NOW)
    seeded.alerts.wait("r", old[1], NOW, NOW + timedelta(hours=1))
    keep = ids_older_than(seeded, 0)[-1]
    seeded.alerts.insert([Alert("r", "r:1", "warning", "[Acme] promoter by carol", "carol wrote: acme is great",
                                brand="Acme", mention_ids=(old[2], keep))], {"r": ["console"]})
    advocates.refresh(seeded, settings.advocates, now=NOW)
    before, stored = totals(seeded, settings), seeded.count_mentions()

    result = governance.run_retention(seeded, settings)

    assert result.mentions == 4 and result.rows["mentions"] == 4
    assert result.rows["classifications"] == 4 and result.rows["corrections"] == 1
    assert result.rows["alert_holds"] == 1 and result.rows["alert_waits"] == 1 and result.rows["alerts"] == 1
    assert not ids_older_than(seeded, 20) and seeded.count_mentions() == stored - 4
    for table in MENTION_TABLES:
        assert not seeded.query(f"SELECT 1 FROM {table} WHERE mention_id IN "
                                "(SELECT CAST(value AS INTEGER) FROM json_each(?))", [json.dumps(old)]), table
    alert = seeded.query("SELECT title, body, mention_ids, data FROM alerts")[0]
    assert "carol" not in alert["title"] + alert["body"] + alert["data"]
    assert json.loads(alert["mention_ids"]) == [keep]
    # the weeks of the deleted mentions count as before: incrementally, and after a full rebuild
    assert totals(seeded, settings) == before
    advocates.refresh(seeded, settings.advocates, full=True, now=NOW)
    assert totals(seeded, settings) == before
    assert seeded.query("SELECT count(*) AS n FROM retention_runs WHERE dry_run = 0")[0]["n"] == 1
    # the next run finds nothing more
    assert governance.run_retention(seeded, settings).mentions == 0


def test_a_dry_run_counts_exactly_and_deletes_nothing(seeded, tmp_path):
    settings = settings_with(tmp_path, brand_retention="20d")
    stored = seeded.count_mentions()
    dry = governance.run_retention(seeded, settings, dry_run=True)
    assert dry.mentions == 4 and seeded.count_mentions() == stored
    assert not seeded.query("SELECT 1 FROM retained_daily")
    real = governance.run_retention(seeded, settings)
    assert real.rows == dry.rows


def test_a_sources_own_retention_wins_over_its_brands(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    for key, days in (("Acme:hackernews", 50), ("Acme:reddit", 50), ("Acme:reddit", 5), ("Globex:hackernews", 500)):
        brand = key.split(":")[0]
        m = Mention(key.split(":")[1], f"{key}{days}", brand, f"{brand.lower()} text", NOW - timedelta(days=days))
        store.save_batch(key, "q", FetchResult([m], None))
    settings = settings_with(tmp_path, brand_retention="30d",
                             sources=[{"type": "hackernews", "retention": "400d"}, {"type": "demo", "name": "reddit"}])
    rules = governance.retention_rules(settings)
    assert [(r.source_keys, r.exclude_keys) for r in rules] == [(("Acme:hackernews",), ()),
                                                                 (None, ("Acme:hackernews",))]
    result = governance.run_retention(store, settings)
    assert result.mentions == 1  # the 50-day reddit mention; hackernews keeps 400 days, Globex has none
    assert {(r["source_key"], r["native_id"]) for r in store.query("SELECT source_key, native_id FROM mentions")} == {
        ("Acme:hackernews", "Acme:hackernews50"), ("Acme:reddit", "Acme:reddit5"),
        ("Globex:hackernews", "Globex:hackernews500")}


def test_a_copy_of_a_deleted_original_becomes_the_original(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    url = "https://blog.example.com/acme-review"
    for key, nid, days in (("Acme:hackernews", "1", 60), ("Acme:reddit", "2", 10), ("Acme:lobsters", "3", 5)):
        m = Mention(key.split(":")[1], nid, "Acme", "acme review", NOW - timedelta(days=days), url=url,
                    canonical_url=url)
        store.save_batch(key, "q", FetchResult([m], None))
    rows = store.query("SELECT native_id, duplicate_of FROM mentions ORDER BY id")
    assert [r["duplicate_of"] is None for r in rows] == [True, False, False]
    governance.run_retention(store, settings_with(tmp_path, brand_retention="30d"))
    rows = {r["native_id"]: r for r in store.query("SELECT id, native_id, duplicate_of FROM mentions")}
    assert set(rows) == {"2", "3"} and rows["2"]["duplicate_of"] is None
    assert rows["3"]["duplicate_of"] == rows["2"]["id"]


def test_authors_left_without_mentions_go_unless_marked(seeded, tmp_path):
    carol = seeded.query("SELECT id FROM authors WHERE handle = 'carol'")[0]["id"]
    add(seeded, [{"id": 900, "handle": "olga", "advocacy": "promoter", "days_ago": 100, "text": "acme old"}])
    add(seeded, [{"id": 901, "handle": "pete", "advocacy": "promoter", "days_ago": 100, "text": "acme old"}])
    pete = seeded.query("SELECT id FROM authors WHERE handle = 'pete'")[0]["id"]
    seeded.accounts.set_mark(pete, "Acme", "do_not_contact", "maria")
    governance.run_retention(seeded, settings_with(tmp_path, brand_retention="60d"))
    handles = {r["handle"] for r in seeded.query("SELECT handle FROM authors")}
    assert "olga" not in handles and "pete" in handles  # a do-not-contact mark outlives the mentions
    assert carol in {r["id"] for r in seeded.query("SELECT id FROM authors")}


def test_retention_is_validated_with_its_key_path(tmp_path):
    cfg = write_config(tmp_path / "config.yaml", """\
        brands:
          - name: Acme
            terms: {include: [acme]}
            sources:
              - type: hackernews
                retention: 2h
        """)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert any(p.endswith("line 6: brands[0].sources[0].retention: a retention must be at least 1 day (1d): "
                          "shorter would delete mentions before they are classified and alerted on")
               for p in err.value.problems), err.value.problems


# --------------------------------------------------------------------------- forget


def dump(store: Store) -> str:
    return database_text(store).casefold()


def test_forget_erases_a_person_everywhere_and_records_only_that_it_happened(seeded, tmp_path):
    settings = settings_with(tmp_path)
    other = Mention("reddit", "r1", "Acme", "acme rocks", NOW - timedelta(days=2), author=Author("reddit", "Alice_R"))
    seeded.save_batch("demo", "q", FetchResult([other], None))
    ids = {r["handle"]: r["id"] for r in seeded.query("SELECT id, handle FROM authors")}
    seeded.accounts.link_authors(ids["alice"], ids["Alice_R"], "maria")
    seeded.accounts.set_mark(ids["alice"], "Acme", "contacted", "maria", note="sent alice a t-shirt")
    first = seeded.query("SELECT id FROM mentions WHERE author_id = ?", [ids["alice"]])[0]["id"]
    seeded.accounts.add_correction(first, "advocacy", "none", "maria")
    alert = Alert("r", f"r:mention:{first}", "warning", "[Acme] promoter by alice", "alice: acme is great",
                  brand="Acme", mention_ids=(first,))
    seeded.alerts.insert([alert], {"r": ["console"]})
    seeded.alerts.fire("r", f"brand=Acme|author={ids['alice']}", NOW)
    advocates.refresh(seeded, settings.advocates, now=NOW)
    before = totals(seeded, settings)
    assert "alice" in dump(seeded)

    found = governance.forget_candidates(seeded, "@ALICE")
    assert {a["handle"] for a in found} == {"alice", "Alice_R"}  # the handle, any case, and the linked one
    result = governance.forget(seeded, settings, "@ALICE")

    assert result.mentions == 7 and result.rows["programme_members"] == 1 and result.rows["corrections"] == 1
    assert "alice" not in dump(seeded)  # text, handles, note, alert, noise-control key: all gone
    assert not seeded.query("SELECT 1 FROM alert_state")
    (erasure,) = seeded.governance.erasures()
    assert erasure["authors"] == 2 and erasure["mentions"] == 7 and erasure["source"] is None
    assert erasure["subject_hash"] == governance.subject_hash(seeded.governance.salt(), "alice")
    assert json.loads(erasure["rows"])["mentions"] == 7
    # the brand's figures keep the erased mentions as counts; the person's scores are gone
    after = totals(seeded, settings)
    assert after["totals"] == before["totals"] and after["index"] == before["index"]
    assert all(r["handle"] not in ("alice", "Alice_R") for r in seeded.query("SELECT handle FROM author_stats"))
    assert governance.forget_candidates(seeded, "alice") == []


def test_forget_matches_a_handle_in_any_case_beyond_ascii(seeded, tmp_path):
    add(seeded, [{"id": 800, "handle": "Jürgen_ß", "advocacy": "promoter", "text": "acme ok"}])
    assert [a["handle"] for a in governance.forget_candidates(seeded, "JÜRGEN_SS")] == ["Jürgen_ß"]
    assert governance.forget(seeded, settings_with(tmp_path), "jürgen_ß").mentions == 1
    (erasure,) = seeded.governance.erasures()
    assert erasure["subject_hash"] == governance.subject_hash(seeded.governance.salt(), "JÜRGEN_SS")


def test_forget_on_one_source_leaves_the_same_handle_elsewhere(seeded, tmp_path):
    add(seeded, [{"id": 700, "handle": "bob", "source": "reddit", "advocacy": "promoter", "text": "acme ok"}])
    governance.forget(seeded, settings_with(tmp_path), "bob", source="Reddit")
    assert {r["source"] for r in seeded.query("SELECT source FROM authors WHERE handle = 'bob'")} == {"demo"}


# ------------------------------------------------------------------------------ CLI


def test_cli_retention_and_forget(tmp_path):
    from datetime import UTC, datetime

    cfg = write_config(tmp_path / "config.yaml", """\
        database: monitor.db
        brands:
          - name: Acme
            terms: {include: [acme]}
            retention: 30d
        """)
    store = Store(tmp_path / "monitor.db")
    now = datetime.now(UTC)
    for nid, days, handle in (("1", 45, "kim"), ("2", 3, "kim"), ("3", 2, "lee")):
        m = Mention("hackernews", nid, "Acme", "acme", now - timedelta(days=days), author=Author("hackernews", handle))
        store.save_batch("Acme:hackernews", "q", FetchResult([m], None))
    store.save_classifications([(1, classification("promoter")), (2, classification("detractor"))])
    runner = CliRunner()
    dry = runner.invoke(main, ["-c", str(cfg), "retention", "run", "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0 and "would delete 1 mention(s) in all; with them: classifications 1" in dry.output
    assert store.count_mentions() == 3
    real = runner.invoke(main, ["-c", str(cfg), "retention", "run"], catch_exceptions=False)
    assert "deleted 1 mention(s) in all" in real.output and store.count_mentions() == 2
    status = runner.invoke(main, ["-c", str(cfg), "retention", "status"], catch_exceptions=False)
    assert "Acme (all other sources): keep 30d" in status.output and ": deleted 1 mention(s)" in status.output
    assert ": dry run, would delete 1 mention(s)" in status.output

    refused = runner.invoke(main, ["-c", str(cfg), "forget", "kim"], input="n\n")
    assert refused.exit_code == 1 and store.count_mentions() == 2
    done = runner.invoke(main, ["-c", str(cfg), "forget", "KIM", "--yes"], catch_exceptions=False)
    assert done.exit_code == 0 and "erased 1 author(s), 1 mention(s)" in done.output
    assert store.count_mentions() == 1
    missing = runner.invoke(main, ["-c", str(cfg), "forget", "kim", "--yes"])
    assert missing.exit_code == 1 and "no author 'kim'" in missing.output
    assert "erasures recorded: 1" in runner.invoke(main, ["-c", str(cfg), "retention", "status"]).output
    store.close()


def test_the_daemon_runs_retention_daily_only_when_configured(tmp_path):
    from monitor.daemon import Daemon

    for retention, expected in ((None, False), ("400d", True)):
        settings = settings_with(tmp_path, brand_retention=retention)
        store = Store(tmp_path / "monitor.db")
        d = Daemon(settings, store, sources=[], classifier_factory=lambda: None, channels={})
        d.schedule()
        job = d.scheduler.get_job("retention")
        assert (job is not None) is expected
        if job is not None:
            assert job.trigger.interval == timedelta(days=1)
        store.close()
