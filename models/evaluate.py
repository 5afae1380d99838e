"""Figures for the model card, on the shared data sets (never used by tests):

    python models/evaluate.py --data ../shared/datasets [--engine onnx|torch] [--model models/advocacy-minilm]

* TweetEval sentiment test split (12,284 tweets): macro-recall (the benchmark's metric),
  accuracy, macro-F1, confusion matrix.
* Held-out clothing reviews (the 20% the training script never sees, same seed):
  ROC-AUC of "recommends" from P(promoter) - P(detractor); advocacy accuracy and
  macro-recall against the training labels; sentiment macro-recall against the stars.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.classify import build_classifier  # noqa: E402
from monitor.classify.training import read_reviews, review_labels, split_reviews  # noqa: E402
from monitor.config import ClassifierSettings  # noqa: E402

SENT = ["negative", "neutral", "positive"]
ADV = ["promoter", "detractor", "none"]


def scores(y_true: list[int], y_pred: list[int], n: int) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    return {
        "macro_recall": round(float(recall_score(y_true, y_pred, average="macro")), 4),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro")), 4),
        "confusion": confusion_matrix(y_true, y_pred, labels=list(range(n))).tolist(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="models/advocacy-minilm")
    ap.add_argument("--engine", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", type=Path, default=Path(".monitor-cache"))
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    settings = ClassifierSettings(engine=args.engine, model=args.model, threads=args.threads, batch_size=64)
    clf = build_classifier(settings, Path.cwd(), cache_dir=args.cache_dir)
    out: dict = {"model": clf.name, "engine": args.engine}

    tdir = args.data / "tweeteval_sentiment"
    texts = (tdir / "test_text.txt").read_text(encoding="utf-8").splitlines()
    labels = [int(x) for x in (tdir / "test_labels.txt").read_text().split()]
    t0 = time.perf_counter()
    results = clf.classify(texts)
    out["tweeteval_seconds"] = round(time.perf_counter() - t0, 1)
    pred = [SENT.index(r.sentiment.label) for r in results]
    out["tweeteval_test"] = scores(labels, pred, 3)
    out["tweeteval_test"]["uncertain_share"] = round(sum(r.uncertain for r in results) / len(results), 4)

    reviews = read_reviews(args.data / "clothing_reviews_recommend" / "train.csv")
    _, _, test = split_reviews(reviews, args.seed)
    results = clf.classify([r["text"] for r in test])
    from sklearn.metrics import roc_auc_score

    rec = np.array([r["recommended"] for r in test])
    score = np.array([r.advocacy.probabilities.get("promoter", 0) - r.advocacy.probabilities.get("detractor", 0)
                      for r in results])
    adv_true = [review_labels(r["recommended"], r["rating"])[1] for r in test]
    adv_pred = [ADV.index(r.advocacy.label) for r in results]
    sent_true = [review_labels(r["recommended"], r["rating"])[0] for r in test]
    sent_pred = [SENT.index(r.sentiment.label) for r in results]
    out["reviews_heldout"] = {
        "n": len(test),
        "recommend_roc_auc": round(float(roc_auc_score(rec, score)), 4),
        "advocacy": scores(adv_true, adv_pred, 3),
        "sentiment_vs_stars": scores(sent_true, sent_pred, 3),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
