"""Authors -> explainable advocate and detractor scores; the NPS-style advocacy index.

Each mention gets a stance: promoter, passive or detractor. Its basis says where the
stance came from: ``corrected`` (a user's label), ``stars`` (a review's rating, the NPS
way: 5 promoter, 4 passive, 1-3 detractor), ``survey`` (an imported survey's 0-10 score:
9-10 promoter, 7-8 passive, 0-6 detractor) or ``text`` (the model's advocacy label,
'none' counting as passive). Unclassified mentions have no stance.

Per person (an author, or authors a user linked as one person) and brand, the stances
give counts, weeks, flips and two scores from five components, each 0..1:

    stance       count / (classified mentions + evidence_prior)
    volume       log(1 + count) / log(1 + volume_cap), capped at 1
    reach        log(1 + reach) / log(1 + reach_cap), capped at 1 (0 with no such mention)
    recency      0.5 ** (days since the latest such mention / half-life)
    consistency  weeks with such a mention / (active weeks + evidence_prior)

The two shares are shrunk by ``evidence_prior`` (2) imaginary passive mentions and weeks, so
one mention gives a share of 1/3, not 1: a score nears 100 only on repeated evidence (one
detractor mention scores about 45, below the default flag threshold of 50; three in three
weeks about 65). The explanation keeps the evidence count and where each stance came from
(``text``, ``stars``, ``survey`` or ``corrected``).

score = 100 * sum(weight * component) / sum(weights). The aggregates live in
``author_stats`` and ``advocacy_weekly`` and are brought up to date by ``refresh``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from typing import Any

from monitor.config import AdvocateSettings
from monitor.records import utcnow
from monitor.store import Store, iso, parse_iso
from monitor.store.rows import AuthorRow, StanceTuple, WeeklyRow

logger = logging.getLogger(__name__)

STANCE_OF_LABEL = {"promoter": "promoter", "detractor": "detractor", "none": "passive"}
COMPONENTS = ("stance", "volume", "reach", "recency", "consistency")
RESCORE_EVERY = timedelta(hours=6)
BASIS_TEXT = {"text": "the model", "stars": "stars", "corrected": "corrections"}
COMPONENT_TEXT = {
    "stance": "share of classified mentions that are {side}, counting {prior:g} extra passive ones "
              "so that one mention cannot make a full share",
    "volume": "number of {side} mentions (log scale, full at {cap})",
    "reach": "audience of the author (log scale, full at {reach_cap:,})",
    "recency": "how recent the latest {side} mention is (half-life {half_life} days)",
    "consistency": "share of active weeks with a {side} mention (counting {prior:g} extra weeks)",
}


def stars_stance(rating: int | None) -> str | None:
    """NPS treatment of a 1-5 star rating."""
    if rating is None or not 1 <= rating <= 5:
        return None
    return "promoter" if rating == 5 else "passive" if rating == 4 else "detractor"


def survey_stance(score: int | None) -> str | None:
    """NPS treatment of a 0-10 survey score."""
    if score is None or not 0 <= score <= 10:
        return None
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def stance_of(advocacy: str | None, kind: str | None, rating: int | None,
              corrected: bool, score: int | None = None) -> tuple[str | None, str | None]:
    """(stance, basis) of one mention: a user's correction, else a survey's score, else a
    review's stars, else the model."""
    if corrected and advocacy in STANCE_OF_LABEL:
        return STANCE_OF_LABEL[advocacy], "corrected"
    survey = survey_stance(score)
    if survey:
        return survey, "survey"
    if kind == "review":
        stars = stars_stance(rating)
        if stars:
            return stars, "stars"
    if advocacy in STANCE_OF_LABEL:
        return STANCE_OF_LABEL[advocacy], "text"
    return None, None


def week_of(created_at: str) -> str:
    d = date.fromisoformat(created_at[:10])
    return (d - timedelta(days=d.weekday())).isoformat()


# --------------------------------------------------------------------- per person


