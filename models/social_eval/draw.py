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
    'Netflix': 'netflix',
    'Google': 'google(?!\\s*(?:\\+|plus))',
    'Google+': 'google\\s*(?:\\+|plus)',
    'Apple': "@apple|apple (?:store|tv|watch|music|pay|maps|event|keynote|inc)|\\bapple's\\b",
    'iPhone': 'iphone',
    'iPad': 'ipad',
    'iPod': 'ipod|itunes',
    'Mac': 'macbook|imac|mac os|osx',
    'YouTube': 'youtube',
    'Twitter': 'twitter',
    'Facebook': 'facebook',
    'Instagram': 'instagram',
    'Samsung': 'samsung',
    'Galaxy': 'galaxy (?:s\\d|note|tab|s ?iii|s ?iv)',
    'Android': 'android',
    'Microsoft': 'microsoft',
    'Windows': 'windows (?:7|8|phone|xp|vista|10)',
    'Xbox': 'xbox',
    'PlayStation': 'playstation|ps3|ps4|psn',
    'Sony': 'sony',
    'Nintendo': 'nintendo|wii u?',
    'Amazon': 'amazon(?! river| rainforest)',
    'Kindle': 'kindle',
    'Spotify': 'spotify',
    'Hulu': 'hulu',
    'Pandora': 'pandora',
    'Blackberry': 'blackberry|bbm',
    'Nokia': 'nokia|lumia',
    'HTC': 'htc',
    'Motorola': 'motorola|moto x',
    'Verizon': 'verizon',
    'AT&T': 'at&amp;t|at&t|@att\\b',
    'Sprint': '@sprint|sprint (?:customer|service|network|4g|lte|store|phone)',
    'T-Mobile': 't-mobile|tmobile',
    'Comcast': 'comcast|xfinity',
    'Time Warner': 'time warner',
    'United Airlines': 'united airlines|@united\\b',
    'American Airlines': 'american airlines|@americanair',
    'Delta': 'delta (?:airlines|air lines|flight)|@delta\\b',
    'Southwest': 'southwest airlines|@southwestair',
    'JetBlue': 'jetblue',
    'Toyota': 'toyota|prius|camry',
    'Honda': 'honda',
    'Ford': '\\bford (?:focus|fiesta|mustang|f-?150|motor)',
    'Chevrolet': 'chevy|chevrolet',
    'Tesla': 'tesla',
    'BMW': 'bmw',
    'Nissan': 'nissan',
    'Subaru': 'subaru',
    'KFC': 'kfc',
    "McDonald's": 'mcdonald|mcdonalds|mickey d',
    'Taco Bell': 'taco bell',
    'Subway': '@subway|subway (?:sandwich|footlong|sub)',
    'Starbucks': 'starbucks',
    'Chipotle': 'chipotle',
    'Burger King': 'burger king',
    "Wendy's": "wendy's|wendys",
    "Domino's": "domino's|dominos",
    'Pizza Hut': 'pizza hut',
    'Dunkin': 'dunkin',
    'Chick-fil-A': 'chick-fil-a|chick fil a',
    'Coca-Cola': 'coca-cola|coca cola|\\bcoke\\b',
    'Pepsi': 'pepsi',
    'Red Bull': 'red bull',
    'Walmart': 'walmart|wal-mart',
    'Target': '@target\\b|target (?:store|run)',
    'Best Buy': 'best buy',
    'Costco': 'costco',
    'eBay': 'ebay',
    'PayPal': 'paypal',
    'Nike': '\\bnike\\b',
    'Adidas': 'adidas',
    'Disney': 'disney',
    'HBO': '\\bhbo\\b',
    'ESPN': '\\bespn\\b',
    'Yahoo': 'yahoo',
    'Skype': 'skype',
    'Firefox': 'firefox',
    'Chrome': 'google chrome|chrome (?:browser|extension)',
    'Dell': '\\bdell\\b',
    'Intel': '\\bintel\\b',
    'Canon': '\\bcanon (?:camera|eos|\\d)',
    'Lego': '\\blego\\b',
    'Walgreens': 'walgreens',
    'Uber': '\\buber\\b',
    'Tumblr': 'tumblr',
    'Snapchat': 'snapchat',
    'LinkedIn': 'linkedin',
    'Redbox': 'redbox',
    'Gap': '@gap\\b',
    'Zara': '\\bzara\\b',
    'Ikea': '\\bikea\\b',
    'Home Depot': 'home depot',
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
