"""The stages in order: collect (fake Algolia) -> classify (fake classifier) -> alert ->
console delivery; and brand term matching, with property tests."""

from __future__ import annotations

import io
import re
import string
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor import pipeline
from monitor.alerts.channels import ConsoleChannel
from monitor.alerts.engine import AlertEngine
from monitor.collect import build_source
from monitor.config import Settings, Terms
from monitor.http_client import HttpClient, HttpPolicy
from monitor.matching import Matcher

from .conftest import KeywordClassifier
from .fakes.algolia import FakeAlgolia, make_hits

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T0 = int(NOW.timestamp()) - 3600

TEXTS = [
    "SQLite is terrible for this, avoid it {i}",
    "I recommend SQLite to everyone {i}",
    "SQLite 3.51 is out {i}",
    "Postgres only here {i}",  # no brand term: filtered out
]


def settings_for(base_url: str) -> Settings:
    return Settings.model_validate({
        "brands": [{"name": "SQLite", "terms": {"include": ["sqlite"]},
                    "sources": [{"type": "hackernews", "base_url": base_url, "fetch_karma": False}]}],
        "alerts": {"channels": {"console": {"type": "console"}},
                   "rules": [{"name": "negative-mention", "when": {"sentiment": "negative", "min_probability": 0.8},
                              "channels": ["console"]}]},
    })


def test_collect_classify_alert_console(store):
    hits = []
    for n, text in enumerate(TEXTS):
        batch = make_hits(2, T0 + n * 600, text=text)
        for j, h in enumerate(batch):
            h["objectID"] = f"{n}{j}"
            h["story_title"] = "Ask HN"
        hits += batch
    with FakeAlgolia(hits) as fake:
        s = settings_for(fake.base_url)
        brand, ss = s.source_jobs()[0]
        source = build_source(brand, ss, now=lambda: NOW,
                              http_factory=lambda: HttpClient(HttpPolicy(allow_networks=("127.0.0.1/32",))))
        stats = pipeline.collect(store, source, Matcher(brand.terms))
    assert stats.ok and stats.new == 6 and stats.filtered == 2

    classifier = KeywordClassifier()
    engine = AlertEngine.from_settings(s.alerts, store)
    assert pipeline.classify_pending(store, classifier, engine=engine, batch_size=4) == 6
    assert classifier.calls == 2  # in batches
    assert pipeline.classify_pending(store, classifier, engine=engine) == 0  # idempotent

    rows = {r["text"]: r for r in store.mentions()}
    assert rows["SQLite is terrible for this, avoid it 0"]["sentiment"] == "negative"
    assert rows["I recommend SQLite to everyone 1"]["advocacy"] == "promoter"
    assert rows["SQLite 3.51 is out 0"]["model"] == "keyword-fake@1"

    out = io.StringIO()
    counts = pipeline.deliver(store, {"console": ConsoleChannel(stream=out)})
    assert counts["sent"] == 2
    printed = out.getvalue()
    assert len(re.findall(r"^ALERT \[warning\] \[SQLite\] negative mention by \S+ on hackernews \(negative-mention\)$",
                          printed, re.M)) == 2
    assert "avoid it" in printed
    assert pipeline.deliver(store, {"console": ConsoleChannel(stream=out)})["sent"] == 0  # sent once


def test_a_failing_alert_engine_leaves_the_batch_unclassified(store):
    from monitor.records import FetchResult, Mention

    store.save_batch("SQLite:hn", "sqlite", FetchResult(
        [Mention(source="hackernews", native_id=str(i), brand="SQLite", text=f"avoid sqlite {i}", created_at=NOW)
         for i in range(3)], "c"))

    class BrokenEngine:
        def on_classified(self, ids):
            store.alerts.insert([], {})
            raise RuntimeError("rule crashed")

    with pytest.raises(RuntimeError):
        pipeline.classify_pending(store, KeywordClassifier(), engine=BrokenEngine())
    assert store.count_unclassified(KeywordClassifier.name) == 3  # rolled back with the alerts


def test_a_classifier_that_fails_on_one_text_marks_it_and_goes_on(store):
    from monitor.records import FetchResult, Mention

    store.save_batch("SQLite:hn", "sqlite", FetchResult(
        [Mention(source="hackernews", native_id=str(i), brand="SQLite", text=t, created_at=NOW)
         for i, t in enumerate(["fine sqlite", "poison sqlite", "recommend sqlite"])], "c"))

    class Picky(KeywordClassifier):
        def classify(self, texts):
            if any("poison" in t for t in texts):
                raise ValueError("cannot")
            return super().classify(texts)

    assert pipeline.classify_pending(store, Picky()) == 3
    status = {r["text"]: r["status"] for r in store.mentions()}
    assert status == {"fine sqlite": "ok", "poison sqlite": "error", "recommend sqlite": "ok"}


# ------------------------------------------------------------------------- matching


def matcher(include, exclude=(), **kw) -> Matcher:
    return Matcher(Terms(include=list(include), exclude=list(exclude), **kw))