@dataclass
class Row:
    id: int
    author_id: int
    person_id: int
    brand: str
    source: str
    kind: str
    rating: int | None
    created_at: str
    advocacy: str | None
    sentiment: str | None
    corrected: bool
    score: int | None = None

    @classmethod
    def of(cls, t: StanceTuple) -> Row:
        """A row from the store's (id, author_id, person_id, ..., corrected, score) tuple."""
        return cls(*t[:10], corrected=bool(t[10]), score=t[11] if len(t) > 11 else None)

    @property
    def stance(self) -> tuple[str | None, str | None]:
        return stance_of(self.advocacy, self.kind, self.rating, self.corrected, self.score)


def person_stats(person_id: int, brand: str, rows: list[Row], info: Mapping[int, AuthorRow], now: datetime
                 ) -> dict[str, Any]:
    """Raw figures for one person and brand from their mentions (oldest first)."""
    counts = {"promoter": 0, "passive": 0, "detractor": 0}
    bases: dict[str, dict[str, int]] = {"promoter": {}, "detractor": {}}
    weeks: set[str] = set()
    p_weeks: set[str] = set()
    d_weeks: set[str] = set()
    sources: set[str] = set()
    last: dict[str, str | None] = {"promoter": None, "detractor": None}
    flips, prev, prev_at, last_flip = 0, None, None, None
    for r in rows:
        sources.add(r.source)
        week = week_of(r.created_at)
        weeks.add(week)
        stance, basis = r.stance
        if stance is None or basis is None:
            continue
        counts[stance] += 1
        if stance == "passive":
            continue
        bases[stance][basis] = bases[stance].get(basis, 0) + 1
        last[stance] = r.created_at
        (p_weeks if stance == "promoter" else d_weeks).add(week)
        if prev and stance != prev:
            flips += 1
            last_flip = (f"{prev}->{stance}", r.created_at, r.id, prev_at)
        prev, prev_at = stance, r.created_at
    rep: Mapping[str, Any] = info.get(person_id) or info.get(rows[0].author_id) or {}
    reaches = [reach for a in {r.author_id for r in rows} | {person_id}
               if a in info and (reach := info[a]["reach"]) is not None]
    return {
        "person_id": person_id, "brand": brand, "source": rep.get("source", rows[0].source),
        "handle": rep.get("handle") or str(person_id), "sources": ",".join(sorted(sources)),
        "mentions": len(rows), "promoters": counts["promoter"], "passives": counts["passive"],
        "detractors": counts["detractor"], "reach": max(reaches) if reaches else None,
        "first_at": rows[0].created_at, "last_at": rows[-1].created_at,
        "last_promoter_at": last["promoter"], "last_detractor_at": last["detractor"],
        "weeks_active": len(weeks), "promoter_weeks": len(p_weeks), "detractor_weeks": len(d_weeks),
        "stance": prev or ("passive" if counts["passive"] else "unclassified"),
        "flips": flips, "last_flip": last_flip[0] if last_flip else None,
        "last_flip_at": last_flip[1] if last_flip else None,
        "advocate_score": 0.0, "detractor_score": 0.0, "flag": None, "explain": "{}", "updated_at": iso(now),
        "_flip": last_flip, "_bases": bases,
    }


def components(stats: dict, side: str, cfg: AdvocateSettings, now: datetime) -> dict[str, float]:
    """The five component values (0..1) of one side ('promoter' or 'detractor')."""
    count = stats["promoters" if side == "promoter" else "detractors"]
    classified = stats["promoters"] + stats["passives"] + stats["detractors"]
    last = stats["last_promoter_at" if side == "promoter" else "last_detractor_at"]
    weeks = stats["promoter_weeks" if side == "promoter" else "detractor_weeks"]
    if not count:
        return dict.fromkeys(COMPONENTS, 0.0)
    age_days = max(0.0, (now - parse_iso(last)).total_seconds() / 86400) if last else math.inf
    half_life = cfg.recency_half_life.total_seconds() / 86400
    reach = stats.get("reach") or 0
    prior = cfg.evidence_prior
    return {
        "stance": count / (classified + prior),
        "volume": min(1.0, math.log1p(count) / math.log1p(cfg.volume_cap)),
        "reach": min(1.0, math.log1p(max(reach, 0)) / math.log1p(cfg.reach_cap)),
        "recency": 0.5 ** (age_days / half_life),
        "consistency": weeks / (stats["weeks_active"] + prior) if stats["weeks_active"] else 0.0,
    }


