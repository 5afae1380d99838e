"""Draw the candidate tweets of the team's social advocacy set (run once; kept to show how).

    python models/social_eval/draw.py --data ../shared/datasets > models/social_eval/candidates.csv

Tweets from ``semeval2017_sentiment/train.csv`` whose ids are in no file of
``semeval_topic_5point`` (so no stance-training tweet is among them), that name a brand,
product or service from the list below, at most ``--per-brand`` per brand (spread over
brands), in a fixed-seed random order; then (second batch) every other brand tweet whose
SemEval sentiment label is not neutral. Most brand tweets are news, ads and posts that use
the brand as a channel, so the first batch alone held too few promoters and detractors to
measure; the second batch enriches the set for stance (the evaluation reports the share
of each label). Writes ``id,brand`` only: the text stays in
../shared and ``models/evaluate.py`` joins it by id. The training script leaves every
candidate id out of its training data.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from pathlib import Path

# brand -> pattern (word-bounded, case-insensitive); ambiguous names need their context
BRANDS = {
    "Netflix": r"netflix", "Google": r"google(?!\s*(?:\+|plus))", "Google+": r"google\s*(?:\+|plus)",
    "Apple": r"@apple|apple (?:store|tv|watch|music|pay|maps|event|keynote|inc)|\bapple's\b",
    "iPhone": r"iphone", "iPad": r"ipad", "iPod": r"ipod|itunes", "Mac": r"macbook|imac|mac os|osx",
    "YouTube": r"youtube", "Twitter": r"twitter", "Facebook": r"facebook", "Instagram": r"instagram",
    "Samsung": r"samsung", "Galaxy": r"galaxy (?:s\d|note|tab|s ?iii|s ?iv)", "Android": r"android",
    "Microsoft": r"microsoft", "Windows": r"windows (?:7|8|phone|xp|vista|10)", "Xbox": r"xbox",
    "PlayStation": r"playstation|ps3|ps4|psn", "Sony": r"sony", "Nintendo": r"nintendo|wii u?",
    "Amazon": r"amazon(?! river| rainforest)", "Kindle": r"kindle", "Spotify": r"spotify", "Hulu": r"hulu",
    "Pandora": r"pandora", "Blackberry": r"blackberry|bbm", "Nokia": r"nokia|lumia", "HTC": r"htc",
    "Motorola": r"motorola|moto x", "Verizon": r"verizon", "AT&T": r"at&amp;t|at&t|@att\b", "Sprint": r"@sprint|sprint (?:customer|service|network|4g|lte|store|phone)",
    "T-Mobile": r"t-mobile|tmobile", "Comcast": r"comcast|xfinity", "Time Warner": r"time warner",
    "United Airlines": r"united airlines|@united\b", "American Airlines": r"american airlines|@americanair",
    "Delta": r"delta (?:airlines|air lines|flight)|@delta\b", "Southwest": r"southwest airlines|@southwestair",
    "JetBlue": r"jetblue", "Toyota": r"toyota|prius|camry", "Honda": r"honda", "Ford": r"\bford (?:focus|fiesta|mustang|f-?150|motor)",
    "Chevrolet": r"chevy|chevrolet", "Tesla": r"tesla", "BMW": r"bmw", "Nissan": r"nissan", "Subaru": r"subaru",
    "KFC": r"kfc", "McDonald's": r"mcdonald|mcdonalds|mickey d", "Taco Bell": r"taco bell", "Subway": r"@subway|subway (?:sandwich|footlong|sub)",
    "Starbucks": r"starbucks", "Chipotle": r"chipotle", "Burger King": r"burger king", "Wendy's": r"wendy's|wendys",
    "Domino's": r"domino's|dominos", "Pizza Hut": r"pizza hut", "Dunkin": r"dunkin", "Chick-fil-A": r"chick-fil-a|chick fil a",
    "Coca-Cola": r"coca-cola|coca cola|\bcoke\b", "Pepsi": r"pepsi", "Red Bull": r"red bull", "Walmart": r"walmart|wal-mart",
    "Target": r"@target\b|target (?:store|run)", "Best Buy": r"best buy", "Costco": r"costco", "eBay": r"ebay",
    "PayPal": r"paypal", "Nike": r"\bnike\b", "Adidas": r"adidas", "Disney": r"disney", "HBO": r"\bhbo\b",
    "ESPN": r"\bespn\b", "Yahoo": r"yahoo", "Skype": r"skype", "Firefox": r"firefox", "Chrome": r"google chrome|chrome (?:browser|extension)",
    "Dell": r"\bdell\b", "Intel": r"\bintel\b", "Canon": r"\bcanon (?:camera|eos|\d)", "Lego": r"\blego\b",
    "Walgreens": r"walgreens", "Uber": r"\buber\b", "Tumblr": r"tumblr", "Snapchat": r"snapchat", "LinkedIn": r"linkedin",
    "Redbox": r"redbox", "Gap": r"@gap\b", "Zara": r"\bzara\b", "Ikea": r"\bikea\b", "Home Depot": r"home depot",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--per-brand", type=int, default=14)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    topic_ids: set[str] = set()
    for f in sorted((args.data / "semeval_topic_5point").glob("*.csv")):
        with f.open(newline="", encoding="utf-8") as fh:
            topic_ids |= {r["id"] for r in csv.DictReader(fh)}
    with (args.data / "semeval2017_sentiment" / "train.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["tweet_id"] not in topic_ids]
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    compiled = {b: re.compile(r"(?<![\w@])(?:" + p + r")(?!\w)" if not p.startswith("@") else p, re.IGNORECASE)
                for b, p in BRANDS.items()}
    per: dict[str, int] = {}
    seen: set[str] = set()
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["id", "brand"])
    for r in rows:
        hits = [b for b, rx in compiled.items() if rx.search(r["text"])]
        if not hits or r["tweet_id"] in seen:
            continue
        brand = min(hits, key=lambda b: per.get(b, 0))  # the least-covered brand the tweet names
        if per.get(brand, 0) >= args.per_brand:
            continue
        per[brand] = per.get(brand, 0) + 1
        seen.add(r["tweet_id"])
        out.writerow([r["tweet_id"], brand])
    first = len(seen)
    for r in rows:  # second batch: the remaining non-neutral brand tweets
        hits = [b for b, rx in compiled.items() if rx.search(r["text"])]
        if hits and r["tweet_id"] not in seen and r["label"] != "1":
            brand = min(hits, key=lambda b: per.get(b, 0))
            per[brand] = per.get(brand, 0) + 1
            seen.add(r["tweet_id"])
            out.writerow([r["tweet_id"], brand])
    print(f"{first} + {len(seen) - first} candidates over {len(per)} brands", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
