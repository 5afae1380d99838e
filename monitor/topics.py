"""Themes: what a brand's mentions are about, from the sentence vectors kept with their
classifications (``monitor.vectors``), so no second model pass.

``find_themes`` reads one brand's vectors in a window (and the previous window of the same
length), clusters them, labels each cluster by its distinctive terms and matches it to
the themes found before, so that a theme that persists keeps its id.

* Clustering: k-means (scikit-learn's KMeans, k-means++ with a fixed seed) on unit
  vectors, k growing with the number of mentions (``choose_k``), fitted on a sample of at
  most ``FIT_SAMPLE`` of them; every mention then goes to its nearest centroid. Clusters
  whose centroids are near-parallel (cosine >= ``MERGE_AT``) are one theme; clusters
  under ``min_size`` are left out as "other".
* Labels: c-TF-IDF (each cluster's texts as one document, term weight against the other
  clusters, as BERTopic does), the brand's own name left out.
* Stability: the new centroids are matched one-to-one to the stored ones, most similar
  pair first; a pair at ``MATCH_AT`` cosine or more keeps the stored id.

Too little to cluster (under ``MIN_MENTIONS`` mentions, texts that are nearly all the
same, everything in one theme) gives a report with no themes and ``note`` saying why.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.textutil import mention_text
from monitor.vectors import normalise, pack, unpack

if TYPE_CHECKING:
    from monitor.store import Store
    from monitor.store.themes import VectorMention

MIN_MENTIONS = 20  # fewer mentions in the window: not enough data
MIN_DISTINCT = 10  # fewer different texts (duplicates, copy-paste campaigns): not enough data
MAX_K = 12
FIT_SAMPLE = 5_000  # vectors the clustering is fitted on; the rest are assigned to the nearest centroid
MAX_MENTIONS = 200_000  # newest mentions read per window
MERGE_AT = 0.92  # centroid cosine at which two clusters are one theme
MATCH_AT = 0.80  # centroid cosine at which a cluster continues a stored theme
GIANT_SHARE = 0.9  # one theme holding this share of the mentions: no distinct themes
LABEL_TERMS = 4
LABEL_DOCS = 1_000  # texts per cluster read for its label
EXAMPLES = 3
SENTIMENTS = ("positive", "neutral", "negative")
STANCES = ("promoter", "none", "detractor")


@dataclass(frozen=True)
class Example:
    id: int
    created_at: str
    text: str
    url: str | None
    sentiment: str | None
    advocacy: str | None


@dataclass(frozen=True)
class Theme:
    id: int
    label: str
    terms: tuple[str, ...]
    size: int
    share: float  # of the mentions in the window
    previous: int  # mentions of the previous window nearest to this theme
    sentiment: dict[str, float]  # share of each label among the judged mentions
    advocacy: dict[str, float]
    examples: tuple[Example, ...]
    weeks: dict[str, int] = field(default_factory=dict)  # Monday (YYYY-MM-DD) -> mentions

    @property
    def change(self) -> float | None:
        """Relative change against the previous window (None: nothing then)."""
        return (self.size - self.previous) / self.previous if self.previous else None


@dataclass(frozen=True)
class TopicsReport:
    brand: str
    model: str | None
    since: datetime
    until: datetime
    stance: str | None
    mentions: int  # in the window, with a vector
    themes: tuple[Theme, ...] = ()
    other: int = 0  # mentions in no theme (small clusters)
    note: str | None = None  # why there are no themes

    def as_dict(self) -> dict[str, Any]:
        return {
            "brand": self.brand, "model": self.model, "since": self.since.isoformat(),
            "until": self.until.isoformat(), "stance": self.stance, "mentions": self.mentions,
            "other": self.other, "note": self.note,
            "themes": [{"id": t.id, "label": t.label, "terms": list(t.terms), "size": t.size,
                        "share": round(t.share, 4), "previous": t.previous,
                        "change": None if t.change is None else round(t.change, 4),
                        "sentiment": t.sentiment, "advocacy": t.advocacy, "weeks": t.weeks,
                        "examples": [vars(e) for e in t.examples]} for t in self.themes],
        }


# ----------------------------------------------------------------------------- pieces


def choose_k(n: int) -> int:
    """Clusters to look for among n mentions: about sqrt(n/10), 2..MAX_K."""
    return max(2, min(MAX_K, round(math.sqrt(n / 10))))


def cluster(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(unit centroids (m, dim), each row's cluster) for unit ``vectors``; near-parallel
    centroids merged, so m <= k. Deterministic for the same input."""
    from sklearn.cluster import KMeans

    n = len(vectors)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    fit = vectors if n <= FIT_SAMPLE else vectors[np.sort(rng.choice(n, FIT_SAMPLE, replace=False))]
    km = KMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=100)
    with warnings.catch_warnings():  # fewer distinct points than k (many duplicates): fewer clusters, merged below
        warnings.simplefilter("ignore")
        km.fit(fit)
    centroids = normalise(km.cluster_centers_.astype(np.float32))
    centroids = _merge(centroids)
    labels = assign(vectors, centroids)
    # the centroid of what each cluster holds now (after merging), dropping empty ones
    keep = [c for c in range(len(centroids)) if (labels == c).any()]
    centroids = normalise(np.stack([vectors[labels == c].mean(axis=0) for c in keep]))
    return centroids, assign(vectors, centroids)


