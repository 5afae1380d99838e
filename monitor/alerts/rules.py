"""Per-mention alert rules: pure functions from (mention row, classification) to a match,
a noise-control key, a reason, and the alert message."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from monitor.config import SEVERITY_RANK, AlertRule, RuleWhen, Terms
from monitor.matching import Matcher
from monitor.records import Alert, Classification, LabelScore
from monitor.store.rows import ClassifiedMention

TEXT_LIMIT = 500
_QUESTION_OPENERS = re.compile(
    r"(?:^|[.!?\n]\s*)(?:how|why|what|when|where|which|who|can|could|does|do|is|are|will|would|should|anyone|any)"
    r"\b[^.!?\n]{0,300}\?", re.IGNORECASE)


def is_question(title: str | None, text: str | None) -> bool:
    """Does the mention ask something: a sentence that opens with a question word (how, why,
    can, does, anyone...) and ends in '?'. A '?' alone (a quoted title, 'lol?') is not enough."""
    return any(_QUESTION_OPENERS.search(part) for part in (title or "", text or "") if "?" in part)


def classification_of(row: ClassifiedMention) -> Classification:
    """The Classification stored on a row from ``store.alerts.classified()``."""
    return Classification(
        sentiment=LabelScore(row.get("sentiment") or "", row.get("sentiment_probs") or {}),
        advocacy=LabelScore(row.get("advocacy") or "", row.get("advocacy_probs") or {}),
        model=row.get("model") or "", uncertain=bool(row.get("uncertain")), lang=row.get("detected_lang"),
        status=row.get("status") or "ok",
    )


@lru_cache(maxsize=256)
def _matcher(terms: tuple[str, ...]) -> Matcher | None:
    return Matcher(Terms(include=list(terms))) if terms else None


def is_known_author(stances: dict[str, int], kind: str, min_mentions: int, min_share: float) -> bool:
    """An author is a known advocate (detractor) when enough of their earlier mentions
    were classified promoter (detractor)."""
    total = sum(stances.values())
    label = "promoter" if kind == "advocate" else "detractor"
    return total >= min_mentions and stances.get(label, 0) / total >= min_share


def waits_for_reach(when: RuleWhen, m: ClassifiedMention) -> bool:
    """Would the author's reach decide ``when`` while the mention has none yet?"""
    return bool(when.min_reach) and m.get("reach") is None


def mention_matches(when: RuleWhen, m: ClassifiedMention, c: Classification,
                    stances: Callable[[], dict[str, int]] | None = None, *, assume_reach: bool = False) -> bool:
    """Does one classified mention meet every condition of ``when``? ``stances`` gives the
    author's earlier advocacy labels (only called for ``known_author``). With
    ``assume_reach``, every condition but ``min_reach`` (a reach still to come). An unknown
    reach is below any ``min_reach``."""
    if c.status != "ok":
        return False
    if c.uncertain and not when.include_uncertain:
        return False
    if m.get("duplicate_of") and not when.include_duplicates:
        return False
    if when.brands and m.get("brand") not in when.brands:
        return False
    if when.sources and m.get("source") not in when.sources and m.get("source_key") not in when.sources:
        return False
    p_sent = when.min_sentiment_probability if when.min_sentiment_probability is not None else when.min_probability
    p_adv = when.min_advocacy_probability if when.min_advocacy_probability is not None else when.min_probability
    if when.sentiment and (c.sentiment.label not in when.sentiment or c.sentiment.confidence < p_sent):
        return False
    if when.advocacy and (c.advocacy.label not in when.advocacy or c.advocacy.confidence < p_adv):
        return False
    if when.min_reach is not None and not assume_reach and (m.get("reach") or 0) < when.min_reach:
        return False
    rating = m.get("rating")
    if when.min_rating is not None and (rating is None or rating < when.min_rating):
        return False
    if when.max_rating is not None and (rating is None or rating > when.max_rating):
        return False
    if when.languages:
        lang = (m.get("lang") or c.lang or "").lower().split("-")[0]
        if lang not in {x.lower().split("-")[0] for x in when.languages}:
            return False
    if when.question and not is_question(m.get("title"), m.get("text")):
        return False
    include, exclude = _matcher(tuple(when.terms)), _matcher(tuple(when.exclude_terms))
    if include is not None and include.match(m.get("title"), m.get("text")) is None:
        return False
    if exclude is not None and exclude.match(m.get("title"), m.get("text")) is not None:
        return False
    return not when.known_author or (stances is not None and is_known_author(
        stances(), when.known_author, when.known_author_min_mentions, when.known_author_min_share))


