"""List the Task 4C tweets the team labelled by the guideline for training (run once; kept to show how).

    python models/social_train/draw.py --data ../shared/datasets > /tmp/social_train_candidates.csv

Every tweet of ``semeval_topic_5point`` ``train``, ``dev`` and ``test2016`` (the files the
model trains on; never ``devtest`` or ``test2017``) whose topic is a brand, product or
service (the topics below; people, teams, events, films and shows are left out), once per
tweet id, with the topic's brand name. The annotators saw the id, the brand and the text,
never the Task 4C score. ``labels.csv`` holds their labels: ``id,brand,label`` with label
``promoter``, ``detractor``, ``none`` or ``skip`` (the name did not mean the brand). No
tweet of the team's evaluation set (``models/social_eval``) is a Task 4C tweet.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

BRAND_TOPICS = {
    "@microsoft": "Microsoft", "amazon": "Amazon", "amazon prime": "Amazon Prime",
    "amazon prime day": "Amazon Prime Day", "apple": "Apple", "apple watch": "Apple Watch", "bbc": "BBC",
    "bentley": "Bentley", "dark souls": "Dark Souls", "digi": "Digi", "disneyland": "Disneyland",
    "dunkin": "Dunkin", "galaxy note": "Galaxy Note", "google": "Google", "google+": "Google+", "gucci": "Gucci",
    "ibm": "IBM", "ihop": "IHOP", "ios": "iOS", "ipad": "iPad", "iphone": "iPhone", "ipod": "iPod",
    "lexus": "Lexus", "metlife": "MetLife", "minecraft": "Minecraft", "monsanto": "Monsanto",
    "moto g": "Moto G", "netflix": "Netflix", "nike": "Nike", "nintendo": "Nintendo", "nokia": "Nokia",
    "oracle": "Oracle", "ps4": "PS4",
}
TRAIN_FILES = ("train", "dev", "test2016")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    args = ap.parse_args()
    seen: set[str] = set()
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["id", "brand"])
    for name in TRAIN_FILES:
        with (args.data / "semeval_topic_5point" / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                brand = BRAND_TOPICS.get(row["topic"].lower())
                if brand and row["id"] not in seen:
                    seen.add(row["id"])
                    out.writerow([row["id"], brand])
    print(f"{len(seen)} brand tweets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