@pytest.mark.parametrize(("include", "exclude", "text", "found"), [
    (["Go"], [], "this is good", None),
    (["Go"], [], "written in Go.", "Go"),
    (["Go"], [], "GO is fast", "Go"),
    (["Go"], [], "go-to tool", "Go"),  # a hyphen is a word boundary
    (["Go"], [], "golang", None),
    (["acme"], ["acme corp"], "acme is fine", "acme"),
    (["acme"], ["acme corp"], "I work at Acme  Corp", None),
    (["acme"], ["jobs"], "acme jobs board", None),
    (['"acme cloud"'], [], "we love acme cloud", "acme cloud"),
    (['"acme cloud"'], [], "acme\n  cloud outage", "acme cloud"),
    (['"acme cloud"'], [], "acme is a cloud", None),
    (["C++"], [], "modern C++ tips", "C++"),
    ([".NET"], [], "ported to .NET today", ".NET"),
    (["node.js"], [], "nodexjs", None),
    (["@acme"], [], "ping @acme now", "@acme"),
    (["sqlite", "postgres"], [], "postgres and sqlite", "sqlite"),  # first include term wins
    (["Café"], [], "le CAFÉ est bon", "Café"),
])
def test_examples(include, exclude, text, found):
    assert matcher(include, exclude).match(text) == found


def test_title_and_text_both_count():
    m = matcher(["acme"], ["spam"])
    assert m.match("Acme launches", "no brand here") == "acme"
    assert m.match("Acme launches", "pure spam") is None
    assert m.match(None, None) is None


def test_case_sensitive_and_substring_options():
    assert matcher(["Go"], case_sensitive=True).match("go home") is None
    assert matcher(["Go"], case_sensitive=True).match("Go home") == "Go"
    assert matcher(["Go"], whole_word=False).match("this is good") == "Go"


# A term from letters a-m; filler text from letters n-z, digits, spaces and
# punctuation: the term can then only appear where a test puts it.
TERM = st.text(alphabet="abcdefghijklm", min_size=1, max_size=8)
FILLER = st.text(alphabet="nopqrstuvwxyz0123456789 .,!?-\n", max_size=40)
SEP = st.sampled_from([" ", "\n", ".", ",", "(", ")", "!", " - ", "\t", '"'])
WORD_CHAR = st.sampled_from(list("nopqrstuvwxyz0123456789_é"))


@given(TERM, FILLER, FILLER, SEP, SEP)
def test_a_term_between_separators_is_found(term, before, after, left, right):
    text = before + left + term + right + after
    assert matcher([term]).match(text) == term
    assert matcher([term]).match(text.upper()) == term  # any case


@given(TERM, FILLER, FILLER, WORD_CHAR, st.booleans())
@example("go", "this is ", "", "o", False)
def test_a_term_inside_a_longer_word_is_not_found(term, before, after, glue, glue_left):
    word = glue + term if glue_left else term + glue
    text = before + " " + word + " " + after
    assert matcher([term]).match(text) is None
    assert matcher([term], whole_word=False).match(text) == term


@given(TERM, TERM, FILLER, SEP)
def test_an_exclude_term_always_wins(term, excluded, filler, sep):
    text = f"{filler}{sep}{term}{sep}{excluded}{sep}"
    if excluded == term:
        assert matcher([term], [excluded]).match(text) is None
    else:
        assert matcher([term], [excluded]).match(text) is None
        assert matcher([term], [excluded + "x"]).match(text) == term


@given(st.lists(TERM, min_size=2, max_size=4), st.lists(st.sampled_from([" ", "  ", "\n", "\t ", " \n "]),
                                                          min_size=3, max_size=3))
def test_a_quoted_phrase_matches_across_any_whitespace(words, spaces):
    phrase = " ".join(words)
    text = "x " + "".join(w + spaces[i % 3] for i, w in enumerate(words)).rstrip() + " y"
    assert matcher([f'"{phrase}"']).match(text) == phrase
    # the same words out of order (when that differs) are no phrase
    shuffled = " ".join(reversed(words))
    if shuffled != phrase and phrase not in shuffled:
        assert matcher([f'"{phrase}"']).match(f"x {shuffled} y") is None


@settings(max_examples=300)
@given(st.text(alphabet=string.printable + "\u00e9\u2028\ud800\x00\U0001f600", max_size=60),
       st.text(alphabet=string.printable, min_size=1, max_size=10).filter(lambda t: t.strip().strip('"').strip()))
def test_any_text_and_any_term_never_raise(text, term):
    found = matcher([term]).match(text)
    assert found is None or found == term.strip().strip('"').strip()  # the phrase, without its quotes and spaces


@given(st.text(alphabet=string.ascii_letters + "+.#-", min_size=1, max_size=10), FILLER)
def test_regex_characters_in_terms_are_literal(term, filler):
    m = matcher([term], whole_word=False)
    assert (m.match(filler) is not None) == (re.search(re.escape(term), filler, re.IGNORECASE) is not None)


def test_a_comment_counts_only_when_its_own_text_names_the_brand():
    from monitor.config import Terms
    from monitor.matching import Matcher

    m = Matcher(Terms(include=["acme"]))
    assert m.match_mention("Acme raises a Series B", "congrats to the team", "comment") is None
    assert m.match_mention("Acme raises a Series B", "Acme support is great", "comment") == "acme"
    assert m.match_mention("Acme raises a Series B", "story text", "story") == "acme"
