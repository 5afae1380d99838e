"""`monitor model eval` and `monitor model predict`: file formats, figures, output shape."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.classify import evaluation
from monitor.classify.evaluation import InputFileError, figures, read_labelled, roc_auc
from monitor.cli import main

TEXTS = ["great product, love it", "awful service, avoid", "", "the app is not very good", "😀",
         "Ce produit est vraiment nul, je ne le recommande à personne du tout."]


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=60))
@settings(max_examples=60, deadline=None)
def test_figures_agree_with_scikit_learn(pairs):
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    y, p = [a for a, _ in pairs], [b for _, b in pairs]
    f = figures(y, p)
    present = sorted(set(y))
    assert f["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert f["macro_recall"] == pytest.approx(recall_score(y, p, labels=present, average="macro", zero_division=0))
    assert f["macro_f1"] == pytest.approx(f1_score(y, p, labels=present, average="macro", zero_division=0))
    assert f["confusion"] == confusion_matrix(y, p, labels=[0, 1, 2]).tolist()


@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), st.booleans()), min_size=2, max_size=40))
@settings(max_examples=60, deadline=None)
def test_roc_auc_agrees_with_scikit_learn(pairs):
    from sklearn.metrics import roc_auc_score

    scores, truth = [s for s, _ in pairs], [t for _, t in pairs]
    if len(set(truth)) < 2:
        assert np.isnan(roc_auc(scores, truth))
    else:
        assert roc_auc(scores, truth) == pytest.approx(roc_auc_score(truth, scores))


def test_labelled_files_in_every_layout(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nhi,positive\nbad,0\n\"multi\nline\",Neutral\n")
    d = read_labelled(tmp_path / "a.csv")
    assert (d.task, d.texts, d.labels) == ("sentiment", ["hi", "bad", "multi\nline"], [2, 0, 1])
    (tmp_path / "b.jsonl").write_text('{"text": "x", "label": "promoter"}\n\n{"text": "y", "label": 1}\n')
    assert read_labelled(tmp_path / "b.jsonl", "advocacy").labels == [0, 1]
    (tmp_path / "c.csv").write_text("text,recommended\nx,1\ny,0\n")
    assert read_labelled(tmp_path / "c.csv", "advocacy").task == "recommended"
    (tmp_path / "d.csv").write_text("Review Text,Recommended IND\nx,1\n")
    d = read_labelled(tmp_path / "d.csv", "advocacy", text_column="Review Text", label_column="Recommended IND")
    assert (d.task, d.labels) == ("recommended", [1])
    (tmp_path / "t.txt").write_text("one\ntwo\n")
    (tmp_path / "l.txt").write_text("2\n0\n")
    assert read_labelled(tmp_path / "t.txt", labels_file=tmp_path / "l.txt").labels == [2, 0]


@pytest.mark.parametrize(("content", "message"), [
    ("text,label\nhi,happy\n", "not one of"),
    ("words,label\nhi,1\n", "no 'text'"),
    ("text,label\nhi,\n", "no 'label'"),
    ("text,label\n", "no records"),
])
def test_bad_labelled_files_are_clear_errors(tmp_path, content, message):
    (tmp_path / "x.csv").write_text(content)
    with pytest.raises(InputFileError, match=message):
        read_labelled(tmp_path / "x.csv")


def test_model_eval_prints_the_figures(tmp_path, tiny_model):
    path = tmp_path / "eval.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i, t in enumerate(TEXTS):
            w.writerow([t, ["positive", "negative", "neutral", "negative", "positive", "negative"][i]])
    out = CliRunner().invoke(main, ["-c", str(tmp_path / "none.yaml"), "model", "eval", str(path), "--engine", "torch",
                                    "--model", str(tiny_model)])
    assert out.exit_code == 0, out.output
    for word in ("accuracy", "macro-F1", "macro-recall", "confusion", "not judged: empty 1"):
        assert word in out.stdout
    out = CliRunner().invoke(main, ["-c", str(tmp_path / "none.yaml"), "model", "eval", str(path), "--json",
                                    "--engine", "torch", "--model", str(tiny_model)])
    report = json.loads(out.stdout)
    assert report["n"] == 5 and len(report["confusion"]) == 3 and 0 <= report["macro_recall"] <= 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("source", ["csv", "jsonl"])
def test_model_predict_gives_one_result_per_input_in_order(tmp_path, tiny_model, fmt, source):
    path = tmp_path / f"in.{source}"
    if source == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id", "text"])
        w.writerows([[i, t] for i, t in enumerate(TEXTS)])
        path.write_text(buf.getvalue())
    else:
        path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    out = CliRunner().invoke(main, ["-c", str(tmp_path / "none.yaml"), "model", "predict", str(path), "--format", fmt,
                                    "--engine", "torch", "--model", str(tiny_model)])
    assert out.exit_code == 0, out.output
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert set(rows[0]) == {"sentiment", "advocacy", "model", "uncertain", "status", "lang"}
        assert rows[0]["model"] == "tiny-bert@local" and set(rows[0]["sentiment"]["probabilities"]) == {
            "negative", "neutral", "positive"}
        statuses = [r["status"] for r in rows]
    else:
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert list(rows[0]) == evaluation.CSV_COLUMNS
        statuses = [r["status"] for r in rows]
    assert statuses == ["ok", "ok", "empty", "ok", "ok", "ok"]


def test_model_predict_on_a_file_without_text(tmp_path, tiny_model):
    (tmp_path / "x.jsonl").write_text('{"body": "hello"}\n')
    out = CliRunner().invoke(main, ["-c", str(tmp_path / "none.yaml"), "model", "predict", str(tmp_path / "x.jsonl"),
                                    "--engine", "torch", "--model", str(tiny_model)])
    assert out.exit_code == 2 and "no 'text' field" in out.stderr
