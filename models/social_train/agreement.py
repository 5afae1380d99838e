"""Agreement of the two annotators on the doubly labelled tweets (no data from ../shared needed):

    python models/social_train/agreement.py
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

HERE = Path(__file__).resolve().parent


def report(name: str, pairs: list[tuple[str, str]]) -> None:
    """Print the share of (first, second) label pairs that agree and Cohen's kappa."""
    a, b = zip(*pairs, strict=True)
    agree = sum(x == y for x, y in pairs) / len(pairs)
    print(f"{name}: n={len(pairs)} agreement={agree:.3f} kappa={cohen_kappa_score(a, b):.3f}")


def main() -> int:
    with (HERE / "labels.csv").open(newline="", encoding="utf-8") as fh:
        first = {r["id"]: r["label"] for r in csv.DictReader(fh)}
    with (HERE / "second_annotator.csv").open(newline="", encoding="utf-8") as fh:
        second = [(first[r["id"]], r["label"]) for r in csv.DictReader(fh)]
    report("all", second)
    report("neither skipped", [p for p in second if "skip" not in p])
    print("pairs (first, second):", dict(sorted(Counter(second).items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
