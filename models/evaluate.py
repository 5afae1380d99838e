"""Figures for the model card, on the shared data sets (never used by tests):

    python models/evaluate.py --data ../shared/datasets [--engine onnx|torch] [--model advocacy-minilm]
        [--sets tweeteval,reviews,topic,social] [--social-split dev|test]

* ``tweeteval``: TweetEval sentiment test split (12,284 tweets): macro-recall (the
  benchmark's metric), accuracy, macro-F1, confusion matrix. Texts alone (no brand).
* ``reviews``: held-out clothing reviews (the 20% the training script never sees, same
  seed): ROC-AUC of "recommends" from P(promoter) - P(detractor); advocacy accuracy and
  macro-recall against the training labels; sentiment macro-recall against the stars.
* ``topic``: SemEval-2017 Task 4C test (``semeval_topic_5point/test2017.csv``, 12,379
  tweets, each with its topic as the brand): macro-averaged MAE of the 5-point stance
  head, the advocacy head against the NPS reading of the labels (+2 promoter, +1 and 0
  none, -1 and -2 detractor), and the advocacy head's ranking of promoters and detractors
  against the sentiment head's P(positive) / P(negative).
* ``social``: the team's social advocacy set (``models/social_eval/labels.csv``: ids,
  brand, label, split; the text is joined from ``semeval2017_sentiment/train.csv``),
  annotated by ``models/ANNOTATION.md``. ``--social-split dev`` for choices, ``test`` once
  for the card.
* ``demo``: long-form posts, comments and app reviews (the demo's own sample mentions,
  ``monitor/demo/mentions.jsonl``, written by the team) labelled by ``models/ANNOTATION.md``
  (``models/demo_eval/labels.csv``: line, brand, label): validation data, like the social
  set's dev part (the decision offsets are tuned on both; it has no test part).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.classify import build_classifier, classify_texts  # noqa: E402
from monitor.classify.evaluation import ADVOCACY, figures, head_comparison, stance_report  # noqa: E402
from monitor.classify.training import read_reviews, review_labels, split_reviews  # noqa: E402
from monitor.config import ClassifierSettings  # noqa: E402

SENT = ["negative", "neutral", "positive"]
SETS = ("tweeteval", "reviews", "topic", "social", "demo")
SOCIAL_LABELS = ROOT / "models" / "social_eval" / "labels.csv"
DEMO_LABELS = ROOT / "models" / "demo_eval" / "labels.csv"
DEMO_TEXTS = ROOT / "monitor" / "demo" / "mentions.jsonl"


def read_demo(labels_path: Path = DEMO_LABELS) -> list[dict]:
    """The demo's sample mentions as labelled by the guideline, one row per (mention, brand)."""
    texts = [json.loads(line)["text"] for line in DEMO_TEXTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    with labels_path.open(newline="", encoding="utf-8") as fh:
        return [{"text": texts[int(r["line"])], "brand": r["brand"], "label": r["label"]} for r in csv.DictReader(fh)]


def read_social(data: Path, split: str, labels_path: Path = SOCIAL_LABELS) -> list[dict]:
    """The team's set joined with the tweet texts in ../shared (rows whose tweet is missing there are
    counted and dropped)."""
    with (data / "semeval2017_sentiment" / "train.csv").open(newline="", encoding="utf-8") as fh:
        texts = {r["tweet_id"]: r["text"] for r in csv.DictReader(fh)}
    with labels_path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if split == "all" or r["split"] == split]
    missing = [r["id"] for r in rows if r["id"] not in texts]
    if missing:
        print(f"social set: {len(missing)} tweet(s) not found in the data, left out", file=sys.stderr)
    return [r | {"text": texts[r["id"]]} for r in rows if r["id"] in texts]


def social_report(clf, rows: list[dict]) -> dict:
    results = classify_texts(clf, [r["text"] for r in rows], [r["brand"] for r in rows])
    truth = np.array([ADVOCACY.index(r["label"]) for r in rows])
    pred = [ADVOCACY.index(c.advocacy.label) for c in results]
    adv = figures(truth, pred, 3)
    return {"n": len(rows), "labels": {a: int((truth == i).sum()) for i, a in enumerate(ADVOCACY)},
            "advocacy": adv | {"f1": dict(zip(ADVOCACY, adv["f1_per_class"], strict=True))},
            "heads": head_comparison(results, truth), "brands": len({r["brand"] for r in rows})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="advocacy-minilm")
    ap.add_argument("--engine", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", type=Path, default=Path(".monitor-cache"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    ap.add_argument("--social-split", default="dev", choices=["dev", "test", "all"])
    ap.add_argument("--no-targets", action="store_true", help="read every text alone (no brand)")
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(sets) - set(SETS)
    if unknown:
        ap.error(f"unknown set(s): {', '.join(sorted(unknown))}")

    settings = ClassifierSettings(engine=args.engine, model=args.model, threads=args.threads, batch_size=64)
    clf = build_classifier(settings, Path.cwd(), cache_dir=args.cache_dir)
    if args.no_targets:
        clf.targeted = False
    out: dict = {"model": clf.name, "engine": args.engine, "reads_brand": bool(getattr(clf, "targeted", False))}

    if "tweeteval" in sets:
        tdir = args.data / "tweeteval_sentiment"
        texts = (tdir / "test_text.txt").read_text(encoding="utf-8").splitlines()
        labels = [int(x) for x in (tdir / "test_labels.txt").read_text().split()]
        t0 = time.perf_counter()
        results = clf.classify(texts)
        out["tweeteval_seconds"] = round(time.perf_counter() - t0, 1)
        pred = [SENT.index(r.sentiment.label) for r in results]
        out["tweeteval_test"] = figures(labels, pred, 3)
        out["tweeteval_test"]["uncertain_share"] = round(sum(r.uncertain for r in results) / len(results), 4)

    if "reviews" in sets:
        from sklearn.metrics import roc_auc_score

        reviews = read_reviews(args.data / "clothing_reviews_recommend" / "train.csv")
        _, _, test = split_reviews(reviews, args.seed)
        results = clf.classify([r["text"] for r in test])
        rec = np.array([r["recommended"] for r in test])
        score = np.array([r.advocacy.probabilities.get("promoter", 0) - r.advocacy.probabilities.get("detractor", 0)
                          for r in results])
        adv_true = [review_labels(r["recommended"], r["rating"])[1] for r in test]
        adv_pred = [ADVOCACY.index(r.advocacy.label) for r in results]
        sent_true = [review_labels(r["recommended"], r["rating"])[0] for r in test]
        sent_pred = [SENT.index(r.sentiment.label) for r in results]
        out["reviews_heldout"] = {
            "n": len(test),
            "recommend_roc_auc": round(float(roc_auc_score(rec, score)), 4),
            "advocacy": figures(adv_true, adv_pred, 3),
            "sentiment_vs_stars": figures(sent_true, sent_pred, 3),
        }

    if "topic" in sets:
        with (args.data / "semeval_topic_5point" / "test2017.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        results = classify_texts(clf, [r["text"] for r in rows], [r["topic"] for r in rows])
        out["topic_test2017"] = stance_report(results, np.array([int(r["label"]) for r in rows]))

    if "social" in sets:
        out[f"social_{args.social_split}"] = social_report(clf, read_social(args.data, args.social_split))

    if "demo" in sets:
        out["demo_longform"] = social_report(clf, read_demo())

    print(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
