"""`monitor model finetune` end to end on a tiny two-head model and corrections stored in a
real SQLite store: a better model is saved under a new version, a worse or equal one and a
too small or one-sided set of corrections are refused, and nothing is written then."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.classify import finetune
from monitor.classify.training import IGNORE
from monitor.cli import main
from monitor.records import FetchResult, Mention
from monitor.store import Store
from tests.classify.classify_fakes import build_tiny_model

POOLS = {"promoter": "great love good best recommend", "detractor": "bad awful hate worst avoid",
         "none": "the a it is this we"}
SENTIMENT = {"promoter": "positive", "detractor": "negative", "none": "neutral"}


def texts(label: str, n: int) -> list[str]:
    """``n`` different texts of four words of the label's kind."""
    return [" ".join(p) for p in itertools.islice(itertools.permutations(POOLS[label].split(), 4), 0, None, 7)][:n]


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    """A targeted tiny model that has learned nothing of this deployment: every text is
    'none' and 'neutral' to it."""
    import torch
    from transformers import AutoTokenizer

    from monitor.classify import network

    root = tmp_path_factory.mktemp("finetune")
    encoder = build_tiny_model(root / "encoder")
    config = json.loads((encoder / "config.json").read_text())  # a toy encoder this small learns only without
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # dropout (its noise is its signal)
    (encoder / "config.json").write_text(json.dumps(config))
    model = network.from_base(encoder)
    with torch.no_grad():
        for head, favourite in ((model.advocacy_head, 2), (model.sentiment_head, 1)):  # none; neutral
            head.weight.mul_(0.01)
            head.bias.zero_()
            head.bias[favourite] = 2.0
    folder = root / "advocacy-minilm"
    network.save(model, AutoTokenizer.from_pretrained(str(encoder)), folder,
                 {"name": "advocacy-minilm", "version": "4", "targeted": True, "max_length": 64,
                  "validation": [{"epoch": 1}]})
    return folder


def store_corrections(db: Path, per_class: dict[str, int], sentiment_every: int = 2) -> list[int]:
    """Mentions (brands Acme and Other, alternately) with an advocacy correction each, and a
    sentiment correction on every ``sentiment_every``-th one."""
    store = Store(db)
    mentions, labels = [], []
    for label, n in per_class.items():
        for text in texts(label, n):
            i = len(mentions)
            mentions.append(Mention("demo", str(i), "Acme" if i % 2 else "Other", text,
                                    datetime(2026, 1, 1, tzinfo=UTC)))
            labels.append(label)
    ids = store.save_batch("demo", "q", FetchResult(mentions, None))
    for n, (mid, label) in enumerate(zip(ids, labels, strict=True)):
        store.accounts.add_correction(mid, "advocacy", label, "ann")
        if sentiment_every and n % sentiment_every == 0:
            store.accounts.add_correction(mid, "sentiment", SENTIMENT[label], "ann")
    store.close()
    return ids


def config(tmp_path: Path, model: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"database: monitor.db\nbrands:\n  - name: Acme\n    terms: {{include: [acme]}}\n"
                    f"classifier:\n  engine: torch\n  model: {model}\n")
    return path


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


FAST = ["--threads", "1", "--batch-size", "8", "--lr", "1e-3", "--head-lr", "5e-2", "--epochs", "6"]


@pytest.mark.slow
def test_finetune_saves_a_better_model_under_a_new_version(tmp_path, base_model):
    before = digest(base_model)
    store_corrections(tmp_path / "monitor.db", {"promoter": 16, "detractor": 16, "none": 16})
    result = CliRunner().invoke(main, ["-c", str(config(tmp_path, base_model)), "model", "finetune", *FAST])
    assert result.exit_code == 0, result.output
    out = tmp_path / "models" / "advocacy-minilm-corrections-1"
    meta = json.loads((out / "monitor.json").read_text())
    assert meta["name"] == "advocacy-minilm" and meta["version"] == "4+corrections.1"
    assert meta["targeted"] is True and meta["base_model"]["version"] == "4"
    assert meta["corrections"]["mentions"] == 48 and meta["corrections"]["held_out"] == 12
    old, new = meta["held_out"]["old"]["advocacy"], meta["held_out"]["new"]["advocacy"]
    assert old["n"] == new["n"] == 12 and new["macro_f1"] > old["macro_f1"] and new["accuracy"] >= old["accuracy"]
    assert "sentiment" in meta["held_out"]["new"] and "validation" not in meta
    assert f"advocacy macro-F1  {old['macro_f1']:.4f} -> {new['macro_f1']:.4f}" in result.output
    assert f"advocacy accuracy  {old['accuracy']:.4f} -> {new['accuracy']:.4f}" in result.output
    assert f"classifier.model: {out.resolve()}" in result.output
    assert digest(base_model) == before  # the model in use is never touched

    from monitor.classify.torch_engine import TorchClassifier

    clf = TorchClassifier(out, threads=1, languages=[])
    assert clf.targeted and clf.name == "advocacy-minilm@4+corrections.1"
    assert [r.model for r in clf.classify(["love it", "avoid it"], ["Acme", "Other"])] == [clf.name] * 2


