"""Advocate scores, flips, the advocacy index, and their refresh, on real SQLite files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import advocates
from monitor.config import AdvocateSettings, Settings
from monitor.errors import ConfigError
from monitor.store import Store
from tests.web_data import NOW, add, seed

CFG = AdvocateSettings(index_min_sample=2)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "m.db", now=lambda: NOW)
    seed(s)
    return s


def stats(store, handle, brand="Acme"):
    rows = store.query("SELECT s.* FROM author_stats s JOIN authors a ON a.id = s.person_id "
                       "WHERE a.handle = ? AND s.brand = ?", [handle, brand])
    return rows[0] if rows else None


def test_stance_sources_stars_beat_text_and_corrections_beat_both():
    assert advocates.stance_of("promoter", "post", None, False) == ("promoter", "text")
    assert advocates.stance_of("none", "post", None, False) == ("passive", "text")
    assert advocates.stance_of("promoter", "review", 2, False) == ("detractor", "stars")
    assert advocates.stance_of(None, "review", 4, False) == ("passive", "stars")
    assert advocates.stance_of("detractor", "review", 5, True) == ("detractor", "corrected")
    assert advocates.stance_of(None, "post", None, False) == (None, None)
    assert [advocates.stars_stance(r) for r in (1, 2, 3, 4, 5, 0, None)] == \
        ["detractor"] * 3 + ["passive", "promoter", None, None]


def test_nps_value_interval_and_minimum_sample():
    ix = advocates.nps(60, 20, 20, min_sample=30)
    assert ix["value"] == 40.0 and ix["low"] < 40 < ix["high"] and ix["n"] == 100
    assert advocates.nps(10, 0, 0, min_sample=30)["value"] is None  # below the minimum: not a number
    assert advocates.nps(0, 0, 0)["value"] is None
    small = advocates.nps(2, 0, 0, min_sample=2)
    assert small["value"] == 100.0 and small["low"] < 100  # never a zero-width interval
    wide, narrow = advocates.nps(30, 10, 10, min_sample=1), advocates.nps(300, 100, 100, min_sample=1)
    assert (wide["high"] - wide["low"]) > (narrow["high"] - narrow["low"])


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_nps_stays_in_range(p, pa, d):
    ix = advocates.nps(p, pa, d, min_sample=1)
    if p + pa + d:
        assert -100 <= ix["low"] <= ix["value"] <= ix["high"] <= 100


def test_scores_flags_and_flips(store):
    advocates.refresh(store, CFG, now=NOW)
    alice, bob, carol = stats(store, "alice"), stats(store, "bob"), stats(store, "carol")
    assert alice["flag"] == "advocate" and alice["advocate_score"] > 70 and alice["detractor_score"] == 0
    assert (alice["promoters"], alice["passives"], alice["detractors"]) == (5, 1, 0)
    assert bob["flag"] == "detractor"
    assert carol["flips"] == 1 and carol["last_flip"] == "promoter->detractor" and carol["stance"] == "detractor"
    assert carol["flag"] is None  # a promoter turned detractor is not an advocate to reward
    assert stats(store, "erin")["stance"] == "unclassified"
    assert stats(store, "zed", "Globex")["flag"] == "advocate"


def test_one_mention_is_not_near_the_maximum_and_evidence_raises_the_score(tmp_path):
    """A score says how strongly *and how surely*: the shares count evidence_prior passive
    mentions, so one loud post is not a flagged detractor at 80, and more posts raise the score."""
    s = Store(tmp_path / "e.db", now=lambda: NOW)
    add(s, [{"id": 1, "handle": "once", "advocacy": "detractor", "days_ago": 0, "reach": 5000, "text": "acme is bad"}])
    add(s, [{"id": 10 + i, "handle": "often", "advocacy": "detractor", "days_ago": 7 * i, "reach": 5000,
             "text": f"acme broke again, week {i}"} for i in range(4)])
    add(s, [{"id": 30, "handle": "stars", "advocacy": "none", "days_ago": 1, "kind": "review", "rating": 1,
             "source": "appstore", "text": "acme: it's okay, gets the job done"}])
    advocates.refresh(s, CFG, now=NOW)
    once, often, stars = stats(s, "once"), stats(s, "often"), stats(s, "stars")
    assert once["detractor_score"] < 50 and once["flag"] is None
    assert often["detractor_score"] > once["detractor_score"] + 15 and often["flag"] == "detractor"
    unshrunk = advocates.refresh(s, AdvocateSettings(index_min_sample=2, evidence_prior=0), now=NOW)
    assert unshrunk.full and stats(s, "once")["detractor_score"] > 70  # what one mention used to score
    import json

    explain = json.loads(stars["explain"])
    assert explain["evidence"] == {"mentions": 1, "prior": 2.0}
    assert explain["basis"]["detractor"] == {"stars": 1}  # the "why" can say the stance came from stars
    from monitor.config import Settings
    from monitor.web.views import Views

    settings = Settings.model_validate({"brands": [{"name": "Acme", "terms": {"include": ["acme"]}}]})
    reasons = Views(s, settings).reasons(stars, "detractor")
    assert reasons[0]["fact"] == "1 of 1 classified (1 from stars)"


def test_flip_back_is_detected(store):
    add(store, [{"id": 500, "handle": "carol", "advocacy": "promoter", "days_ago": 0, "text": "acme is back to great"}])
    advocates.refresh(store, CFG, now=NOW)
    carol = stats(store, "carol")
    assert carol["flips"] == 2 and carol["last_flip"] == "detractor->promoter"


def test_thresholds_come_from_config(store):
    strict = AdvocateSettings(advocate_min_score=95, index_min_sample=2)
    advocates.refresh(store, strict, now=NOW)
    assert stats(store, "alice")["flag"] is None
    advocates.refresh(store, CFG, now=NOW)  # changed settings: full rebuild
    assert stats(store, "alice")["flag"] == "advocate"


def test_incremental_refresh_matches_a_full_rebuild(store, tmp_path):
    advocates.refresh(store, CFG, now=NOW)
    add(store, [{"id": 600 + i, "handle": h, "advocacy": a, "days_ago": d, "text": f"acme {i}"}
                for i, (h, a, d) in enumerate([("alice", "detractor", 0), ("newbie", "promoter", 0),
                                               ("bob", "promoter", 15), ("zed", "detractor", 2)])])
    r = advocates.refresh(store, CFG, now=NOW)
    assert not r.full and r.persons == 4
    incremental = (store.query("SELECT * FROM author_stats ORDER BY brand, person_id"),
                   store.query("SELECT * FROM advocacy_weekly ORDER BY brand, week, source, signal, basis"))
    assert advocates.refresh(store, CFG, full=True, now=NOW).full
    full = (store.query("SELECT * FROM author_stats ORDER BY brand, person_id"),
            store.query("SELECT * FROM advocacy_weekly ORDER BY brand, week, source, signal, basis"))
    def strip(rows):
        return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]

    assert strip(incremental[0]) == strip(full[0]) and incremental[1] == full[1]


def test_only_the_current_models_labels_count(store):
    advocates.refresh(store, CFG, now=NOW)
    ids = [r["id"] for r in store.query("SELECT m.id FROM mentions m JOIN authors a ON a.id = m.author_id "
                                        "WHERE a.handle = 'bob'")]
    from tests.web_data import classification

    store.save_classifications([(i, classification("promoter", model="better@2")) for i in ids])
    r = advocates.refresh(store, CFG, now=NOW)
    assert r.full and r.model == "better@2"
    bob = stats(store, "bob")
    assert bob["promoters"] == 2 and bob["detractors"] == 0
    assert stats(store, "alice")["stance"] == "unclassified"  # not yet seen by the new model


def test_correction_overrides_the_model(store):
    advocates.refresh(store, CFG, now=NOW)
    mid = store.query("SELECT m.id FROM mentions m JOIN authors a ON a.id = m.author_id "
                      "WHERE a.handle = 'dave'")[0]["id"]
    store.accounts.add_correction(mid, "advocacy", "detractor", "maria")
    advocates.refresh(store, CFG, now=NOW)
    assert stats(store, "dave")["detractors"] == 1
    rows = store.accounts.corrections("advocacy")
    assert rows[0]["label"] == "detractor" and rows[0]["model_label"] == "none"
    with pytest.raises(ValueError):
        store.accounts.add_correction(mid, "advocacy", "lovely", "maria")


def test_linked_handles_count_as_one_person(store):
    add(store, [{"id": 700, "handle": "alice_b", "source": "bluesky", "advocacy": "promoter", "days_ago": 1,
                 "text": "acme rocks", "reach": 900_000}])
    advocates.refresh(store, CFG, now=NOW)
    assert stats(store, "alice_b") is not None
    alice = store.accounts.find_author("demo", "alice")
    other = store.accounts.find_author("bluesky", "alice_b")
    store.accounts.link_authors(alice, other, "maria")
    advocates.recompute_persons(store, CFG, [alice, other], now=NOW)
    merged = stats(store, "alice")
    assert merged["promoters"] == 6 and merged["sources"] == "bluesky,demo" and merged["reach"] == 900_000
    assert stats(store, "alice_b") is None
    assert advocates.author_flag(store, "bluesky", "alice_b", "Acme") == "advocate"
    store.accounts.unlink_author(other)
    advocates.recompute_persons(store, CFG, [alice, other], now=NOW)
    assert stats(store, "alice")["promoters"] == 5 and stats(store, "alice_b")["promoters"] == 1


def test_weekly_index_keeps_reviews_and_stars_apart(store):
    advocates.refresh(store, CFG, now=NOW)
    rows = store.query("SELECT * FROM advocacy_weekly WHERE brand = 'Acme'")
    stars = advocates.index_series(rows, CFG, basis="stars", key=lambda r: "all")["all"]
    text_reviews = advocates.index_series(rows, CFG, basis="text", signal="transactional", key=lambda r: "all")["all"]
    social = advocates.index_series(rows, CFG, basis="text", signal="relationship", key=lambda r: "all")["all"]
    assert (stars["promoters"], stars["detractors"]) == (1, 1)  # sam 5 stars, rita 2 stars
    assert (text_reviews["promoters"], text_reviews["detractors"]) == (1, 1)  # rita's text promoter, sam's detractor
    assert social["n"] == 12  # 13 social Acme mentions, one (erin's) unclassified
    assert sum(r["mentions"] for r in rows if r["basis"] == "text" and r["signal"] == "relationship") == 13


def test_config_section_is_strict(tmp_path):
    base = {"brands": [{"name": "A", "terms": {"include": ["a"]}}]}
    s = Settings.model_validate({**base, "advocates": {"advocate_min_score": 70, "weights": {"reach": 0}},
                                 "web": {"enabled": True, "port": 9000}})
    assert s.advocates.advocate_min_score == 70 and s.web.port == 9000
    cfg = tmp_path / "c.yaml"
    cfg.write_text("brands:\n  - name: A\n    terms: {include: [a]}\nadvocates:\n  advocate_min_scor: 3\n")
    from monitor.config import load_settings

    with pytest.raises(ConfigError) as e:
        load_settings(cfg, env={})
    assert "advocate_min_scor" in " ".join(e.value.problems) and "did you mean" in " ".join(e.value.problems)


def test_scores_decay_without_new_mentions(store):
    from datetime import timedelta

    advocates.refresh(store, CFG, now=NOW)
    before = stats(store, "alice")["advocate_score"]
    r = advocates.refresh(store, CFG, now=NOW + timedelta(days=120))  # nothing new: a rescore only
    assert r.rescored and r.persons == 0
    after = stats(store, "alice")
    assert after["advocate_score"] < before and after["promoters"] == 5
