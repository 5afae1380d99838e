"""Themes from stored sentence vectors: the store's columns and tables, clustering on
synthetic vectors, labels, stable ids, and the "not enough data" cases."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitor import topics
from monitor.records import FetchResult, Mention
from monitor.vectors import pack, unpack
from tests.topics_data import MODEL, NOW, add_themes, classification, directions

SINCE = NOW - timedelta(days=30)


def run(store, **kw):
    kw.setdefault("since", SINCE)
    kw.setdefault("until", NOW)
    kw.setdefault("model", MODEL)
    kw.setdefault("save_to", store)
    return topics.find_themes(store, kw.pop("brand", "Acme"), **kw)


def test_vectors_are_int8_directions_that_keep_the_cosine():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 384)).astype(np.float32)
    v[2] = 0
    blobs = pack(v)
    assert [len(b) for b in blobs] == [384] * 5
    back = unpack(blobs)
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    cos = (back * unit).sum(axis=1)
    assert cos[[0, 1, 3, 4]].min() > 0.999 and not back[2].any()
    with pytest.raises(ValueError):
        unpack([blobs[0], blobs[1][:100]])


def test_the_store_keeps_each_classifications_vector(store):
    (mid,) = store.save_batch("demo", "q", FetchResult([Mention("demo", "1", "Acme", "hello", NOW)], None))
    store.save_classifications([(mid, classification("neutral", "none", b"\x01" * 384))])
    assert store.themes.vector_models("Acme") == [{"model": MODEL, "vectors": 1}]
    (row,) = store.themes.vectors("Acme", MODEL, SINCE, NOW + timedelta(days=1))
    assert row["embedding"] == b"\x01" * 384 and row["sentiment"] == "neutral"
    store.save_classifications([(mid, classification("neutral", "none", None))])  # re-classified without one
    assert store.themes.vector_models("Acme") == []
    assert store.themes.vectors("Acme", MODEL, SINCE, NOW + timedelta(days=1)) == []


def test_three_themes_are_found_labelled_and_mixed(store):
    add_themes(store, {"battery": 40, "support": 30, "shipping": 20})
    report = run(store)
    assert report.note is None and report.mentions == 90
    by_word = {t.terms[0].split()[0] if t.terms else "": t for t in report.themes}
    assert [t.size for t in report.themes] == [40, 30, 20]  # largest first
    labels = [t.label for t in report.themes]
    assert "battery" in labels[0] and "support" in labels[1] and "shipping" in labels[2], labels
    assert all("acme" not in t.terms for t in report.themes)  # the brand's own name says nothing
    battery = report.themes[0]
    assert battery.sentiment["negative"] == 1.0 and battery.advocacy["detractor"] == 1.0
    assert len(battery.examples) == 3 and all("battery" in e.text for e in battery.examples)
    assert sum(battery.weeks.values()) == 40 and all(len(w) == 10 for w in battery.weeks)
    assert by_word and all(t.id > 0 for t in report.themes)
    assert len({t.id for t in report.themes}) == 3
    assert report.as_dict()["themes"][0]["examples"][0]["text"]


def test_a_theme_keeps_its_id_across_runs_and_new_data(store):
    add_themes(store, {"battery": 40, "support": 30})
    first = {t.label.split(",")[0]: t.id for t in run(store).themes}
    again = {t.label.split(",")[0]: t.id for t in run(store).themes}
    assert first == again
    add_themes(store, {"battery": 25, "shipping": 30}, seed=5, start_id=1000, days=(0.1, 0.5))
    later = run(store)
    ids = {t.id: t for t in later.themes}
    assert set(first.values()) <= set(ids)  # both persisted: same ids
    new = [t for t in later.themes if t.id not in first.values()]
    assert len(new) == 1 and "shipping" in new[0].label
    assert len(store.themes.stored("Acme", MODEL)) == 3


def test_change_against_the_previous_period(store):
    add_themes(store, {"battery": 30, "support": 30}, days=(1, 20))  # this period
    add_themes(store, {"battery": 10, "support": 30}, days=(35, 50), seed=2, start_id=500)  # the one before
    report = run(store)
    by = {("battery" if "battery" in t.label else "support"): t for t in report.themes}
    assert by["battery"].previous == 10 and by["battery"].change == pytest.approx(2.0)
    assert by["support"].previous == 30 and by["support"].change == pytest.approx(0.0)


def test_stance_filter_reads_only_those_mentions(store):
    add_themes(store, {"battery": 40, "support": 30, "shipping": 30})
    report = run(store, stance="detractor")
    assert report.mentions == 40 and report.stance == "detractor"
    assert report.note is not None and "no distinct themes" in report.note  # every detractor says one thing


@pytest.mark.parametrize(("counts", "kw", "expected"), [
    ({}, {}, "not enough data: 0 mentions"),
    ({"battery": 3}, {}, "not enough data: 3 mentions"),
    ({"battery": 30, "support": 30}, {"same_text": True}, "say nearly the same thing"),
    ({"battery": 80}, {}, "no distinct themes"),
])
def test_too_little_to_cluster_says_so(store, counts, kw, expected):
    if counts:
        add_themes(store, counts, **kw)
    report = run(store)
    assert report.themes == () and report.note is not None and expected in report.note
    assert store.themes.stored("Acme", MODEL) == []


def test_no_model_with_vectors(store):
    assert topics.pick_model(store, "Acme", "shipped@1") == "shipped@1"  # none kept any: the configured one
    assert topics.pick_model(store, "Acme", None) is None
    report = run(store, model=None)
    assert report.themes == () and "no sentence vectors" in (report.note or "")
    add_themes(store, {"battery": 3})
    assert topics.pick_model(store, "Acme", "shipped@1") == MODEL
    assert topics.pick_model(store, "Acme", MODEL) == MODEL


def test_a_read_only_run_stores_nothing(store):
    add_themes(store, {"battery": 40, "support": 30})
    report = run(store, save_to=None)
    assert [t.id for t in report.themes] == [0, 0] and store.themes.stored("Acme", MODEL) == []


def test_clustering_merges_near_parallel_centroids_and_matching_is_one_to_one():
    dirs = directions()
    rng = np.random.default_rng(3)
    one = np.stack([dirs["battery"] + 0.01 * rng.normal(size=384) for _ in range(50)]).astype(np.float32)
    unit = one / np.linalg.norm(one, axis=1, keepdims=True)
    centroids, labels = topics.cluster(unit, 5)
    assert len(centroids) == 1 and (labels == 0).all()
    a = np.eye(3, dtype=np.float32)
    assert topics.match(a, a[[2, 0]]) == {0: 1, 2: 0}
    assert topics.match(a, np.zeros((0, 3), dtype=np.float32)) == {}


def test_labels_are_made_safe_for_a_terminal():
    assert topics.clean_label("bat\x1b[31mtery\u202e drains\n\tfast\x9b") == "bat[31mtery drains fast"
    assert len(topics.clean_label("x" * 200)) == 80
    assert topics.choose_k(20) == 2 and topics.choose_k(100_000) == topics.MAX_K


def test_labels_leave_out_the_brand_in_every_form_and_prefer_distinctive_terms():
    docs = [["Acme's battery drains", "acme battery dies overnight", "AcmeConf battery talk"],
            ["Acme support answered", "support at acme's desk answered fast", "support was kind"]]
    battery, support = topics.label_terms(docs, {"acme"})
    assert battery[0] == "battery" and support[0] == "support"
    assert not any("acme" in t for t in battery + support)
    assert topics.label_terms([["the and of"], ["a an the"]], {"acme"}) == [(), ()]


def test_identical_vectors_cluster_without_warnings(store):
    # two themes whose mentions all have the very same vector: more clusters asked for than distinct points
    for copy in range(130):
        add_themes(store, {"battery": 6, "support": 6}, seed=copy, start_id=copy * 100, same_text=False,
                   noise=0.0)
    report = run(store)  # warnings are errors in the tests
    assert report.mentions == 1560 and len(report.themes) == 2


def test_the_daemons_themes_job_stores_every_brands_themes_daily(store):
    from monitor.config import Settings
    from monitor.daemon import Daemon

    add_themes(store, {"battery": 40, "support": 30, "shipping": 20})
    add_themes(store, {"support": 10}, brand="Globex", start_id=1000)  # too few: nothing stored, no error
    settings = Settings.model_validate({"database": str(store.path),
                                        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                                                   {"name": "Globex", "terms": {"include": ["globex"]}}]})
    d = Daemon(settings, store, sources=[], classifier_factory=lambda: None, channels={}, now=lambda: NOW)
    d.schedule()
    assert d.scheduler.get_job("themes").trigger.interval == timedelta(days=1)
    d.themes_job()
    first = store.themes.stored("Acme", MODEL)
    assert len(first) == 3 and store.themes.stored("Globex", MODEL) == []
    d.themes_job()  # the next day: the same themes, the same ids
    assert [t["id"] for t in store.themes.stored("Acme", MODEL)] == [t["id"] for t in first]