def score(values: dict[str, float], cfg: AdvocateSettings) -> float:
    weights = cfg.weights.model_dump()
    total = sum(weights.values()) or 1.0
    return round(100 * sum(weights[k] * values[k] for k in COMPONENTS) / total, 1)


def apply_scores(stats: dict, cfg: AdvocateSettings, now: datetime) -> dict:
    """Fill in both scores, the flag and the explanation (components and their points)."""
    weights = cfg.weights.model_dump()
    total = sum(weights.values()) or 1.0
    explain: dict = {}
    for side, key in (("promoter", "advocate"), ("detractor", "detractor")):
        values = components(stats, side, cfg, now)
        stats[f"{key}_score"] = score(values, cfg)
        explain[key] = {k: [round(values[k], 3), round(100 * weights[k] * values[k] / total, 1)] for k in COMPONENTS}
    explain["evidence"] = {"mentions": stats["promoters"] + stats["passives"] + stats["detractors"],
                           "prior": cfg.evidence_prior}
    old = json.loads(stats["explain"]) if stats.get("explain") else {}
    if "_bases" in stats:  # where each promoter / detractor stance came from: text, stars, corrected
        explain["basis"] = stats.pop("_bases")
    elif "basis" in old:
        explain["basis"] = old["basis"]
    if "_flip" in stats:
        flip = stats.pop("_flip")
        if flip:
            explain["flip"] = {"change": flip[0], "at": flip[1], "mention_id": flip[2], "previous_at": flip[3]}
    elif "flip" in old:
        explain["flip"] = old["flip"]
    # a promoter who turned detractor is not flagged advocate (and the reverse): flips show apart
    advocate = (stats["advocate_score"] >= cfg.advocate_min_score and stats["promoters"] >= cfg.advocate_min_mentions
                and stats["stance"] != "detractor")
    detractor = (stats["detractor_score"] >= cfg.detractor_min_score
                 and stats["detractors"] >= cfg.detractor_min_mentions and stats["stance"] != "promoter")
    if advocate and detractor:  # both qualify: the current stance decides
        advocate, detractor = stats["stance"] == "promoter", stats["stance"] == "detractor"
    stats["flag"] = "advocate" if advocate else "detractor" if detractor else None
    stats["explain"] = json.dumps(explain, separators=(",", ":"))
    return stats


# ------------------------------------------------------------------------ refresh


@dataclass
class RefreshResult:
    model: str | None
    full: bool
    weeks: int
    persons: int
    rescored: bool