def _merge(centroids: np.ndarray) -> np.ndarray:
    """Greedy: a centroid within MERGE_AT of an earlier kept one joins it."""
    groups: list[list[int]] = []
    for i in range(len(centroids)):
        for g in groups:
            if float(centroids[g[0]] @ centroids[i]) >= MERGE_AT:
                g.append(i)
                break
        else:
            groups.append([i])
    return normalise(np.stack([centroids[g].mean(axis=0) for g in groups]))


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray((vectors @ centroids.T).argmax(axis=1), dtype=np.int64)


def match(new: np.ndarray, old: np.ndarray, threshold: float = MATCH_AT) -> dict[int, int]:
    """{new index: old index}: one-to-one pairs at ``threshold`` cosine or more, the most
    similar pair first (greedy; a dozen themes a side)."""
    if len(new) == 0 or len(old) == 0:
        return {}
    sims = new @ old.T
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for flat in np.argsort(-sims, axis=None, kind="stable"):
        r, c = divmod(int(flat), sims.shape[1])
        if sims[r, c] < threshold:
            break
        if r not in pairs and c not in taken:
            pairs[r] = c
            taken.add(c)
    return pairs


_WORD = r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b"  # words of 2+ characters starting with a letter


def label_terms(docs_by_cluster: list[list[str]], exclude: set[str], n_terms: int = LABEL_TERMS
                ) -> list[tuple[str, ...]]:
    """Each cluster's most distinctive terms by c-TF-IDF: a cluster's texts are one document;
    weight = term frequency in it (normalised) x log(1 + average words per cluster / the
    term's frequency over all clusters). Terms in ``exclude`` (the brand's name) are skipped."""
    from sklearn.feature_extraction.text import CountVectorizer

    joined = [" ".join(d) for d in docs_by_cluster]
    if not any(s.strip() for s in joined):
        return [() for _ in joined]
    try:
        counts = CountVectorizer(stop_words="english", ngram_range=(1, 2), token_pattern=_WORD,
                                 max_features=50_000, lowercase=True).fit(joined)
    except ValueError:  # nothing but stop words
        return [() for _ in joined]
    matrix = counts.transform(joined).toarray().astype(np.float64)
    words = counts.get_feature_names_out()
    tf = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    avg = matrix.sum() / max(len(joined), 1)
    idf = np.log1p(avg / np.maximum(matrix.sum(axis=0), 1.0))
    weights = tf * idf
    out: list[tuple[str, ...]] = []
    for row in weights:
        picked: list[str] = []
        for j in np.argsort(-row, kind="stable"):
            if row[j] <= 0 or len(picked) >= n_terms:
                break
            term = str(words[j])
            if any(_names(w, exclude) for w in term.split()) or any(term in p or p in term for p in picked):
                continue
            picked.append(term)
        out.append(tuple(picked))
    return out