def reason(when: RuleWhen) -> str:
    """The rule's conditions in words, for the alert's "why"."""
    parts = []
    if when.brands:
        parts.append("brand " + "/".join(when.brands))
    if when.sources:
        parts.append("source " + "/".join(when.sources))
    p_sent = when.min_sentiment_probability if when.min_sentiment_probability is not None else when.min_probability
    p_adv = when.min_advocacy_probability if when.min_advocacy_probability is not None else when.min_probability
    if when.sentiment:
        parts.append("sentiment " + "/".join(when.sentiment) + (f" >= {p_sent:.0%}" if p_sent else ""))
    if when.advocacy:
        parts.append("advocacy " + "/".join(when.advocacy) + (f" >= {p_adv:.0%}" if p_adv else ""))
    if when.min_reach is not None:
        parts.append(f"reach >= {when.min_reach}")
    if when.min_rating is not None or when.max_rating is not None:
        parts.append(f"rating {when.min_rating or 1}-{when.max_rating or 5} stars")
    if when.terms:
        parts.append("terms " + ", ".join(when.terms))
    if when.exclude_terms:
        parts.append("not " + ", ".join(when.exclude_terms))
    if when.languages:
        parts.append("language " + "/".join(when.languages))
    if when.known_author:
        parts.append(f"known {when.known_author}")
    if when.question:
        parts.append("a question")
    return "; ".join(parts) or "every classified mention"


def rule_key(parts: Iterable[str], rule_name: str, m: ClassifiedMention) -> str:
    """The noise-control key of a mention for a rule: e.g. ['brand', 'author'] -> 'brand=Acme|author=bob'."""
    values = {"rule": rule_name, "brand": m.get("brand") or "", "source": m.get("source_key") or m.get("source") or "",
              "author": str(m.get("author_id") or m.get("author") or "")}
    return "|".join(f"{p}={values[p]}" for p in parts)


def web_link(base: str | None, mention_id: int) -> str | None:
    return f"{base}/mentions/{mention_id}" if base else None


def summary(m: ClassifiedMention, c: Classification, web_base_url: str | None = None) -> dict[str, Any]:
    """What an alert carries about one mention (also the JSON webhook's ``mentions`` item)."""
    text = (m.get("text") or "").strip()
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT] + "…"
    return {
        # the source as the mentions table names it (reddit); the job that collected it apart (Acme:reddit)
        "id": m["id"], "brand": m.get("brand"), "source": m.get("source") or m.get("source_key"),
        "source_key": m.get("source_key"),
        "author": m.get("author"), "reach": m.get("reach"), "reach_kind": m.get("reach_kind"),
        "rating": m.get("rating"), "title": m.get("title"), "text": text, "url": m.get("url"),
        "web_url": web_link(web_base_url, m["id"]), "created_at": m.get("created_at"),
        "author_url": f"{web_base_url}/authors/{m['author_id']}" if web_base_url and m.get("author_id") else None,
        "sentiment": c.sentiment.label, "sentiment_p": round(c.sentiment.confidence, 4),
        "sentiment_probs": c.sentiment.probabilities,
        "advocacy": c.advocacy.label, "advocacy_p": round(c.advocacy.confidence, 4),
        "advocacy_probs": c.advocacy.probabilities, "model": c.model,
    }


def describe(s: dict[str, Any]) -> str:
    """Plain-text lines for one mention summary."""
    who = s.get("author") or "unknown author"
    reach = f" ({s['reach']} {s.get('reach_kind') or 'reach'})" if s.get("reach") is not None else ""
    stars = f", {s['rating']} stars" if s.get("rating") else ""
    lines = [
        f"{who}{reach} on {s.get('source')}{stars}",
        f"sentiment: {s['sentiment']} {s['sentiment_p']:.0%}; advocacy: "
        + (f"{s['advocacy']} {s['advocacy_p']:.0%}" if s.get("advocacy") else "n/a"),
        s.get("text") or "",
    ]
    if s.get("url"):
        lines.append(f"source: {s['url']}")
    if s.get("web_url"):
        lines.append(f"monitor: {s['web_url']}")
    if s.get("author_url"):
        lines.append(f"author: {s['author_url']}")
    return "\n".join(lines)


def what_fired(rules: Sequence[AlertRule], m: ClassifiedMention, c: Classification) -> str:
    """What the matched rules saw in the mention, in their words: 'detractor, negative mention',
    '1-star review', 'known detractor mention'."""
    words: list[str] = []
    for rule in rules:
        w = rule.when
        found = [c.advocacy.label if w.advocacy else None, c.sentiment.label if w.sentiment else None,
                 f"{m.get('rating')}-star" if (w.min_rating or w.max_rating) and m.get("rating") else None,
                 f"known {w.known_author}" if w.known_author else None]
        words += [x for x in found if x and x not in words]
    noun = "review" if m.get("kind") == "review" else "mention"
    return f"{', '.join(words)} {noun}" if words else noun


