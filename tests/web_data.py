"""Small real databases for the advocates and web tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.records import Author, Classification, FetchResult, LabelScore, Mention
from monitor.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL = "fake@1"
SENT = {"promoter": "positive", "detractor": "negative", "none": "neutral"}


def classification(advocacy: str, model: str = MODEL, p: float = 0.9) -> Classification:
    rest = (1 - p) / 2
    adv = {k: (p if k == advocacy else rest) for k in ("promoter", "detractor", "none")}
    sent_label = SENT[advocacy]
    sent = {k: (p if k == sent_label else rest) for k in ("negative", "neutral", "positive")}
    return Classification(LabelScore(sent_label, sent), LabelScore(advocacy, adv), model)


def add(store: Store, items: list[dict], model: str = MODEL) -> list[int]:
    """items: {id, brand, source, handle, text, advocacy, days_ago, kind, rating, reach, url, title}."""
    mentions, labels = [], []
    for it in items:
        src = it.get("source", "demo")
        author = Author(src, it["handle"], display_name=it.get("display_name"), reach=it.get("reach"),
                        reach_kind="followers" if it.get("reach") is not None else None) if it.get("handle") else None
        mentions.append(Mention(src, str(it["id"]), it.get("brand", "Acme"), it["text"],
                                NOW - timedelta(days=it.get("days_ago", 1)), url=it.get("url"), title=it.get("title"),
                                author=author, kind=it.get("kind", "post"), rating=it.get("rating")))
        labels.append(it.get("advocacy"))
    ids = store.save_batch("demo", "q", FetchResult(mentions, None))
    results = [(i, classification(lab, model)) for i, lab in zip(ids, labels, strict=True) if lab]
    store.save_classifications(results)
    return ids


def seed(store: Store) -> None:
    """A handful of authors with clear stances across two brands and sources."""
    items = []
    n = 0

    def m(handle, adv, days, **kw):
        nonlocal n
        n += 1
        items.append({"id": n, "handle": handle, "advocacy": adv, "days_ago": days,
                      "text": kw.pop("text", f"{handle} says {adv} about acme #{n}"), **kw})

    for d in (3, 10, 17, 24, 31):
        m("alice", "promoter", d, reach=50_000)
    m("alice", "none", 5, reach=50_000)
    for d in (2, 9):
        m("bob", "detractor", d, reach=2_000)
    m("carol", "promoter", 40)
    m("carol", "promoter", 30)
    m("carol", "detractor", 4)  # a flip
    m("dave", "none", 6)
    m("erin", None, 1)  # unclassified
    m("rita", "promoter", 8, kind="review", rating=2, source="appstore")  # stars say detractor
    m("sam", "detractor", 8, kind="review", rating=5, source="appstore")
    m("zed", "promoter", 2, brand="Globex", reach=1_500)
    m("zed", "promoter", 12, brand="Globex", reach=1_500)
    add(store, items)
