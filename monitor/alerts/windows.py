"""Windowed rules, evaluated on a schedule over classified mention rows (pure: rows in,
alerts out; the clock value is an argument). Rows come sorted by created_at."""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from monitor.alerts.explain import ThemeGrowth, explain, explanation_text
from monitor.alerts.noise import human, period_start
from monitor.alerts.rules import classification_of, mention_matches, reason, summary
from monitor.records import Alert
from monitor.store.rows import ClassifiedMention

Row = ClassifiedMention
Stances = Callable[[ClassifiedMention], dict[str, int]]
TURNED_BASELINE = 7  # a promoter-turned-negative alert is explained against this many windows before its own


def lookback(rule) -> timedelta:
    """How much history before ``now`` a windowed rule needs."""
    w = rule.window
    if w.kind == "volume_spike":
        return w.window + w.baseline
    if w.kind == "share_dip":
        return w.window + w.baseline
    if w.kind == "source_silent":
        return w.baseline + w.after
    if w.kind == "promoter_turned_negative":
        return w.window * (1 + TURNED_BASELINE)
    return w.window


def _at(row: Row) -> datetime:
    return _parse(row["created_at"])


@lru_cache(maxsize=65536)
def _parse(created_at: str) -> datetime:
    """A row's time, parsed once however often the rules read it."""
    dt = datetime.fromisoformat(created_at)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _count(times: list[datetime], start: datetime, end: datetime) -> int:
    """Rows with start < t <= end."""
    return bisect_right(times, end) - bisect_right(times, start)


def _scope(rule, row: Row) -> bool:
    w = rule.when
    if w.brands and row.get("brand") not in w.brands:
        return False
    return not (w.sources and row.get("source") not in w.sources and row.get("source_key") not in w.sources)


def _alert(rule, key: str, now: datetime, title: str, what: str, brand: str | None, rows: Sequence[Row],
           facts: dict, web_base_url: str | None, explanation: dict | None = None) -> Alert:
    examples = [summary(r, classification_of(r), web_base_url) for r in rows[-3:]]
    why = reason(rule.when)
    body = f"{what}\nRule {rule.name} ({rule.window.kind}); mentions counted: {why}"
    if explanation is not None:
        body += "\n\n" + explanation_text(explanation)
    elif examples:
        body += "\n\nRecent examples:\n" + "\n".join(f"- {e.get('author') or 'unknown'}: {e['text'][:200]}"
                                                     for e in examples)
    data = {"kind": rule.window.kind, "reason": why, "facts": facts, "mentions": examples,
            "count": len(rows), "web_url": web_base_url and f"{web_base_url}/mentions"}
    if explanation is not None:
        data["explanation"] = explanation
    return Alert(rule=rule.name, key=key, severity=rule.severity, title=title, body=body, brand=brand,
                 mention_ids=tuple(r["id"] for r in rows[-20:]), created_at=now, data=data)


def evaluate(rule, rows: Sequence[Row], now: datetime, *, stances: Stances | None = None,
             web_base_url: str | None = None, themes: ThemeGrowth | None = None) -> list[Alert]:
    """The alerts a windowed rule raises at ``now`` over ``rows`` (mentions up to now). Spikes,
    dips and promoters turned negative carry their explanation (``explain``); ``themes``
    (``explain.theme_growth`` bound to a store) adds the themes that grew."""
    kind = rule.window.kind
    scoped = [r for r in rows if _scope(rule, r) and _at(r) <= now]
    if kind == "source_silent":
        return _source_silent(rule, scoped, now, web_base_url)
    if kind == "promoter_turned_negative":
        return _turned(rule, scoped, now, stances, web_base_url, themes)
    matching = [r for r in scoped if mention_matches(rule.when, r, classification_of(r), _stances_of(stances, r))]
    first_seen: dict[str, datetime] = {}
    for r in scoped:
        first_seen.setdefault(r["brand"], _at(r))
    by_brand: dict[str, list[Row]] = defaultdict(list)
    for r in (matching if kind == "volume_spike" else scoped):
        by_brand[r["brand"]].append(r)
    out = []
    for brand, brs in sorted(by_brand.items()):
        if kind == "volume_spike":
            alert = _spike(rule, brand, brs, first_seen[brand], now, web_base_url, themes)
        else:
            alert = _share_dip(rule, brand, brs, now, web_base_url, themes)
        if alert:
            out.append(alert)
    return out


def _stances_of(stances: Stances | None, r: Row) -> Callable[[], dict[str, int]] | None:
    return None if stances is None else lambda: stances(r)