def _names(word: str, exclude: set[str]) -> bool:
    """Whether ``word`` is one of the brand's words, possessive or compound: acme, acme's, acmeconf."""
    base = word.removesuffix("'s").removesuffix("\u2019s")
    return base in exclude or any(len(e) >= 3 and base.startswith(e) for e in exclude)


def clean_label(text: str, limit: int = 80) -> str:
    """Scraped text made safe for a terminal line: no control or format characters
    (escape sequences, bidi overrides), whitespace as single spaces, bounded length."""
    kept = "".join(" " if ch.isspace() else ch for ch in text if not unicodedata.category(ch).startswith("C")
                   or ch.isspace())
    kept = re.sub(r"\s+", " ", kept).strip()
    return kept if len(kept) <= limit else kept[:limit - 1] + "\u2026"


def _mix(values: list[str | None], labels: tuple[str, ...]) -> dict[str, float]:
    judged = [v for v in values if v in labels]
    counts = Counter(judged)
    return {lab: round(counts[lab] / len(judged), 4) if judged else 0.0 for lab in labels}


def _week(created_at: str) -> str:
    day = datetime.fromisoformat(created_at[:10])
    return (day - timedelta(days=day.weekday())).strftime("%Y-%m-%d")


def _distinct(rows: list[VectorMention]) -> int:
    return len({re.sub(r"\W+", " ", mention_text(r).casefold()).strip() for r in rows})


# ----------------------------------------------------------------------------- the report


def pick_model(store: Store, brand: str, preferred: str | None) -> str | None:
    """The model whose vectors to read: ``preferred`` (the configured model) where it kept
    some for the brand or none did, else the one that kept the most."""
    names = [m["model"] for m in store.themes.vector_models(brand)]
    if preferred in names or not names:
        return preferred
    return names[0]


