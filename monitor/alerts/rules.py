"""Alert rules: pure functions from (mention, classification) to alerts."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.records import Alert, Classification


def mention_matches(rule, mention: dict, c: Classification) -> bool:
    """Does one classified mention meet a per-mention rule's ``when``?"""
    w = rule.when
    if c.status != "ok":
        return False
    if w.brands and mention.get("brand") not in w.brands:
        return False
    if w.sources and mention.get("source") not in w.sources and mention.get("source_key") not in w.sources:
        return False
    if w.sentiment and (c.sentiment.label != w.sentiment or c.sentiment.confidence < w.min_probability):
        return False
    if w.advocacy and (c.advocacy.label != w.advocacy or c.advocacy.confidence < w.min_probability):
        return False
    if w.min_reach is not None and (mention.get("reach") or 0) < w.min_reach:
        return False
    return True


def describe(mention: dict, c: Classification) -> str:
    who = mention.get("author") or "unknown author"
    reach = mention.get("reach")
    reach_text = f" ({reach} {mention.get('reach_kind') or 'reach'})" if reach is not None else ""
    sent = f"{c.sentiment.label} {c.sentiment.confidence:.0%}"
    adv = f"{c.advocacy.label} {c.advocacy.confidence:.0%}" if c.advocacy.probabilities else "n/a"
    text = (mention.get("text") or "").strip()
    if len(text) > 500:
        text = text[:500] + "…"
    lines = [
        f"{who}{reach_text} on {mention.get('source')}",
        f"sentiment: {sent}; advocacy: {adv}",
        text,
    ]
    if mention.get("url"):
        lines.append(str(mention["url"]))
    return "\n".join(lines)


def alerts_for(rules: Iterable, mention: dict, c: Classification) -> list[Alert]:
    out = []
    for rule in rules:
        if mention_matches(rule, mention, c):
            out.append(
                Alert(
                    rule=rule.name,
                    key=f"{rule.name}:mention:{mention['id']}",
                    severity=rule.severity,
                    title=f"[{mention.get('brand')}] {rule.name}: {c.sentiment.label} mention by {mention.get('author') or 'unknown'}",
                    body=describe(mention, c),
                    brand=mention.get("brand"),
                    mention_ids=(mention["id"],),
                    data={"url": mention.get("url"), "sentiment": c.sentiment.probabilities,
                          "advocacy": c.advocacy.probabilities, "model": c.model},
                )
            )
    return out
