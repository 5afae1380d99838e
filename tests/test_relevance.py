"""Relevance (monitor.relevance): a brand's about/not_about texts and the web page's marks
teach a model over the stored sentence vectors; off-topic mentions are kept, listed on demand,
and left out of figures, themes and alerts. A fake classifier whose vectors point one way for
texts about the brand (the phone maker) and another for the fruit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from monitor import pipeline, relevance
from monitor.alerts.engine import AlertEngine
from monitor.cli import main
from monitor.config import AlertRule, load_settings
from monitor.errors import ConfigError
from monitor.records import Classification, FetchResult, LabelScore, Mention
from monitor.store import Store
from monitor.vectors import pack

NOW = datetime.now(UTC).replace(microsecond=0)
DIM = 384
_rng = np.random.default_rng(3)
PHONE, FRUIT, OTHER = (_rng.normal(size=DIM).astype(np.float32) for _ in range(3))
FRUIT_WORDS = ("pie", "orchard", "cider", "crumble", "snack")


class VectorClassifier:
    """Neutral labels; a vector near FRUIT for texts with a fruit word, near PHONE otherwise."""

    name = "vec-fake@1"

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, texts):
        self.calls += 1
        out = []
        for i, t in enumerate(texts):
            base = FRUIT if any(w in t.lower() for w in FRUIT_WORDS) else PHONE
            noise = np.random.default_rng(abs(hash(t)) % 2**32).normal(size=DIM).astype(np.float32)
            vec = base + 0.5 * noise * float(np.abs(base).mean()) + 0.1 * OTHER * (i % 2)
            out.append(Classification(LabelScore("negative", {"negative": 0.9}),
                                      LabelScore("detractor", {"detractor": 0.9}), self.name,
                                      embedding=pack(vec[None, :])[0]))
        return out


PHONE_POSTS = ["Apple iPhone battery died again", "my new Apple watch is great", "Apple support fixed my laptop",
               "Apple store queue was long", "Apple keynote was boring", "the Apple tablet screen cracked"]
FRUIT_POSTS = ["apple pie for dinner", "apple orchard trip", "hot apple cider", "apple crumble recipe",
               "an apple snack"]

CONFIG = """\
database: m.db
brands:
  - name: Apple
    terms: {include: [apple]}
    about: ["Apple phones and laptops", "my iPhone broke"]
    not_about: ["apple pie with cinnamon", "picking apples in the orchard"]
  - name: Plain
    terms: {include: [plain]}