def find_themes(store: Store, brand: str, *, since: datetime, until: datetime, model: str | None,
                stance: str | None = None, save_to: Store | None = None, limit: int = MAX_MENTIONS
                ) -> TopicsReport:
    """The themes of ``brand``'s mentions created in [since, until) (``stance``: only its
    promoters' or detractors' mentions), read from ``store``; the themes are stored through
    ``save_to`` (the writer store: ``store`` itself unless it is read-only; None: not stored,
    new themes then have no id but 0)."""
    base = TopicsReport(brand=brand, model=model, since=since, until=until, stance=stance, mentions=0)
    if model is None:
        return _with(base, note=f"no sentence vectors for {brand}: classify its mentions with the shipped model "
                                "(a generic hub model gives none)")
    rows = store.themes.vectors(brand, model, since, until, advocacy=stance, limit=limit)
    base = _with(base, mentions=len(rows))
    who = f"{stance}s' mentions" if stance else "mentions"
    if len(rows) < MIN_MENTIONS:
        return _with(base, note=f"not enough data: {len(rows)} {who} of {brand} with sentence vectors in this "
                                f"period (themes need at least {MIN_MENTIONS}; mentions get a vector when the "
                                "shipped model classifies them)")
    distinct = _distinct(rows)
    if distinct < MIN_DISTINCT:
        return _with(base, note=f"not enough data: the {len(rows)} {who} of {brand} in this period say nearly the "
                                f"same thing (fewer than {MIN_DISTINCT} different texts)")
    try:
        vectors = unpack([r["embedding"] for r in rows])
    except ValueError:
        return _with(base, note=f"the stored vectors of {model} have different sizes: classify again")
    centroids, labels = cluster(vectors, min(choose_k(len(rows)), distinct))
    sizes = np.bincount(labels, minlength=len(centroids))
    if sizes.max() >= GIANT_SHARE * len(rows):
        return _with(base, note=f"no distinct themes: the {len(rows)} {who} of {brand} in this period are all "
                                "about much the same thing")
    min_size = max(3, math.ceil(0.02 * len(rows)))
    kept = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] >= min_size]
    previous = store.themes.vectors(brand, model, since - (until - since), since, advocacy=stance, limit=limit)
    try:
        prev_vectors = unpack([r["embedding"] for r in previous], dim=vectors.shape[1])
    except ValueError:
        prev_vectors = np.zeros((0, vectors.shape[1]), dtype=np.float32)
    kept_centroids = centroids[kept]
    prev_counts = np.bincount(assign(prev_vectors, kept_centroids), minlength=len(kept))
    exclude = {w.casefold() for w in re.findall(r"\w+", brand)}
    docs = [[mention_text(rows[i])[:2_000] for i in np.flatnonzero(labels == c)[:LABEL_DOCS]] for c in kept]
    terms = label_terms(docs, exclude)
    ids = _stable_ids(store, save_to, brand, model, kept_centroids, terms, [int(sizes[c]) for c in kept])
    themes = []
    for pos, c in enumerate(kept):
        members = np.flatnonzero(labels == c)
        closeness = vectors[members] @ centroids[c]
        examples: list[Example] = []
        seen: set[str] = set()
        for i in members[np.argsort(-closeness, kind="stable")]:
            r = rows[int(i)]
            key = re.sub(r"\W+", " ", mention_text(r).casefold()).strip()
            if key in seen:
                continue
            seen.add(key)
            examples.append(Example(r["id"], r["created_at"], mention_text(r), r["url"], r["sentiment"],
                                    r["advocacy"]))
            if len(examples) == EXAMPLES:
                break
        member_rows = [rows[int(i)] for i in members]
        themes.append(Theme(
            id=ids[pos], label=", ".join(terms[pos]) or f"theme {pos + 1}", terms=terms[pos], size=len(members),
            share=len(members) / len(rows), previous=int(prev_counts[pos]),
            sentiment=_mix([r["sentiment"] for r in member_rows], SENTIMENTS),
            advocacy=_mix([r["advocacy"] for r in member_rows], STANCES),
            examples=tuple(examples), weeks=dict(sorted(Counter(_week(r["created_at"]) for r in member_rows).items())),
        ))
    return _with(base, themes=tuple(themes), other=len(rows) - sum(t.size for t in themes))


STORE_DAYS = 30  # the period the daemon's themes job (and the Topics page's default) covers


def store_themes(store: Store, brands: list[str], preferred: str | None, now: datetime,
                 days: int = STORE_DAYS) -> int:
    """The daemon's themes job: find each brand's themes of the last ``days`` days and store
    them, so that a theme keeps its id (the Topics page only reads them) and spike
    explanations have themes to name. Returns the number of themes stored."""
    stored = 0
    for brand in brands:
        report = find_themes(store, brand, since=now - timedelta(days=days), until=now,
                             model=pick_model(store, brand, preferred), save_to=store)
        stored += len(report.themes)
    return stored


def _stable_ids(store: Store, save_to: Store | None, brand: str, model: str, centroids: np.ndarray,
                terms: list[tuple[str, ...]], sizes: list[int]) -> list[int]:
    from monitor.store.themes import ThemeUpdate

    stored = store.themes.stored(brand, model)
    try:
        old = unpack([t["centroid"] for t in stored], dim=centroids.shape[1])
    except ValueError:
        old, stored = np.zeros((0, centroids.shape[1]), dtype=np.float32), []
    pairs = match(centroids, old)
    known = [stored[pairs[i]]["id"] if i in pairs else None for i in range(len(centroids))]
    if save_to is None:
        return [t or 0 for t in known]
    blobs = pack(centroids)
    return save_to.themes.save(brand, model, [
        ThemeUpdate(known[i], ", ".join(terms[i]), blobs[i], sizes[i]) for i in range(len(centroids))])


def _with(report: TopicsReport, **changes: Any) -> TopicsReport:
    from dataclasses import replace

    return replace(report, **changes)
