"""Why a windowed alert fired: what grew in the alert's window against its baseline.

``explain`` is pure (rows in, a dict out), like the rules in ``windows``: the terms, sources
and authors whose mentions in the window exceed what the baseline window leads one to expect
(the baseline's count times ``scale``, the ratio of the two windows' lengths or volumes), a
few example mentions, and a link to the Mentions page filtered to the window. ``theme_growth``
adds the themes (``monitor topics``'s stored themes, each mention counted in the theme whose
centroid is nearest its sentence vector); it reads the store, so the engine and the backtest
pass it in as ``themes``.

Scraped text (terms, handles, source keys, example texts) leaves here without control or
format characters (``topics.clean_label``) and as plain text: every channel escapes it its
own way, as it does the rest of an alert (chat pings neutralised, e-mail plain text, HTML
pages autoescaped, webhook JSON encoded).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from monitor.store.rows import ClassifiedMention
from monitor.topics import clean_label

if TYPE_CHECKING:
    from monitor.store import Store

Row = ClassifiedMention
# (brand, window start, window end, baseline start, baseline end, scale, mention ids or None) -> themes that grew
ThemeGrowth = Callable[[str, datetime, datetime, datetime, datetime, float, Collection[int] | None], list[dict]]

TOP = 5  # terms, sources, authors named at most
TOP_THEMES = 3
EXAMPLES = 3
MIN_COUNT = 2  # a term, source or author needs this many mentions in the window to be named
MIN_LIFT = 1.5  # ... and this many times what the baseline leads one to expect
_WORD = re.compile(r"[^\W\d_][\w'-]*[^\W_]", re.UNICODE)


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | {"https", "http", "www", "com", "amp", "just", "like", "really"}


def terms_of(row: Row, exclude: set[str], stop: frozenset[str]) -> set[str]:
    """The distinct words of a mention (title and text), lower case, without stop words and
    the brand's own name (any of its words, possessive or compound)."""
    text = f"{row.get('title') or ''} {row.get('text') or ''}".casefold()
    out = set()
    for w in _WORD.findall(text):
        base = w.removesuffix("'s").removesuffix("\u2019s")
        if len(base) < 3 or base in stop or base in exclude or any(len(e) >= 3 and base.startswith(e)
                                                                    for e in exclude):
            continue
        out.add(base)
    return out


def grown(current: Counter[str], baseline: Counter[str], scale: float, *, top: int = TOP,
          min_count: int = MIN_COUNT) -> list[dict[str, Any]]:
    """Keys counted at least ``min_count`` times now and ``MIN_LIFT`` times more than expected
    (baseline x ``scale``), the largest excess first: {name, count, expected, lift}."""
    out: list[dict[str, Any]] = []
    for key, n in current.items():
        expected = baseline.get(key, 0) * scale
        lift = (n + 1) / (expected + 1)
        if n >= min_count and lift >= MIN_LIFT:
            out.append({"name": key, "count": n, "expected": round(expected, 1), "lift": round(lift, 1)})
    out.sort(key=lambda d: (-(d["count"] - d["expected"]), -d["count"], d["name"]))
    return out[:top]


def window_link(web_base_url: str | None, brand: str | None, since: datetime, until: datetime) -> str | None:
    """The Mentions page filtered to a brand and a window."""
    if not web_base_url:
        return None
    params = {"brand": brand or "", "since": since.isoformat(timespec="seconds"),
              "until": until.isoformat(timespec="seconds")}
    return f"{web_base_url}/mentions?" + urlencode({k: v for k, v in params.items() if v})


