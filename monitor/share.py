"""Share of voice: each brand's part of all brands' mentions, side by side and week by week
(``monitor share``, the Compare page).

Read from the weekly aggregates the overview reads (``advocacy_weekly``, which also keeps the
counts of mentions deleted by retention), so a period is whole ISO weeks: from the Monday of
the week ``since`` falls in. Per brand: its mentions and share of all brands' mentions, its
sentiment mix among the classified ones, its advocacy index with the interval
(``advocates.nps``, social mentions by the text model, as on the overview) and its top themes
(``monitor.topics``, found by the caller and passed in). Brands marked ``competitor: true``
in the config are someone else's. A brand without mentions, or no mentions at all, says
"not enough data" instead of a share of nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor import advocates

if TYPE_CHECKING:
    from monitor.config import AdvocateSettings
    from monitor.store import Store
    from monitor.topics import TopicsReport

TOP_THEMES = 3
SENTIMENTS = ("positive", "neutral", "negative")
INDEX_SIGNAL = "relationship"  # the index of social mentions (reviews are scored by their stars on the overview)


@dataclass(frozen=True)
class BrandShare:
    brand: str
    competitor: bool
    mentions: int
    share: float | None  # of all brands' mentions in the period; None: no mentions at all
    sentiment: dict[str, float] | None  # share of each label among the classified; None: none classified
    classified: int
    index: dict[str, Any]  # advocates.nps: value, low, high (None under the minimum sample), n
    themes: tuple[str, ...] = ()  # labels of the largest themes
    themes_note: str | None = None  # why there are none
    weeks: dict[str, int] = field(default_factory=dict)  # Monday -> mentions
    note: str | None = None  # "not enough data" when the brand has no mentions in the period


@dataclass(frozen=True)
class ShareReport:
    since: str  # Monday of the first week (YYYY-MM-DD)
    until: datetime
    total: int
    brands: tuple[BrandShare, ...]
    weeks: tuple[str, ...]
    min_sample: int
    note: str | None = None  # no mentions of any brand

    def weekly_shares(self) -> dict[str, list[float | None]]:
        """brand -> its share of each week's mentions (None: no brand had any that week)."""
        totals = [sum(b.weeks.get(w, 0) for b in self.brands) for w in self.weeks]
        return {b.brand: [round(b.weeks.get(w, 0) / t, 4) if t else None for w, t in zip(self.weeks, totals,
                                                                                         strict=True)]
                for b in self.brands}

    def as_dict(self) -> dict[str, Any]:
        shares = self.weekly_shares()
        return {
            "since": self.since, "until": self.until.isoformat(), "total": self.total, "note": self.note,
            "min_sample": self.min_sample, "weeks": list(self.weeks),
            "brands": [{"brand": b.brand, "competitor": b.competitor, "mentions": b.mentions,
                        "share": None if b.share is None else round(b.share, 4), "classified": b.classified,
                        "sentiment": b.sentiment, "index": b.index, "themes": list(b.themes),
                        "themes_note": b.themes_note, "note": b.note,
                        "weekly": {"mentions": [b.weeks.get(w, 0) for w in self.weeks], "share": shares[b.brand]}}
                       for b in self.brands],
        }


def competitors(brands: Iterable[Any]) -> set[str]:
    """The names of the configured brands marked ``competitor: true``."""
    return {b.name for b in brands if getattr(b, "competitor", False)}


def share_of_voice(store: Store, brands: Sequence[str], cfg: AdvocateSettings, *, since: datetime, until: datetime,
                   rivals: Collection[str] = (),
                   themes: Callable[[str], TopicsReport | None] | None = None) -> ShareReport:
    """The share of voice of ``brands`` (own brands first, then ``rivals``, each in the order
    given) over the whole weeks from the one ``since`` falls in to the one ``until`` ends in. ``themes(brand)``: that
    brand's themes of the period (None or not given: no themes)."""
    start = advocates.week_of(since.isoformat())
    last = advocates.week_of((until - timedelta(microseconds=1)).isoformat())  # the week ``until`` ends
    rows = [r for r in store.advocacy.weekly(None, start) if r["brand"] in set(brands) and r["week"] <= last]
    text = [r for r in rows if r["basis"] == "text"]
    total = int(sum(r["mentions"] for r in text))
    weeks = tuple(sorted({r["week"] for r in text}))
    ordered = [b for b in brands if b not in rivals] + [b for b in brands if b in rivals]
    out: list[BrandShare] = []
    for brand in ordered:
        mine = [r for r in text if r["brand"] == brand]
        mentions = int(sum(r["mentions"] for r in mine))
        counts = {s: sum(r[s] for r in mine) for s in SENTIMENTS}  # type: ignore[literal-required]
        judged = sum(counts.values())
        per_week: dict[str, int] = defaultdict(int)
        for r in mine:
            per_week[r["week"]] += int(r["mentions"])
        index = advocates.index_series(mine, cfg, basis="text", signal=INDEX_SIGNAL, key=lambda r: "all").get(
            "all") or advocates.nps(0, 0, 0, min_sample=cfg.index_min_sample, confidence=cfg.index_confidence)
        note = None
        if mentions == 0:
            note = f"not enough data: no mentions of {brand} since {start}" + (
                " (is it configured with sources, and collected?)" if brand in rivals else "")
        labels: tuple[str, ...] = ()
        themes_note = None
        if mentions and themes is not None:
            report = themes(brand)
            if report is not None:
                labels = tuple(t.label for t in sorted(report.themes, key=lambda t: -t.size)[:TOP_THEMES])
                themes_note = None if labels else report.note
        out.append(BrandShare(
            brand=brand, competitor=brand in rivals, mentions=mentions, share=mentions / total if total else None,
            sentiment={s: round(counts[s] / judged, 4) for s in SENTIMENTS} if judged else None,
            classified=int(judged), index=index, themes=labels, themes_note=themes_note,
            weeks=dict(sorted(per_week.items())), note=note))
    report_note = None
    if not brands:
        report_note = "not enough data: no brands to compare"
    elif total == 0:
        report_note = f"not enough data: no mentions of any brand since {start}"
    return ShareReport(since=start, until=until, total=total, brands=tuple(out), weeks=weeks,
                       min_sample=cfg.index_min_sample, note=report_note)
