"""Fit the advocacy decision offsets of a model on the social set's dev part (never its test part),
on the guideline-labelled tweets its training held out (``--social-holdout``), if any, and on
the demo's long-form posts labelled by the same guideline (``models/demo_eval/``):

    python models/tune_advocacy.py --data ../shared/datasets --model /path/to/model-folder [--write]

Training weighs the advocacy classes by their frequency in the training data (reviews,
topic tweets), where promoters and detractors are far more common than among brand
mentions on social media; the team's annotation guideline is also stricter about `none`
(a post that uses the brand as a channel is no stance). Per-class logit offsets (promoter
and detractor against `none`) chosen for macro-F1 on the dev part correct that prior.
They move the decision threshold (no retraining); the probabilities shift with them.
With ``--write`` they are stored in the folder's monitor.json (``advocacy_offsets``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

from evaluate import DEMO_LABELS, read_demo, read_social  # noqa: E402

from monitor.classify import build_classifier, classify_texts  # noqa: E402
from monitor.classify.evaluation import ADVOCACY, figures  # noqa: E402
from monitor.classify.training import read_guideline_holdout, social_f1  # noqa: E402
from monitor.config import ClassifierSettings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True, help="a model folder")
    ap.add_argument("--engine", default="torch", choices=["onnx", "torch"])
    ap.add_argument("--cache-dir", type=Path, default=Path(".monitor-cache"))
    ap.add_argument("--social-train", type=Path, default=ROOT / "models" / "social_train" / "labels.csv")
    ap.add_argument("--holdout", type=float, default=None,
                    help="share of the guideline-labelled tweets held out of training (default: the model's own)")
    ap.add_argument("--long-form", type=Path, default=DEMO_LABELS,
                    help="guideline labels of the demo's long-form posts (validation data; 'none' to leave out)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    meta_path = args.model / "monitor.json"
    meta = json.loads(meta_path.read_text())
    clf = build_classifier(ClassifierSettings(engine=args.engine, model=str(args.model.resolve()), batch_size=64),
                           Path.cwd(), cache_dir=args.cache_dir)
    clf.meta = {k: v for k, v in clf.meta.items() if k != "advocacy_offsets"}  # tune from the raw head
    rows = read_social(args.data, "dev")
    fraction = meta.get("social_holdout", 0.0) if args.holdout is None else args.holdout
    if fraction:  # the training's held-out guideline tweets: never trained on, so fair to tune on
        rows += [{"text": e.text, "brand": e.target, "label": ADVOCACY[e.advocacy]}
                 for e in read_guideline_holdout(args.data, args.social_train, fraction)]
    n_tweets = len(rows)
    if str(args.long_form) != "none":  # posts, comments and reviews: tweets alone favour `none` too much
        rows += read_demo(args.long_form)
    results = classify_texts(clf, [r["text"] for r in rows], [r["brand"] for r in rows])
    truth = np.array([ADVOCACY.index(r["label"]) for r in rows])
    logp = np.log(np.clip([[c.advocacy.probabilities.get(a, 0.0) for a in ADVOCACY] for c in results], 1e-6, 1))
    base, best, best_off = social_f1(logp, truth, step=0.1)
    temperature = float(meta.get("advocacy_temperature", 1.0))
    offsets = [round(best_off[0] * temperature, 3), round(best_off[1] * temperature, 3), 0.0]
    parts = {"tweets": slice(0, n_tweets), "long_form": slice(n_tweets, len(rows))}
    each = {name: round(figures(truth[sl], (logp[sl] + best_off).argmax(1), 3)["macro_f1"], 4)
            for name, sl in parts.items() if sl.stop > sl.start}
    print(json.dumps({"model": clf.name, "dev_n": len(rows), "long_form_n": len(rows) - n_tweets,
                      "dev_macro_f1_before": round(base, 4), "dev_macro_f1_after": round(best, 4),
                      "after_by_part": each, "advocacy_offsets": offsets}, indent=2))
    if args.write:
        meta["advocacy_offsets"] = offsets
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        print(f"written to {meta_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
