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
from monitor.records import Classification, LabelScore

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
    assert f["f1_per_class"] == pytest.approx(list(f1_score(y, p, labels=[0, 1, 2], average=None, zero_division=0)),
                                              abs=1e-4)


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


def test_recommended_labels_are_scored_by_roc_auc():
    """A 0/1 ``recommended`` column ranks texts by P(promoter) - P(detractor)."""
    def result(promoter, detractor):
        return Classification(sentiment=LabelScore("neutral", {"neutral": 1.0}), model="m@1",
                              advocacy=LabelScore("none", {"promoter": promoter, "detractor": detractor,
                                                           "none": 1 - promoter - detractor}))

    results = [result(0.8, 0.1), result(0.1, 0.7), result(0.6, 0.2), result(0.2, 0.3)]
    report = evaluation.evaluate(results, evaluation.Labelled("recommended", texts=list("abcd"), labels=[1, 0, 1, 0]))
    assert report["roc_auc"] == 1.0 and report["n"] == 4
    assert "ROC-AUC" in evaluation.format_report(report)


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
        assert set(rows[0]) == {"id", "text", "sentiment", "advocacy", "stance", "stance_score", "model", "uncertain",
                                "status", "lang"}
        assert rows[0]["model"] == "tiny-bert@local" and set(rows[0]["sentiment"]["probabilities"]) == {
            "negative", "neutral", "positive"}
        statuses = [r["status"] for r in rows]
    else:
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert list(rows[0]) == ["id", "text", *evaluation.CSV_COLUMNS]
        statuses = [r["status"] for r in rows]
    assert statuses == ["ok", "ok", "empty", "ok", "ok", "ok"]
    # each result carries the input's id and text, to join on
    assert [str(r["id"]) for r in rows] == [str(i) for i in range(len(TEXTS))]
    assert [r["text"] for r in rows] == TEXTS


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_model_predict_numbers_the_rows_of_a_file_without_ids(tmp_path, tiny_model, fmt):
    path = tmp_path / "in.csv"
    path.write_text("text\nfirst\nsecond\n=1+1 third\n")
    out = CliRunner().invoke(main, ["model", "predict", str(path), "--format", fmt, "--engine", "torch", "--model",
                                    str(tiny_model), "-c", str(tmp_path / "none.yaml")])
    assert out.exit_code == 0, out.output
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert [(r["row"], r["text"]) for r in rows] == [(1, "first"), (2, "second"), (3, "=1+1 third")]
    else:
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert list(rows[0])[:2] == ["row", "text"]
        assert [(r["row"], r["text"]) for r in rows] == [("1", "first"), ("2", "second"), ("3", "'=1+1 third")]


def test_model_predict_on_a_file_without_text(tmp_path, tiny_model):
    (tmp_path / "x.jsonl").write_text('{"body": "hello"}\n')
    out = CliRunner().invoke(main, ["-c", str(tmp_path / "none.yaml"), "model", "predict", str(tmp_path / "x.jsonl"),
                                    "--engine", "torch", "--model", str(tiny_model)])
    assert out.exit_code == 2 and "no 'text' field" in out.stderr


@pytest.fixture(scope="module")
def targeted_model(tmp_path_factory):
    """A tiny three-head model that reads the brand, with stance calibration in monitor.json."""
    from transformers import AutoTokenizer

    from monitor.classify import network
    from tests.classify.classify_fakes import build_tiny_model

    root = tmp_path_factory.mktemp("targeted")
    encoder = build_tiny_model(root / "encoder")
    folder = root / "targeted"
    network.save(network.from_base(encoder), AutoTokenizer.from_pretrained(str(encoder)), folder,
                 {"name": "tiny-targeted", "version": "1", "targeted": True, "max_length": 32,
                  "stance_offsets": [0, 0, 0, 0, 0], "stance_temperature": 1.0})
    return folder


def test_stance_report_reads_the_nps_way_and_compares_the_heads():
    from monitor.records import Classification, LabelScore

    def result(adv, neg, stance):
        probs = {"promoter": 0.0, "detractor": 0.0, "none": 0.0} | {adv: 1.0}
        return Classification(LabelScore("neutral", {"negative": neg, "neutral": 0.5, "positive": 1 - neg}),
                              LabelScore(adv, probs), "m@1", stance=stance)

    labels = np.array([2, 1, 0, -1, -2])
    results = [result("promoter", 0.1, 2), result("none", 0.2, 1), result("none", 0.9, 0), result("detractor", 0.3, -1),
               result("detractor", 0.4, 0)]
    report = evaluation.stance_report(results, labels)
    assert report["macro_mae"] == pytest.approx(2 / 5)  # only the -2 is off, by 2, over five classes
    assert report["advocacy"]["macro_f1"] == 1.0  # +2 promoter; +1, 0 none; -1, -2 detractor
    assert report["heads"]["detractor"]["advocacy_auc"] == 1.0
    assert report["heads"]["detractor"]["sentiment_auc"] == pytest.approx(4 / 6)  # the 0.9 "none" outranks both


def test_model_eval_stance_with_a_brand_column(tmp_path, targeted_model):
    path = tmp_path / "stance.csv"
    rows = [["switched from acme to globex", "acme", -2], ["switched from acme to globex", "globex", 2],
            ["acme opens an office", "acme", 0], ["i like acme", "acme", 1], ["acme is down again", "acme", -1]]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "topic", "label"])
        w.writerows(rows)
    args = ["-c", str(tmp_path / "none.yaml"), "model", "eval", str(path), "--task", "stance", "--engine", "torch",
            "--model", str(targeted_model)]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "5 with a brand" in out.stdout and "macro-MAE" in out.stdout and "P(detractor)" in out.stdout
    report = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    assert report["targeted"] == 5 and 0 <= report["macro_mae"] <= 4
    (tmp_path / "bad.csv").write_text("text,label\nhi,+3\n")
    out = CliRunner().invoke(main, [*args[:4], str(tmp_path / "bad.csv"), *args[5:]])
    assert out.exit_code == 2 and "not one of -2, -1, 0, 1, 2" in out.output


def test_model_predict_reads_each_rows_brand(tmp_path, targeted_model):
    path = tmp_path / "in.csv"
    path.write_text("text,brand\nswitched from acme to globex,acme\nswitched from acme to globex,globex\n"
                    "switched from acme to globex,\n")
    base = ["-c", str(tmp_path / "none.yaml"), "model", "predict", str(path), "--engine", "torch", "--model",
            str(targeted_model)]
    rows = [json.loads(line) for line in CliRunner().invoke(main, base).stdout.splitlines()]
    assert len(rows) == 3 and all(r["stance"] in (-2, -1, 0, 1, 2) for r in rows)
    assert rows[0]["advocacy"]["probabilities"] != rows[1]["advocacy"]["probabilities"]  # each toward its own brand
    out = CliRunner().invoke(main, [*base, "--target-column", "nope"])
    assert out.exit_code == 2 and "no 'nope' column" in out.output