def _spike(rule, brand: str, rows: Sequence[Row], first: datetime, now: datetime,
           web_base_url: str | None, themes: ThemeGrowth | None = None) -> Alert | None:
    w = rule.window
    times = [_at(r) for r in rows]
    current = _count(times, now - w.window, now)
    if current < w.min_count:
        return None
    counts = []
    n_buckets = int(w.baseline / w.window)
    for i in range(1, n_buckets + 1):
        end = now - i * w.window
        if end < first:  # before the brand's loaded history began: no evidence either way
            break
        counts.append(_count(times, end - w.window, end))
    if len(counts) < 3:
        return None
    median = statistics.median(counts)
    mad = statistics.median(abs(c - median) for c in counts)
    scale = max(1.0, 1.4826 * mad)
    score = (current - median) / scale
    if score < w.threshold:
        return None
    bucket = period_start(now, w.window).isoformat(timespec="seconds")
    recent = rows[bisect_left(times, now - w.window):]
    base_since = now - (len(counts) + 1) * w.window
    baseline = rows[bisect_right(times, base_since):bisect_left(times, now - w.window)]
    explanation = explain(recent, baseline, brand=brand, since=now - w.window, until=now, baseline_since=base_since,
                          baseline_until=now - w.window, scale=1 / len(counts), web_base_url=web_base_url,
                          themes=themes)
    return _alert(rule, f"{rule.name}:volume_spike:{brand}:{bucket}", now,
                  f"[{brand}] {rule.name}: {current} mentions in {human(w.window)} (usually {median:g})",
                  f"Volume spike for {brand}: {current} matching mentions in the last {human(w.window)}, "
                  f"against a median of {median:g} (MAD {mad:g}) over {len(counts)} earlier windows; "
                  f"score {score:.1f} >= {w.threshold}.",
                  brand, recent, {"count": current, "median": median, "mad": mad, "score": round(score, 2),
                                  "window_s": w.window.total_seconds()}, web_base_url, explanation)


def _share(rows: Sequence[Row], of: str) -> float:
    return sum(1 for r in rows if (r["sentiment"] if of == "positive" else r["advocacy"]) == of) / len(rows)


def _share_dip(rule, brand: str, rows: Sequence[Row], now: datetime, web_base_url: str | None,
               themes: ThemeGrowth | None = None) -> Alert | None:
    w = rule.window
    ok = [r for r in rows if (r.get("status") or "ok") == "ok"]
    current = [r for r in ok if now - w.window < _at(r) <= now]
    base = [r for r in ok if now - w.window - w.baseline < _at(r) <= now - w.window]
    if len(current) < w.min_count or len(base) < w.min_count:
        return None
    cur, was = _share(current, w.of), _share(base, w.of)
    if was - cur < w.drop:
        return None
    bucket = period_start(now, w.window).isoformat(timespec="seconds")

    def other(r: Row) -> bool:  # what took the place of the positive (promoter) mentions
        return (r["sentiment"] if w.of == "positive" else r["advocacy"]) != w.of

    explanation = explain([r for r in current if other(r)], [r for r in base if other(r)], brand=brand,
                          since=now - w.window, until=now, baseline_since=now - w.window - w.baseline,
                          baseline_until=now - w.window, scale=len(current) / len(base), web_base_url=web_base_url,
                          themes=themes)
    return _alert(rule, f"{rule.name}:share_dip:{brand}:{bucket}", now,
                  f"[{brand}] {rule.name}: {w.of} share {cur:.0%} (was {was:.0%})",
                  f"The share of {w.of} mentions for {brand} fell to {cur:.0%} of {len(current)} "
                  f"in the last {human(w.window)}, from {was:.0%} of {len(base)} over the {human(w.baseline)} before.",
                  brand, current, {"share": round(cur, 4), "baseline_share": round(was, 4), "count": len(current),
                                   "baseline_count": len(base)}, web_base_url, explanation)


def _turned(rule, rows: Sequence[Row], now: datetime, stances: Stances | None,
            web_base_url: str | None, themes: ThemeGrowth | None = None) -> list[Alert]:
    from monitor.alerts.rules import is_known_author

    w = rule.window
    out = []
    for r in rows:
        if not (now - w.window < _at(r) <= now) or r.get("author_id") is None:
            continue
        if r.get("sentiment") != "negative" or (r.get("sentiment_p") or 0) < w.min_probability:
            continue
        if stances is None or not is_known_author(stances(r), "advocate", w.min_past, w.min_share):
            continue
        who = r.get("author") or "unknown"
        start = now - w.window
        negative = [x for x in rows if x["brand"] == r["brand"] and x.get("sentiment") == "negative"]
        explanation = explain([x for x in negative if start < _at(x) <= now], [x for x in negative if _at(x) <= start],
                              brand=r["brand"], since=start, until=now,
                              baseline_since=start - TURNED_BASELINE * w.window, baseline_until=start,
                              scale=1 / TURNED_BASELINE, web_base_url=web_base_url, themes=themes)
        out.append(_alert(rule, f"{rule.name}:turned:{r['author_id']}:{r['id']}", now,
                          f"[{r['brand']}] {rule.name}: promoter {who} posted a negative mention",
                          f"{who}, until now a promoter of {r['brand']}, posted a negative mention "
                          f"({r['sentiment_p']:.0%}).", r["brand"], [r], {"author": who, "mention_id": r["id"]},
                          web_base_url, explanation))
    return out


def _source_silent(rule, rows: Sequence[Row], now: datetime, web_base_url: str | None) -> list[Alert]:
    w = rule.window
    by_source: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_source[r.get("source_key") or r["source"]].append(r)
    out = []
    for key, srs in sorted(by_source.items()):
        last = srs[-1]
        quiet = now - _at(last)
        had = sum(1 for r in srs if now - w.after - w.baseline < _at(r) <= now - w.after)
        if quiet < w.after or had < w.min_count:
            continue
        out.append(_alert(rule, f"{rule.name}:silent:{key}:{last['id']}", now,
                          f"[{last['brand']}] {rule.name}: no mentions from {key} for {human(quiet)}",
                          f"Source {key} has brought no mention for {human(quiet)} "
                          f"(it brought {had} in the {human(w.baseline)} before); "
                          "check its credentials, quota or query.", last["brand"], [],
                          {"source": key, "last_mention_at": last["created_at"], "baseline_count": had}, web_base_url))
    return out