@pytest.mark.slow
def test_a_model_no_better_is_refused_and_nothing_is_saved(tmp_path, base_model):
    store_corrections(tmp_path / "monitor.db", {"promoter": 12, "detractor": 12, "none": 12})
    result = CliRunner().invoke(main, ["-c", str(config(tmp_path, base_model)), "model", "finetune", *FAST,
                                       "--epochs", "0"])  # no training: the new model is the old one
    assert result.exit_code == 2, result.output
    assert "not better on the 9 held-out corrections" in result.output
    assert "advocacy-minilm@4 stays in use" in result.output
    assert "advocacy macro-F1" in result.output  # both figures are shown
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("per_class", [
    {"promoter": 10, "detractor": 10, "none": 5},  # 25 in all: too small
    {"promoter": 30, "detractor": 4, "none": 6},  # a label with fewer than 5
    {"promoter": 40},  # everything one label
])
def test_too_small_or_one_sided_corrections_are_refused(tmp_path, base_model, per_class):
    store_corrections(tmp_path / "monitor.db", per_class)
    result = CliRunner().invoke(main, ["-c", str(config(tmp_path, base_model)), "model", "finetune", *FAST])
    assert result.exit_code == 2, result.output
    assert "too small or too one-sided to train on" in result.output
    assert not (tmp_path / "models").exists()


def test_corrections_come_from_the_store_with_the_mentions_brand(tmp_path):
    ids = store_corrections(tmp_path / "monitor.db", {"promoter": 2, "none": 2}, sentiment_every=1)
    store = Store(tmp_path / "monitor.db")
    store.accounts.add_correction(ids[0], "advocacy", "detractor", "ann")  # the newest correction wins
    got = {c.mention_id: c for c in finetune.from_store(store)}
    store.close()
    assert len(got) == 4  # one example per mention, both fields on it
    assert [got[i].brand for i in ids] == ["Other", "Acme", "Other", "Acme"]
    assert got[ids[0]].advocacy == 1 and got[ids[0]].sentiment == 2  # detractor; positive
    assert got[ids[2]].advocacy == 2 and got[ids[2]].sentiment == 1  # none; neutral


def test_an_exported_csv_gets_its_brands_from_the_database(tmp_path):
    ids = store_corrections(tmp_path / "monitor.db", {"promoter": 2, "detractor": 1}, sentiment_every=0)
    store = Store(tmp_path / "monitor.db")
    rows = store.accounts.corrections("advocacy")
    path = tmp_path / "corrections-advocacy.csv"
    with path.open("w", newline="") as fh:  # the web page's export: no brand column
        w = csv.DictWriter(fh, ["text", "label", "field", "mention_id", "model_label", "model", "set_by", "created_at"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    sentiment = tmp_path / "sentiment.csv"
    sentiment.write_text(f"text,label,mention_id\nx,negative,{ids[2]}\nno id here,positive,\n")
    examples = finetune.merge(finetune.from_csv(path), finetune.from_csv(sentiment))
    assert len(examples) == 4 and all(c.brand == "" for c in examples)
    assert finetune.fill_brands(examples, store) == 1  # the row without a mention id
    store.close()
    by_id = {c.mention_id: c for c in examples}
    assert [by_id[i].brand for i in ids] == ["Other", "Acme", "Other"]
    assert by_id[ids[2]].advocacy == 1 and by_id[ids[2]].sentiment == 0  # two files, one example


def test_a_bad_label_in_a_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("text,label,field\nhello,promoter,advocacy\nbye,angry,sentiment\n")
    with pytest.raises(finetune.InputFileError, match="record 2: sentiment label 'angry'"):
        finetune.from_csv(path)


def test_split_is_stratified_fixed_and_keeps_identical_texts_together():
    examples = [finetune.Correction(t, "Acme", advocacy=a) for a, label in enumerate(("promoter", "detractor", "none"))
                for t in texts(label, 12 if a == 0 else 5)]
    examples.append(finetune.Correction(examples[0].text.upper(), "Other", advocacy=0))  # same text, other brand
    examples.append(finetune.Correction("only a sentiment", "Acme", sentiment=2))
    train, held = finetune.split(examples, 0.25, seed=7)
    assert (train, held) == finetune.split(examples, 0.25, seed=7)
    assert len(train) + len(held) == len(examples)
    held_counts = [sum(1 for c in held if c.advocacy == a) for a in range(3)]
    assert held_counts[1] == held_counts[2] == 2  # at least two of each label, even from five
    assert held_counts[0] in (3, 4)  # a quarter of twelve texts (one of them twice)
    same = [c for c in examples if c.text.lower() == examples[0].text.lower()]
    assert all(c in held for c in same) or all(c in train for c in same)
    assert any(c.sentiment == 2 and c.advocacy == IGNORE for c in train)  # a lone sentiment stays in training


def test_versions_and_folders_count_up_and_never_overwrite(tmp_path):
    assert finetune.next_version("4") == ("4", 1)
    assert finetune.next_version("4+corrections.2") == ("4", 3)
    meta = {"name": "advocacy-minilm", "version": "4"}
    (tmp_path / "advocacy-minilm-corrections-1").mkdir()
    out, version = finetune.plan_output(meta, tmp_path)
    assert out == tmp_path / "advocacy-minilm-corrections-2" and version == "4+corrections.2"
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "monitor.json").write_text("{}")
    with pytest.raises(finetune.FinetuneRefusedError, match="already exists"):
        finetune.plan_output(meta, tmp_path, taken)