def _rows_by_brand(rows: Iterable[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[r.brand].append(r)
    for v in out.values():
        v.sort(key=lambda r: (r.created_at, r.id))
    return out


def _stats_for(person: int, rows: list[Row], info: Mapping[int, AuthorRow], cfg: AdvocateSettings,
               now: datetime) -> list[dict[str, Any]]:
    return [apply_scores(person_stats(person, brand, br, info, now), cfg, now)
            for brand, br in _rows_by_brand(rows).items()]


def recompute_persons(store: Store, cfg: AdvocateSettings, ids: Iterable[int], model: str | None = None,
                      now: datetime | None = None) -> int:
    """Rebuild the stats of these persons (author ids; linked ones resolve to their person)."""
    now = now or store.now()
    model = model if model is not None else (cfg.model or store.advocacy.newest_model())
    ids = sorted(set(ids))
    for i in range(0, len(ids), 200):
        chunk = ids[i:i + 200]
        persons = {store.advocacy.person_of(a) for a in chunk}
        out: list[dict] = []
        for p in persons:
            rows = [Row.of(t) for t in store.advocacy.stance_rows_for(model, p)]
            if rows:
                info = store.advocacy.authors_info(sorted({r.author_id for r in rows} | {p}))
                out += _stats_for(p, rows, info, cfg, now)
        store.advocacy.replace_author_stats(out, clear_persons=set(chunk) | persons)
    return len(ids)


def _full_rebuild_authors(store: Store, cfg: AdvocateSettings, model: str | None, now: datetime) -> int:
    stamp = iso(now)
    linked: dict[int, list[Row]] = defaultdict(list)
    batch: list[dict] = []
    current: list[Row] = []
    persons = 0

    def flush_current():
        nonlocal current, persons
        if current:
            info = store.advocacy.authors_info([current[0].author_id])
            batch.extend(_stats_for(current[0].author_id, current, info, cfg, now))
            persons += 1
        current = []

    for t in store.advocacy.stance_rows_all(model):
        r = Row.of(t)
        if r.person_id != r.author_id or r.person_id in linked:
            linked[r.person_id].append(r)
            continue
        if current and current[0].author_id != r.author_id:
            flush_current()
            if len(batch) >= 5000:
                store.advocacy.replace_author_stats(batch)
                batch = []
        current.append(r)
    flush_current()
    for person, rows in linked.items():
        info = store.advocacy.authors_info(sorted({r.author_id for r in rows} | {person}))
        batch.extend(_stats_for(person, rows, info, cfg, now))
        persons += 1
    store.advocacy.replace_author_stats(batch)
    store.advocacy.delete_stats_before(stamp)
    return persons


def rescore_all(store: Store, cfg: AdvocateSettings, now: datetime) -> None:
    """Scores decay with time (recency): recompute them from the stored figures."""
    batch = []
    for stats in store.advocacy.all_author_stats():
        s = apply_scores(dict(stats), cfg, now)
        batch.append((s["advocate_score"], s["detractor_score"], s["flag"], s["explain"], s["brand"], s["person_id"]))
        if len(batch) >= 5000:
            store.advocacy.update_scores(batch)
            batch = []
    store.advocacy.update_scores(batch)


def refresh(store: Store, cfg: AdvocateSettings, *, full: bool = False, now: datetime | None = None) -> RefreshResult:
    """Bring author_stats and advocacy_weekly up to date with mentions, classifications
    and corrections. Incremental after the first run; full when the model changes."""
    now = now or store.now()
    model = cfg.model or store.advocacy.newest_model()
    settings_key = cfg.model_dump_json()
    old_model = store.advocacy.get_state("model")
    old_wm = store.advocacy.get_state("watermark")
    full = (full or old_wm is None or old_model != (model or "")
            or store.advocacy.get_state("settings") != settings_key)
    wm = store.advocacy.high_water()  # taken first: rows arriving meanwhile are caught next time
    if full:
        weeks = store.advocacy.rebuild_weekly(model)
        persons = _full_rebuild_authors(store, cfg, model, now)
    else:
        keys, authors = store.advocacy.changed_since(json.loads(old_wm or "{}"))
        weeks = store.advocacy.rebuild_weekly(model, keys) if keys else 0
        persons = recompute_persons(store, cfg, authors, model, now) if authors else 0
    rescored_at = store.advocacy.get_state("rescored_at")
    rescore = not full and (rescored_at is None or now - parse_iso(rescored_at) >= RESCORE_EVERY)
    if rescore:
        rescore_all(store, cfg, now)
    state = {"model": model or "", "watermark": json.dumps(wm), "refreshed_at": iso(now), "settings": settings_key}
    if full or rescore:
        state["rescored_at"] = iso(now)
    store.advocacy.set_state(state)
    if full or persons or weeks:
        logger.info("advocates refreshed (%s): %d week group(s), %d person(s)", "full" if full else "incremental",
                    weeks, persons)
    return RefreshResult(model, full, weeks, persons, rescore)


def refresh_mention(store: Store, cfg: AdvocateSettings, mention_id: int) -> None:
    """After a label correction: recompute just that mention's week and author (short writes)."""
    key = store.advocacy.mention_key(mention_id)
    if key is None:
        return
    brand, week, author_id = key
    model = store.advocacy.get_state("model") or cfg.model or store.advocacy.newest_model()
    store.advocacy.rebuild_weekly(model, [(brand, week)])
    if author_id is not None:
        recompute_persons(store, cfg, [author_id], model)


# ------------------------------------------------------------------- the index


def nps(promoters: float, passives: float, detractors: float, *, min_sample: int = 30,
        confidence: float = 0.95) -> dict:
    """(promoters - detractors) / classified * 100, with a normal-approximation interval on
    the difference of two shares of one multinomial (shares adjusted by +1 each, n by +3, so
    small samples never get a zero-width interval). ``value`` is None below ``min_sample``."""
    n = promoters + passives + detractors
    out: dict[str, Any] = {"n": int(n), "promoters": int(promoters), "passives": int(passives),
                           "detractors": int(detractors), "value": None, "low": None, "high": None,
                           "min_sample": min_sample}
    if n <= 0 or n < min_sample:
        return out
    value = (promoters - detractors) / n
    p, d = (promoters + 1) / (n + 3), (detractors + 1) / (n + 3)
    var = max(p + d - (p - d) ** 2, 0.0) / (n + 3)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(var)
    out.update(value=round(100 * value, 1), low=round(max(-100.0, 100 * (value - half)), 1),
               high=round(min(100.0, 100 * (value + half)), 1))
    return out


def index_series(rows: Iterable[WeeklyRow], cfg: AdvocateSettings, *, basis: str, signal: str | None = None,
                 key: Callable[[WeeklyRow], str] = lambda r: r["week"]) -> dict[str, dict[str, Any]]:
    """Advocacy index per key (week by default) from advocacy_weekly rows of one basis."""
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in rows:
        if r["basis"] != basis or (signal and r["signal"] != signal):
            continue
        a = acc[key(r)]
        a[0] += r["promoters"]
        a[1] += r["passives"]
        a[2] += r["detractors"]
    return {k: nps(*v, min_sample=cfg.index_min_sample, confidence=cfg.index_confidence)
            for k, v in sorted(acc.items())}


def author_flag(store: Store, source: str, handle: str, brand: str) -> str | None:
    """'advocate', 'detractor' or None for an author (for alert rules on known authors)."""
    return store.advocacy.author_flag(source, handle, brand)


def since_week(weeks: int, now: datetime | None = None) -> str:
    return week_of(iso((now or utcnow()).astimezone(UTC) - timedelta(weeks=weeks)))


def reasons(stats: Mapping[str, Any], kind: str, cfg: AdvocateSettings) -> list[dict]:
    """Why a person scores as they do (``kind``: advocate or detractor): each score component
    with its value, the points it adds, the fact behind it and what it means (the Advocates
    page and the weekly report)."""
    explain = json.loads(stats.get("explain") or "{}")
    side = "promoter" if kind == "advocate" else "detractor"
    count = stats["promoters"] if side == "promoter" else stats["detractors"]
    classified = stats["promoters"] + stats["passives"] + stats["detractors"]
    last = stats["last_promoter_at"] if side == "promoter" else stats["last_detractor_at"]
    weeks = stats["promoter_weeks"] if side == "promoter" else stats["detractor_weeks"]
    basis = explain.get("basis", {}).get(side) or {}
    # the model's label is the usual basis: name the basis when stars or corrections count
    from_ = "" if set(basis) <= {"text"} else ", ".join(
        f"{n} from {BASIS_TEXT.get(b, b)}" for b, n in sorted(basis.items()))
    facts = {
        "stance": f"{count} of {classified} classified" + (f" ({from_})" if from_ else ""),
        "volume": f"{count} {side}",
        "reach": f"{stats['reach']:,}" if stats.get("reach") is not None else "unknown",
        "recency": f"latest {last[:10]}" if last else "none",
        "consistency": f"{weeks} of {stats['weeks_active']} weeks",
    }
    params = {"side": side, "cap": cfg.volume_cap, "reach_cap": cfg.reach_cap, "prior": cfg.evidence_prior,
              "half_life": round(cfg.recency_half_life.total_seconds() / 86400)}
    out = []
    for name in COMPONENTS:
        value, points = explain.get(kind, {}).get(name, [0.0, 0.0])
        out.append({"name": name, "value": value, "points": points, "fact": facts[name],
                    "meaning": COMPONENT_TEXT[name].format(**params)})
    return out