def mention_alert(rule: AlertRule, m: ClassifiedMention, c: Classification, *, web_base_url: str | None = None,
                  suppressed: int = 0, also: Sequence[tuple[AlertRule, int]] = ()) -> Alert:
    """The alert of ``rule`` on one mention. ``also``: the other rules that matched it for the
    same channels (with their cooldown's suppressed counts): one alert names them all."""
    s = summary(m, c, web_base_url)
    fired = [(rule, suppressed), *also]
    why = reason(rule.when)
    if also:
        body = "".join(f"Rule {r.name} ({r.severity}) matched: {reason(r.when)}\n" for r, _ in fired)
    else:
        body = f"Rule {rule.name} matched: {why}\n"
    body += describe(s)
    for r, n in fired:
        if n:
            body += (f"\n({n} similar match(es) were held back by the cooldown of {r.name} since its previous alert)"
                     if also else f"\n({n} similar match(es) were held back by the cooldown since the previous alert)")
    names = ", ".join(r.name for r, _ in fired)
    return Alert(
        rule=rule.name, key=f"{rule.name}:mention:{m['id']}", severity=rule.severity,
        title=f"[{m.get('brand')}] {what_fired([r for r, _ in fired], m, c)} by {m.get('author') or 'unknown'} "
              f"on {s['source']} ({names})",
        body=body, brand=m.get("brand"), mention_ids=(m["id"],),
        data={"kind": "mention", "reason": why, "rules": [r.name for r, _ in fired], "count": 1,
              "suppressed": suppressed, "mentions": [s], "url": m.get("url"), "web_url": s["web_url"],
              "sentiment": c.sentiment.probabilities, "advocacy": c.advocacy.probabilities, "model": c.model},
    )


def mention_alerts(fired: Sequence[tuple[AlertRule, int]], m: ClassifiedMention, c: Classification,
                   channels_for: Mapping[str, Sequence[str]], *, web_base_url: str | None = None
                   ) -> list[tuple[Alert, list[str]]]:
    """The alerts for the rules that fired on one mention (each with its suppressed count), with
    the channels each goes to. A channel gets one alert however many of its rules matched: that of
    the most severe (the first configured among equals), naming every rule that matched. Rules
    that fired without a channel are named too; with no channel at all, one alert is still kept."""
    if not fired:
        return []
    order = {r.name: i for i, (r, _) in enumerate(fired)}

    def rank(item: tuple[AlertRule, int]) -> tuple[int, int]:
        return -SEVERITY_RANK[item[0].severity], order[item[0].name]

    by_lead: dict[str, list[str]] = {}
    for channel in dict.fromkeys(ch for r, _ in fired for ch in channels_for.get(r.name, [])):
        lead = min((f for f in fired if channel in channels_for.get(f[0].name, [])), key=rank)
        by_lead.setdefault(lead[0].name, []).append(channel)
    if not by_lead:
        by_lead[min(fired, key=rank)[0].name] = []
    out = []
    for name, channels in by_lead.items():
        lead = next(f for f in fired if f[0].name == name)
        others = sorted((f for f in fired if f[0].name != name), key=rank)
        out.append((mention_alert(lead[0], m, c, web_base_url=web_base_url, suppressed=lead[1], also=others),
                    channels))
    return out


def batch_alert(rule: AlertRule, kind: str, key: str, items: Sequence[tuple[ClassifiedMention, Classification]], *,
                examples: int,
                web_base_url: str | None = None, what: str = "") -> Alert:
    """One alert for many matches (a group or a digest): the count and the top examples
    (highest reach first, then the most confident)."""
    ranked = sorted(items, key=lambda mc: (-(mc[0].get("reach") or 0), -mc[1].sentiment.confidence, mc[0]["id"]))
    top = [summary(m, c, web_base_url) for m, c in ranked[:examples]]
    brands = sorted({m.get("brand") or "" for m, _ in items})
    why = reason(rule.when)
    body = f"{what or f'{len(items)} mention(s) matched rule {rule.name}'}: {why}\n\n" + "\n\n".join(
        describe(s) for s in top)
    if len(items) > len(top):
        body += f"\n\n... and {len(items) - len(top)} more"
    return Alert(
        rule=rule.name, key=key, severity=rule.severity,
        title=f"[{', '.join(brands)}] {rule.name}: {len(items)} mention(s) ({kind})", body=body,
        brand=brands[0] if len(brands) == 1 else None, mention_ids=tuple(m["id"] for m, _ in items),
        data={"kind": kind, "reason": why, "count": len(items), "mentions": top,
              "web_url": web_base_url and f"{web_base_url}/mentions"},
    )
