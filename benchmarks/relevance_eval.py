"""Relevance (``monitor.relevance``): precision and recall of "about the brand".

The set: ``tests/fixtures/relevance/apple.jsonl``, 122 social posts written for this test in
the shape of what a keyword search for "apple" brings in (Reddit, X/Twitter, Hacker News,
App Store reviews): 61 about Apple the company and its products, 61 that are not (the fruit,
orchards, cider, recipes, "the Big Apple", idioms). The vectors come from the shipped model
(``monitor/models/advocacy-minilm``) through the ONNX int8 engine (``--engine torch``: the
PyTorch one), exactly as ``monitor classify`` keeps them.

Two ways the brand's model learns, as in production:

1. ``config``: only the brand's ``about`` / ``not_about`` texts below (12 each, not in the set:
   four descriptions and eight example posts a side, with sentiment on both sides);
   every post of the set is scored.
2. ``config + marks``: the same texts plus ``--marks`` "not about us" / "about" marks per side
   drawn from the set (what users mark on the web page); scored on the posts not drawn,
   averaged over ``--rounds`` draws.

Goal: precision and recall of "about" both >= 0.85 at the default threshold (0.5).
Figures are printed, never asserted.

    python benchmarks/relevance_eval.py [--quick] [--engine onnx|torch] [--marks N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import relevance  # noqa: E402
from monitor.classify import resolve_model  # noqa: E402
from monitor.config import ClassifierSettings  # noqa: E402
from monitor.vectors import unpack  # noqa: E402

SET = ROOT / "tests" / "fixtures" / "relevance" / "apple.jsonl"

# the brand's config (the README's example uses the same texts)
ABOUT = [
    "Apple the technology company: iPhone, iPad, Mac, MacBook, Apple Watch, AirPods",
    "iOS and macOS updates, the App Store, iCloud, Apple Music, Apple Pay",
    "Apple Store and Genius Bar support, AppleCare warranty repairs",
    "Apple's keynote, earnings and Tim Cook",
    "My iPhone battery drains so fast since the update, really annoyed with Apple",
    "Love my new MacBook Pro, the M3 chip is so fast and quiet",
    "AirPods won't connect to my phone again, Apple fix your bluetooth",
    "Apple support was super helpful replacing my cracked screen",
    "the new iPad is way too expensive for what it does",
    "Apple Watch fitness tracking got me running every day",
    "Apple's App Store fees are hurting small developers",
    "Just switched from Android to iPhone and I love it",
]
NOT_ABOUT = [
    "Eating an apple, the fruit: Granny Smith, Honeycrisp, Fuji",
    "Apple pie, apple crumble and other recipes with apples",
    "Apple orchards, apple trees, picking apples at the farm",
    "Apple cider and cider vinegar",
    "New York City, the Big Apple",
    "An apple a day keeps the doctor away",
    "These apples from the grocery store are mushy and tasteless, so disappointed",
    "Best apple crisp I have ever baked, the whole family loved it",
    "my apple tree finally gave fruit this year, so proud",
    "sliced apples and cheese, the perfect snack",
    "we went apple picking with the kids, lovely autumn day",
    "apple juice spilled all over the kitchen floor, great start to the day",
]


def precision_recall(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    tp = float(np.sum(truth & predicted))
    precision = tp / max(1, int(np.sum(predicted)))
    recall = tp / max(1, int(np.sum(truth)))
    return precision, recall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one draw of marks instead of --rounds")
    ap.add_argument("--engine", choices=["onnx", "torch"], default="onnx")
    ap.add_argument("--marks", type=int, default=10, help="marks drawn per side (default 10)")
    ap.add_argument("--rounds", type=int, default=20, help="draws of marks (default 20; quick 1)")
    ap.add_argument("--threshold", type=float, default=relevance.DEFAULT_THRESHOLD)
    ap.add_argument("--model", help="model folder (default: the shipped model)")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".monitor-cache")
    args = ap.parse_args()
    rounds = 1 if args.quick else args.rounds

    model = args.model or resolve_model(ClassifierSettings().model, ROOT)
    if args.engine == "onnx":
        from monitor.classify.onnx_engine import OnnxClassifier

        classifier = OnnxClassifier(model, cache_dir=args.cache_dir)
    else:
        from monitor.classify.torch_engine import TorchClassifier

        classifier = TorchClassifier(model)  # type: ignore[assignment]

    posts = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    truth = np.array([bool(p["about"]) for p in posts])

    def embed(texts: list[str]) -> np.ndarray:
        blobs = [c.embedding for c in classifier.classify(texts)]
        if not all(blobs):
            raise SystemExit(f"{classifier.name} gives no sentence vector")
        return unpack([b for b in blobs if b])

    vectors = embed([p["text"] for p in posts])
    about, not_about = embed(ABOUT), embed(NOT_ABOUT)
    print(f"set: {SET.relative_to(ROOT)}: {len(posts)} posts, {int(truth.sum())} about the brand; "
          f"model {classifier.name} ({args.engine}); threshold {args.threshold}")

    m = relevance.fit("Apple", about, not_about, args.threshold)
    assert m is not None
    p, r = precision_recall(truth, ~m.off_topic(m.score(vectors)))
    print(f"config texts only ({len(ABOUT)} about, {len(NOT_ABOUT)} not_about): "
          f"precision {p:.3f}, recall {r:.3f} on all {len(posts)}")

    rng = np.random.default_rng(7)
    ps, rs = [], []
    pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
    for _ in range(rounds):
        drawn = np.r_[rng.choice(pos, args.marks, replace=False), rng.choice(neg, args.marks, replace=False)]
        rest = np.setdiff1d(np.arange(len(posts)), drawn)
        m = relevance.fit("Apple", np.vstack([about, vectors[drawn[:args.marks]]]),
                          np.vstack([not_about, vectors[drawn[args.marks:]]]), args.threshold)
        assert m is not None
        p, r = precision_recall(truth[rest], ~m.off_topic(m.score(vectors[rest])))
        ps.append(p)
        rs.append(r)
    print(f"config texts + {args.marks} marks a side: precision {np.mean(ps):.3f} (min {np.min(ps):.3f}), "
          f"recall {np.mean(rs):.3f} (min {np.min(rs):.3f}) on the {len(posts) - 2 * args.marks} posts "
          f"not marked, {rounds} draw(s)")


if __name__ == "__main__":
    main()