def explain(current: Sequence[Row], baseline: Sequence[Row], *, brand: str | None, since: datetime, until: datetime,
            baseline_since: datetime, baseline_until: datetime, scale: float, web_base_url: str | None = None,
            themes: ThemeGrowth | None = None, min_authors: int = MIN_COUNT) -> dict[str, Any]:
    """What grew in ``current`` (the alert's window [since, until]) against ``baseline``
    ([baseline_since, baseline_until], expected counts = baseline counts x ``scale``)."""
    stop = _stop_words()
    exclude = {w.casefold() for w in re.findall(r"\w+", brand or "")}
    cur_terms = [terms_of(r, exclude, stop) for r in current]
    term_counts: Counter[str] = Counter(t for ts in cur_terms for t in ts)
    base_terms: Counter[str] = Counter(t for r in baseline for t in terms_of(r, exclude, stop))
    terms = grown(term_counts, base_terms, scale)

    def key_counts(rows: Iterable[Row], field: str) -> Counter[str]:
        return Counter(clean_label(str(r.get(field) or (r.get("source") if field == "source_key" else "") or ""), 60)
                       for r in rows if r.get(field) or field == "source_key")

    sources = grown(key_counts(current, "source_key"), key_counts(baseline, "source_key"), scale)
    authors = grown(key_counts(current, "author"), key_counts(baseline, "author"), scale, min_count=min_authors)
    for t in terms:
        t["name"] = clean_label(t["name"], 60)
    theme_list: list[dict] = []
    if themes is not None and brand:
        try:
            theme_list = themes(brand, since, until, baseline_since, baseline_until, scale,
                                {r["id"] for r in current})
        except Exception:  # an explanation never stops an alert
            import logging

            logging.getLogger(__name__).warning("themes of the %s alert window could not be read", brand,
                                                exc_info=True)
    top_terms = {t["name"] for t in terms[:2]}
    picked = [r for r, ts in zip(current, cur_terms, strict=True) if ts & top_terms] or list(current)
    examples = []
    seen: set[str] = set()
    for r in sorted(picked, key=lambda r: r["created_at"], reverse=True):
        text = clean_label(r.get("text") or r.get("title") or "", 200)
        if text in seen:
            continue
        seen.add(text)
        examples.append({"id": r["id"], "author": clean_label(r.get("author") or "", 60) or None,
                         "source": clean_label(r.get("source_key") or r.get("source") or "", 60), "text": text,
                         "url": r.get("url"),
                         "web_url": f"{web_base_url}/mentions/{r['id']}" if web_base_url else None})
        if len(examples) == EXAMPLES:
            break
    return {"window": [since.isoformat(), until.isoformat()],
            "baseline": [baseline_since.isoformat(), baseline_until.isoformat()], "scale": round(scale, 4),
            "count": len(current), "baseline_count": len(baseline), "themes": theme_list, "terms": terms,
            "sources": sources, "authors": authors, "examples": examples,
            "web_url": window_link(web_base_url, brand, since, until)}


def _items(items: list[dict]) -> str:
    return ", ".join(f"{i['name']} ({i['count']}, expected {i['expected']:g})" for i in items)


def explanation_text(e: dict[str, Any]) -> str:
    """Plain-text lines for an alert body and the backtest."""
    lines = [f"Why (against the baseline {e['baseline'][0][:16]} .. {e['baseline'][1][:16]}, scaled to this window):"]
    named = False
    for key, word in (("themes", "themes"), ("terms", "terms"), ("sources", "sources"), ("authors", "authors")):
        if e.get(key):
            lines.append(f"- {word} that grew: {_items(e[key])}")
            named = True
    if not named:
        lines.append("- nothing stands out: no theme, term, source or author grew on its own")
    if e.get("examples"):
        lines.append("Examples:")
        lines += [f"- {x['author'] or 'unknown'} on {x['source']}: {x['text']}" for x in e["examples"]]
    if e.get("web_url"):
        lines.append(f"These mentions: {e['web_url']}")
    return "\n".join(lines)


def theme_growth(store: Store, brand: str, since: datetime, until: datetime, baseline_since: datetime,
                 baseline_until: datetime, scale: float, ids: Collection[int] | None = None,
                 limit: int = 20_000) -> list[dict]:
    """The stored themes (``monitor topics``) that grew in [since, until) against the baseline:
    each mention with a sentence vector counted in its nearest theme. No stored themes or no
    vectors: an empty list."""
    from monitor.topics import assign
    from monitor.vectors import unpack

    for m in store.themes.vector_models(brand):
        stored = store.themes.stored(brand, m["model"])
        if stored:
            model = m["model"]
            break
    else:
        return []
    try:
        centroids = unpack([t["centroid"] for t in stored])
        cur = [r for r in store.themes.vectors(brand, model, since, until, limit=limit)
               if ids is None or r["id"] in ids]
        base = store.themes.vectors(brand, model, baseline_since, baseline_until, limit=limit)
        dim = centroids.shape[1]
        cur_labels: list[int] = (assign(unpack([r["embedding"] for r in cur], dim=dim), centroids).tolist()
                                 if cur else [])
        base_labels: list[int] = (assign(unpack([r["embedding"] for r in base], dim=dim), centroids).tolist()
                                  if base else [])
    except ValueError:  # vectors of another size than the centroids
        return []
    names = [clean_label(t["label"] or f"theme {t['id']}", 80) for t in stored]
    found = grown(Counter(names[int(i)] for i in cur_labels), Counter(names[int(i)] for i in base_labels), scale,
                  top=TOP_THEMES)
    ids_by_name = {n: t["id"] for n, t in zip(names, stored, strict=True)}
    return [{**f, "id": ids_by_name.get(f["name"])} for f in found]
