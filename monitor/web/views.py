"""What the pages and the JSON API show: plain dicts built from the read-only store."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from monitor import advocates
from monitor.config import Settings
from monitor.records import utcnow
from monitor.store import Store, parse_iso
from monitor.store.rows import Correction

PAGE = 50
TOPICS_FRESH = timedelta(minutes=5)  # a Topics view is reused this long
class Views:
    def __init__(self, reader: Store, settings: Settings, now=utcnow) -> None:
        self.db = reader
        self.settings = settings
        self.cfg = settings.advocates
        self.now = now
        self._topics: dict[tuple[str, int, str | None], tuple[Any, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ basics

    def model(self) -> str | None:
        return self.cfg.model or self.db.advocacy.get_state("model") or None

    def brands(self) -> list[str]:
        names = [b.name for b in self.settings.brands]
        return names + [b for b in self.db.advocacy.brands_in_data() if b not in names]

    def brand_with_data(self) -> str | None:
        """The brand to open on when none was chosen: the only brand with mentions, else None
        (all brands), so that the page never opens on an empty configured brand."""
        have = self.db.advocacy.brands_in_data()
        return have[0] if len(have) == 1 else None

    def refreshed_at(self) -> str | None:
        return self.db.advocacy.get_state("refreshed_at")

    # ---------------------------------------------------------------- overview

    def overview(self, brand: str | None, weeks: int = 26) -> dict[str, Any]:
        since = advocates.since_week(weeks, self.now())
        rows = self.db.advocacy.weekly(brand, since)
        text = [r for r in rows if r["basis"] == "text"]
        week_list = sorted({r["week"] for r in rows})
        per_week: dict[str, dict] = {w: defaultdict(int) for w in week_list}
        for r in text:
            _add(per_week[r["week"]], r, ("mentions", "classified", "positive", "neutral", "negative"))
        series: dict[str, Any] = {
            "weeks": week_list,
            "mentions": [per_week[w]["mentions"] for w in week_list],
            "positive": [per_week[w]["positive"] for w in week_list],
            "neutral": [per_week[w]["neutral"] for w in week_list],
            "negative": [per_week[w]["negative"] for w in week_list],
        }
        index: dict[str, dict[str, Any]] = {}
        pairs = [("text", "relationship"), ("text", "transactional"), ("stars", "transactional")]
        pairs += sorted({("survey", r["signal"]) for r in rows if r["basis"] == "survey"})  # only with imported scores
        for basis, signal in pairs:
            by_week = advocates.index_series(rows, self.cfg, basis=basis, signal=signal)
            index[f"{basis}:{signal}"] = {
                "label": index_label(basis, signal),
                "points": [by_week.get(w) for w in week_list],
                "total": advocates.index_series(rows, self.cfg, basis=basis, signal=signal,
                                                key=lambda r: "all").get("all"),
            }
        series["index"] = {k: [p["value"] if p else None for p in v["points"]] for k, v in index.items()}
        series["index_low"] = {k: [p["low"] if p else None for p in v["points"]] for k, v in index.items()}
        series["index_high"] = {k: [p["high"] if p else None for p in v["points"]] for k, v in index.items()}
        sources: dict[str, dict] = defaultdict(lambda: defaultdict(int))
        for r in text:
            _add(sources[r["source"]], r,
                 ("mentions", "classified", "promoters", "passives", "detractors", "negative", "positive"))
        top_sources = sorted(
            ({"source": k, **v, "index": advocates.nps(v["promoters"], v["passives"], v["detractors"],
                                                        min_sample=self.cfg.index_min_sample,
                                                        confidence=self.cfg.index_confidence)}
             for k, v in sources.items()), key=lambda s: -s["mentions"])[:10]
        totals = {k: sum(series[k]) for k in ("mentions", "positive", "neutral", "negative")}
        totals["classified"] = sum(per_week[w]["classified"] for w in week_list)
        return {
            "brand": brand, "weeks": weeks, "since": since, "series": series, "index": index,
            "top_sources": top_sources, "totals": totals,
            "alerts": self.db.alerts.recent(brand, 10),
            "top_advocates": self.authors("advocate", brand=brand, flag="advocate", limit=5),
            "top_detractors": self.authors("detractor", brand=brand, flag="detractor", limit=5),
            "min_sample": self.cfg.index_min_sample,
        }

    # ---------------------------------------------------------------- authors

    def authors(self, kind: str = "advocate", *, limit: int = PAGE, page: int = 1, **filters) -> list[dict]:
        rows = self.db.advocacy.list_authors(kind=kind, limit=limit, offset=(max(page, 1) - 1) * limit, **filters)
        return [{**r, "reasons": self.reasons(r, kind), "marks": sorted(r["marks"].split(",")) if r["marks"] else []}
                for r in rows]

    def reasons(self, stats: Mapping[str, Any], kind: str) -> list[dict]:
        """Each score component: its value, the points it adds, and what it means (advocates.reasons)."""
        return advocates.reasons(stats, kind, self.cfg)

    def author(self, person_id: int, brand: str | None = None) -> dict | None:
        person = self.db.advocacy.person_of(person_id)
        ids = self.db.advocacy.members(person)
        info = self.db.advocacy.authors_info(ids)
        if not info:
            return None
        stats = [{**s, "advocate_reasons": self.reasons(s, "advocate"),
                  "detractor_reasons": self.reasons(s, "detractor"),
                  "explain_data": json.loads(s["explain"] or "{}")} for s in self.db.advocacy.person_stats(person)]
        rows, total = self.db.advocacy.timeline(self.model(), person, brand)
        timeline = []
        for r in rows:
            stance, basis = advocates.stance_of(r["advocacy"], r["kind"], r["rating"], bool(r["corrected"]),
                                                r["score"])
            author = info.get(r["author_id"])
            timeline.append({**r, "stance": stance, "basis": basis, "handle": author["handle"] if author else None})
        marks = self.db.accounts.marks_of(person)
        return {"person_id": person, "identities": [info[i] for i in ids if i in info], "stats": stats,
                "brand": brand, "timeline": timeline, "total_mentions": total,
                "marks": marks, "mark_set": {(m["brand"], m["mark"]) for m in marks}}

    # ---------------------------------------------------------------- mentions

    def mentions(self, *, page: int = 1, limit: int = PAGE, **filters) -> list[dict]:
        rows = self.db.advocacy.search_mentions(self.model(), limit=limit, offset=(max(page, 1) - 1) * limit, **filters)
        out = []
        for r in rows:
            stance, basis = advocates.stance_of(r["advocacy"], r["kind"], r["rating"], bool(r["corrected"]),
                                                r["score"])
            out.append({**r, "stance": stance, "basis": basis})
        return out

    def alert(self, alert_id: int) -> dict | None:
        """One alert and the mentions it was raised for (those still listed)."""
        row = self.db.alerts.get(alert_id)
        if row is None:
            return None
        ids = row["mention_ids"]
        return {**row, "mentions": self.mentions(ids=ids, limit=max(len(ids), 1), relevance="all") if ids else []}

    def corrections(self, field: str | None = None, limit: int | None = None) -> list[Correction]:
        return self.db.accounts.corrections(field, limit)

    def ago(self, when: str | None) -> str:
        if not when:
            return "-"
        delta = self.now() - parse_iso(when)
        days = delta.days
        if days >= 1:
            return f"{days}d ago"
        hours = delta.seconds // 3600
        return f"{hours}h ago" if hours else "just now"

    # ------------------------------------------------------------------ themes

    def topics(self, brand: str, days: int, stance: str | None) -> dict[str, Any]:
        """The themes of ``brand``'s mentions of the last ``days`` days (monitor.topics), and
        each theme's mentions per week for the chart. Read only: a theme that continues a
        stored one (``monitor topics``, the daemon's daily themes job) shows its id, a new one
        none; ``stored`` says whether the brand has stored themes at all. Clustering takes
        seconds on a large brand: the same view is computed again only after ``TOPICS_FRESH``."""
        from monitor import topics
        from monitor.classify import current_model_name

        until = self.now()
        key = (brand, days, stance)
        cached = self._topics.get(key)
        if cached and timedelta(0) <= until - cached[0] < TOPICS_FRESH:
            return cached[1]
        model = topics.pick_model(self.db, brand, current_model_name(self.settings.classifier,
                                                                     self.settings.base_dir))
        report = topics.find_themes(self.db, brand, since=until - timedelta(days=days), until=until, model=model,
                                    stance=stance)
        weeks = sorted({w for t in report.themes for w in t.weeks})
        series = {"weeks": weeks, "themes": [
            {"id": t.id, "label": t.label, "counts": [t.weeks.get(w, 0) for w in weeks]} for t in report.themes]}
        data = {"report": report, "series": series,
                "stored": bool(model and self.db.themes.stored(brand, model))}
        self._topics[key] = (until, data)
        return data

    # ----------------------------------------------------------------- compare

    def compare(self, days: int) -> dict[str, Any]:
        """Share of voice of every brand over the last ``days`` days (monitor.share), its top
        themes from the Topics view (same cache), and the weekly series for the charts."""
        from monitor import share

        until = self.now()
        rivals = share.competitors(self.settings.brands)

        def themes(brand: str):
            return self.topics(brand, days, None)["report"]

        report = share.share_of_voice(self.db, self.brands(), self.cfg, since=until - timedelta(days=days),
                                      until=until, rivals=rivals, themes=themes)
        series = {"weeks": list(report.weeks), "brands": [
            {"brand": b.brand, "competitor": b.competitor, "mentions": [b.weeks.get(w, 0) for w in report.weeks],
             "share": shares} for b, shares in zip(report.brands, report.weekly_shares().values(), strict=True)]}
        return {"report": report, "series": series}


def _add(acc: dict[str, float], row: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for k in keys:
        acc[k] += row[k]


def index_label(basis: str, signal: str) -> str:
    who = "social mentions (relationship)" if signal == "relationship" else "reviews (transactional)"
    how = {"text": "text model", "survey": "survey scores (9-10 promoter, 7-8 passive, 0-6 detractor)"}.get(
        basis, "star ratings (5 promoter, 4 passive, 1-3 detractor)")
    return f"{who}, by {how}"


def format_when(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return parse_iso(value).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value