"""


def write_config(tmp_path, body=CONFIG):
    (tmp_path / "config.yaml").write_text(body)
    return tmp_path / "config.yaml"


def add_mentions(store, brand, texts, start=0):
    ms = [Mention("reddit", f"{brand}{start + i}", brand, t, NOW - timedelta(hours=1 + i),
                  url=f"https://x.test/{brand}/{start + i}") for i, t in enumerate(texts)]
    return store.save_batch(f"{brand}:reddit", "q", FetchResult(ms, None))


@pytest.fixture
def loaded(tmp_path):
    settings = load_settings(write_config(tmp_path), env={})
    store = Store(settings.database_path)
    add_mentions(store, "Apple", PHONE_POSTS + FRUIT_POSTS)
    add_mentions(store, "Plain", ["plain apple pie", "plain phone"])
    return settings, store


def off_topic(store, brand="Apple"):
    return {r["text"] for r in store.mentions(brand=brand, relevance="off_topic", limit=100)}


# --------------------------------------------------------------------------- model


def test_fit_needs_both_sides_and_scores_toward_each():
    assert relevance.fit("B", np.array([PHONE]), np.zeros((0, DIM))) is None
    m = relevance.fit("B", np.array([PHONE, PHONE * 0.9]), np.array([FRUIT]), threshold=0.5)
    assert m is not None and (m.positives, m.negatives) == (2, 1)
    s = m.score(np.array([PHONE, FRUIT, np.zeros(DIM, dtype=np.float32)]) / np.linalg.norm(PHONE))
    assert s[0] > 0.5 > s[1] and s[2] == 1.0  # a zero vector: nothing to judge, it stays
    assert list(m.off_topic(s)) == [False, True, False]


def test_score_blobs_skips_mentions_without_a_vector_or_of_another_model():
    m = relevance.fit("B", np.array([PHONE]), np.array([FRUIT]))
    assert m is not None
    out = relevance.score_blobs(m, [pack(PHONE[None, :])[0], None, b"\x01" * 10])
    assert out[0] is not None and out[0] > 0.5 and out[1:] == [None, None]


@pytest.mark.parametrize(("extra", "where"), [
    ('    about: ["ok", ""]\n', "brands[0].about[1]"),
    ("    not_about: nope\n", "brands[0].not_about"),
    ("    relevance_threshold: 1.5\n", "brands[0].relevance_threshold"),
    ("    about: [3]\n", "brands[0].about[0]"),
])
def test_broken_relevance_config_names_the_key_path(tmp_path, extra, where):
    body = "database: m.db\nbrands:\n  - name: Apple\n    terms: {include: [apple]}\n" + extra
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, body), env={})
    assert where in "\n".join(info.value.problems)


# ------------------------------------------------------------------ pipeline, store


def test_classify_scores_each_brand_and_hides_the_fruit(loaded):
    settings, store = loaded
    clf = VectorClassifier()
    assert pipeline.classify_pending(store, clf, brands=settings.brands) == 13
    assert off_topic(store) == set(FRUIT_POSTS)
    shown = {r["text"] for r in store.mentions(brand="Apple", limit=100)}
    assert shown == set(PHONE_POSTS)
    assert len(store.mentions(brand="Apple", relevance="all", limit=100)) == 11
    # a brand without about/not_about and without marks: everything relevant, not scored
    plain = store.mentions(brand="Plain", relevance="all", limit=10)
    assert [r["off_topic"] for r in plain] == [0, 0] and {r["relevance"] for r in plain} == {None}


def test_off_topic_mentions_stay_out_of_figures_themes_and_alerts(loaded):
    settings, store = loaded
    rule = AlertRule.model_validate({"name": "any-detractor", "when": {"advocacy": "detractor"},
                                     "channels": ["console"]})
    engine = AlertEngine([rule], store, channels_for={"any-detractor": ["console"]})
    pipeline.classify_pending(store, VectorClassifier(), engine=engine, brands=settings.brands)
    alerted = {mid for a in store.query("SELECT mention_ids FROM alerts") for mid in json.loads(a["mention_ids"])}
    texts = {r["id"]: r["text"] for r in store.mentions(relevance="all", limit=100)}
    alerted_texts = {texts[i] for i in alerted}
    assert alerted_texts & set(PHONE_POSTS) and not alerted_texts & set(FRUIT_POSTS)
    assert {r["text"] for r in store.alerts.classified(brands=["Apple"])} == set(PHONE_POSTS)
    assert len(store.alerts.classified(brands=["Apple"], off_topic=True)) == 11
    store.advocacy.rebuild_weekly(VectorClassifier.name)
    weekly = store.query("SELECT sum(mentions) AS n FROM advocacy_weekly WHERE brand = 'Apple' AND basis = 'text'")
    assert weekly[0]["n"] == len(PHONE_POSTS)
    vecs = store.themes.vectors("Apple", VectorClassifier.name, NOW - timedelta(days=2), NOW + timedelta(days=1))
    assert {v["text"] for v in vecs} == set(PHONE_POSTS)
    found = store.advocacy.search_mentions(VectorClassifier.name, brand="Apple")
    assert {r["text"] for r in found} == set(PHONE_POSTS)
    found = store.advocacy.search_mentions(VectorClassifier.name, brand="Apple", relevance="off_topic")
    assert {r["text"] for r in found} == set(FRUIT_POSTS) and all(r["off_topic"] for r in found)


def test_a_mark_wins_for_its_mention_and_teaches_the_rescore(tmp_path):
    body = "database: m.db\nbrands:\n  - name: Apple\n    terms: {include: [apple]}\n    about: [\"my iPhone\"]\n"
    settings = load_settings(write_config(tmp_path, body), env={})
    store = Store(settings.database_path)
    ids = add_mentions(store, "Apple", PHONE_POSTS + FRUIT_POSTS)
    clf = VectorClassifier()
    pipeline.classify_pending(store, clf, brands=settings.brands)
    assert off_topic(store) == set()  # about texts alone: no model yet, everything relevant
    pie = ids[len(PHONE_POSTS)]
    store.accounts.add_correction(pie, "relevance", "not_about", "ana")
    assert off_topic(store) == {FRUIT_POSTS[0]}  # the mark hides its own mention at once
    exported = store.accounts.corrections("relevance")
    assert [(r["mention_id"], r["label"], r["model_label"]) for r in exported] == [(pie, "not_about", None)]
    models = relevance.models_for(store, clf, settings.brands)
    assert models["Apple"].negatives == 1
    scored, hidden = relevance.rescore(store, clf.name, "Apple", models["Apple"])
    assert scored == 11 and hidden == len(FRUIT_POSTS)
    assert off_topic(store) == set(FRUIT_POSTS)
    store.accounts.add_correction(ids[len(PHONE_POSTS) + 1], "relevance", "about", "ana")  # "it is about us"
    assert FRUIT_POSTS[1] not in off_topic(store)
    with pytest.raises(ValueError, match="relevance label"):
        store.accounts.add_correction(pie, "relevance", "maybe", "ana")


def test_a_brand_that_loses_its_texts_is_rescored_relevant(loaded):
    settings, store = loaded
    pipeline.classify_pending(store, VectorClassifier(), brands=settings.brands)
    assert relevance.rescore(store, VectorClassifier.name, "Apple", None) == (0, 0)
    assert off_topic(store) == set()


# ----------------------------------------------------------------------------- CLI


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_cli_lists_hide_off_topic_unless_asked(loaded):
    settings, store = loaded
    pipeline.classify_pending(store, VectorClassifier(), brands=settings.brands)
    store.close()
    cfg = str(settings.base_dir / "config.yaml")
    rows = [json.loads(x) for x in run(["-c", cfg, "mentions", "--brand", "apple", "--format", "json",
                                        "--model", VectorClassifier.name]).stdout.splitlines()]
    assert {r["text"] for r in rows} == set(PHONE_POSTS)
    r = run(["-c", cfg, "mentions", "--brand", "apple", "--relevance", "off_topic", "--model", VectorClassifier.name])
    assert r.exit_code == 0 and "[off topic] apple pie for dinner" in r.output
    r = run(["-c", cfg, "mentions", "--brand", "apple", "--relevance", "all", "--format", "json",
             "--model", VectorClassifier.name])
    assert len(r.stdout.splitlines()) == 11


def test_preview_shows_what_the_relevance_filter_would_hide(loaded, monkeypatch):
    settings, store = loaded
    clf = VectorClassifier()
    pipeline.classify_pending(store, clf, brands=settings.brands)
    store.close()
    monkeypatch.setattr("monitor.cli_sources.make_classifier", lambda s: clf)
    cfg = str(settings.base_dir / "config.yaml")
    r = run(["-c", cfg, "preview", "Apple", "--relevance"])
    assert r.exit_code == 0, r.output
    assert "apple orchard trip" in r.output and "Apple keynote was boring" not in r.output
    assert f"relevance would hide {len(FRUIT_POSTS)} of Apple's 11 scored mention(s)" in r.output
    r = run(["-c", cfg, "preview", "Plain", "--relevance"])
    assert "Plain has no relevance model" in r.output


# ----------------------------------------------------------------------------- web


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_web_not_about_us_mark_hides_a_mention_and_the_filter_shows_it(tmp_path):
    from tests.web_support import client, hidden, login, make_app, make_db

    settings, store = make_db(tmp_path)
    app = make_app(settings, store)
    async with client(app) as c:
        await login(c)
        page = await c.get("/mentions")
        assert "Not about us" in page.text and 'name="relevance"' in page.text
        token = hidden(page.text, "csrf")
        before = (await c.get("/api/mentions", params={"limit": 1000})).json()
        target = before[0]
        counted = "SELECT COALESCE(sum(mentions), 0) AS n FROM {} WHERE brand = ?"
        stats_before = store.query(counted.format("author_stats"), [target["brand"]])[0]["n"]
        weekly_before = store.query(counted.format("advocacy_weekly") + " AND basis = 'text'", [target["brand"]])
        r = await c.post(f"/mentions/{target['id']}/correct",
                         data={"field": "relevance", "label": "not_about", "csrf": token, "next": "/mentions"})
        assert r.status_code == 303
        after = (await c.get("/api/mentions", params={"limit": 1000})).json()
        assert target["id"] not in {m["id"] for m in after} and len(after) == len(before) - 1
        hidden_rows = (await c.get("/api/mentions", params={"relevance": "off_topic"})).json()
        assert [m["id"] for m in hidden_rows] == [target["id"]] and hidden_rows[0]["off_topic"] == 1
        page = await c.get("/mentions", params={"relevance": "off_topic"})
        assert f'id="m{target["id"]}"' in page.text and "About us after all" in page.text
        assert "not about" in page.text
        nonsense = await c.get("/mentions", params={"relevance": "<x>"})  # unknown value: the default
        assert nonsense.status_code == 200 and f'id="m{target["id"]}"' not in nonsense.text
        export = await c.get("/export/corrections.csv", params={"field": "relevance"})
        assert "not_about" in export.text
        exported = await c.get("/export/mentions.csv", params={"relevance": "all"})
        assert "off_topic" in exported.text.splitlines()[0]
        weekly_after = store.query(counted.format("advocacy_weekly") + " AND basis = 'text'", [target["brand"]])
        assert weekly_after[0]["n"] == weekly_before[0]["n"] - 1  # the brand's figures lost the mention
        if target["author_id"]:  # and so did its author's
            assert store.query(counted.format("author_stats"), [target["brand"]])[0]["n"] == stats_before - 1
        r = await c.post(f"/mentions/{target['id']}/correct",
                         data={"field": "relevance", "label": "about", "csrf": token, "next": "/mentions"})
        assert len((await c.get("/api/mentions", params={"limit": 1000})).json()) == len(before)


def test_classify_relevance_rescores_stored_mentions_after_a_mark(tmp_path, monkeypatch):
    body = "database: m.db\nbrands:\n  - name: Apple\n    terms: {include: [apple]}\n    about: [\"my iPhone\"]\n"
    settings = load_settings(write_config(tmp_path, body), env={})
    store = Store(settings.database_path)
    ids = add_mentions(store, "Apple", PHONE_POSTS + FRUIT_POSTS)
    clf = VectorClassifier()
    pipeline.classify_pending(store, clf, brands=settings.brands)
    store.accounts.add_correction(ids[-1], "relevance", "not_about", "ana")
    store.close()
    monkeypatch.setattr("monitor.cli.make_classifier", lambda s: clf)
    r = run(["-c", str(tmp_path / "config.yaml"), "classify", "--relevance"])
    assert r.exit_code == 0, r.output
    assert f"Apple: {len(FRUIT_POSTS)} of 11 scored mention(s) off topic" in r.output
    store = Store(settings.database_path)
    assert off_topic(store) == set(FRUIT_POSTS)
    weekly = store.query("SELECT sum(mentions) AS n FROM advocacy_weekly WHERE brand = 'Apple' AND basis = 'text'")
    assert weekly[0]["n"] == len(PHONE_POSTS)
