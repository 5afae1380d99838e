"""Agreement of the writers' labels with a second annotator on a random 200 of the written posts
(no data from ../shared needed):

    python models/social_written/agreement.py

The 200 rows are drawn as they were given to the second annotator: the rows of ``posts.csv``
shuffled with ``random.Random(7)``, the first 200; ``second_annotator.csv`` holds ``n`` (the
place in that draw) and the label.
"""

from __future__ import annotations

import csv
import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "social_train"))

from agreement import report  # noqa: E402  (models/social_train/agreement.py)


def drawn(n: int = 200) -> list[dict]:
    with (HERE / "posts.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    random.Random(7).shuffle(rows)
    return rows[:n]


def main() -> int:
    rows = drawn()
    with (HERE / "second_annotator.csv").open(newline="", encoding="utf-8") as fh:
        pairs = [(rows[int(r["n"])]["label"], r["label"]) for r in csv.DictReader(fh)]
    report("all", pairs)
    print("pairs (writer, second):", dict(sorted(Counter(pairs).items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
