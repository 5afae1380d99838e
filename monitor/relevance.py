"""Relevance: is a mention about *this* brand ("apple" the fruit, "Go" the game)?

A brand's relevance model is a logistic regression over the sentence vectors the classifier
already keeps (``monitor.vectors``; no second model pass over the mentions), learned from

* the brand's ``about`` texts (positives) and ``not_about`` texts (negatives) in config,
  embedded by the same classifier, and
* the web page's marks: a correction of the field ``relevance`` to ``about`` or
  ``not_about`` (stored and exported like every label correction); a mark also wins over
  the model for its own mention.

It needs at least one example of each side; until then (and for a brand with neither texts
nor marks) every mention is relevant, as before. A mention whose score is under the brand's
``relevance_threshold`` is *off topic*: kept, listed on demand, left out of figures, scores,
themes and alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from monitor.vectors import normalise, unpack

if TYPE_CHECKING:
    from monitor.classify import Classifier
    from monitor.records import Classification
    from monitor.store import Store

logger = logging.getLogger(__name__)

ABOUT, NOT_ABOUT = "about", "not_about"
LABELS = (ABOUT, NOT_ABOUT)
DEFAULT_THRESHOLD = 0.5
C = 16.0  # inverse regularisation: unit vectors and few examples need little of it (benchmarks/relevance_eval.py)


@dataclass(frozen=True)
class RelevanceModel:
    """One brand's relevance model: ``score`` gives P(about the brand) per vector."""

    brand: str
    threshold: float
    positives: int
    negatives: int
    coef: np.ndarray = field(repr=False, compare=False)
    intercept: float = 0.0

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) vectors (unit rows, as ``monitor.vectors.unpack`` gives) -> n scores in [0, 1];
        a zero vector (no text) scores 1: nothing to judge, so it stays."""
        v = np.asarray(vectors, dtype=np.float32)
        if v.size == 0:
            return np.zeros(0, dtype=np.float64)
        z = v @ self.coef + self.intercept
        out = 1.0 / (1.0 + np.exp(-z))
        out[~np.any(v != 0, axis=1)] = 1.0
        return np.asarray(out, dtype=np.float64)

    def off_topic(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) < self.threshold


def fit(brand: str, about: np.ndarray, not_about: np.ndarray,
        threshold: float = DEFAULT_THRESHOLD) -> RelevanceModel | None:
    """A model from positive and negative vectors; None without at least one of each."""
    from sklearn.linear_model import LogisticRegression

    pos = normalise(np.asarray(about, dtype=np.float32).reshape(len(about), -1)) if len(about) else None
    neg = normalise(np.asarray(not_about, dtype=np.float32).reshape(len(not_about), -1)) if len(not_about) else None
    if pos is None or neg is None:
        return None
    if pos.shape[1] != neg.shape[1]:
        raise ValueError("about and not_about vectors of different sizes: they come from different models")
    x = np.vstack([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    clf.fit(x, y)
    return RelevanceModel(brand=brand, threshold=threshold, positives=len(pos), negatives=len(neg),
                          coef=clf.coef_[0].astype(np.float32), intercept=float(clf.intercept_[0]))


def embed_texts(classify: Callable[[Sequence[str]], Sequence[bytes | None]], texts: Sequence[str]) -> np.ndarray:
    """Texts -> unit vectors through the classifier's ``embedding``; texts it gives no vector
    for are left out (a generic hub model gives none: then there is no model)."""
    blobs = [b for b in classify(list(texts)) if b] if texts else []
    return unpack(blobs) if blobs else np.zeros((0, 0), dtype=np.float32)


@dataclass
class BrandExamples:
    """What one brand's model learns from: config texts and marks, as vectors."""

    about: list[np.ndarray] = field(default_factory=list)
    not_about: list[np.ndarray] = field(default_factory=list)


def build_models(brands: Sequence[tuple[str, Sequence[str], Sequence[str], float]],
                 embed: Callable[[Sequence[str]], np.ndarray],
                 marks: Mapping[str, Sequence[tuple[str, bytes]]] | None = None) -> dict[str, RelevanceModel]:
    """``brands``: (name, about texts, not_about texts, threshold); ``embed`` texts -> unit vectors;
    ``marks``: per brand, (label, vector blob) of the mentions marked about / not about.
    Brands with no example on one side get no model (everything relevant)."""
    models: dict[str, RelevanceModel] = {}
    for name, about, not_about, threshold in brands:
        ex = BrandExamples()
        for texts, side in ((about, ex.about), (not_about, ex.not_about)):
            if texts:
                side.extend(embed(texts))
        for label, blob in (marks or {}).get(name, ()):
            if blob:
                (ex.about if label == ABOUT else ex.not_about).append(unpack([blob])[0])
        if not ex.about or not ex.not_about:
            continue
        widths = {len(v) for v in ex.about + ex.not_about}
        if len(widths) != 1:
            logger.warning("relevance of %s: examples come from different models; not scored", name)
            continue
        model = fit(name, np.array(ex.about), np.array(ex.not_about), threshold)
        if model is not None:
            models[name] = model
    return models


def score_blobs(model: RelevanceModel, blobs: Sequence[bytes | None]) -> list[float | None]:
    """Each vector blob's score (None where a mention kept no vector, or one of another size)."""
    width = len(model.coef)
    idx = [i for i, b in enumerate(blobs) if b and len(b) == width]
    out: list[float | None] = [None] * len(blobs)
    if idx:
        scores = model.score(unpack([blobs[i] or b"" for i in idx]))
        for i, s in zip(idx, scores, strict=True):
            out[i] = round(float(s), 4)
    return out


class _Brand(Protocol):
    name: str
    about: list[str]
    not_about: list[str]
    relevance_threshold: float


def models_for(store: Store, classifier: Classifier, brands: Sequence[_Brand]) -> dict[str, RelevanceModel]:
    """Each configured brand's model: its ``about``/``not_about`` texts embedded by
    ``classifier`` (the same encoder as the stored vectors) and the marks on mentions
    ``classifier`` kept vectors of."""
    marks: dict[str, list[tuple[str, bytes]]] = {}
    for r in store.relevance.marks(classifier.name):
        marks.setdefault(r["brand"], []).append((r["label"], r["embedding"]))
    wanted = [b for b in brands if b.about or b.not_about or b.name in marks]
    if not wanted:
        return {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(lambda t: [c.embedding for c in classifier.classify(t)], texts)

    return build_models([(b.name, b.about, b.not_about, b.relevance_threshold) for b in wanted], embed, marks)


def score_results(models: Mapping[str, RelevanceModel], brands: Sequence[str],
                  results: Sequence[Classification]) -> list[Classification]:
    """``results`` (of mentions of ``brands``, in order) with their relevance set."""
    out = list(results)
    for brand, model in models.items():
        idx = [i for i, b in enumerate(brands) if b == brand]
        if not idx:
            continue
        scores = score_blobs(model, [out[i].embedding for i in idx])
        for i, s in zip(idx, scores, strict=True):
            if s is not None:
                out[i] = replace(out[i], relevance=s, off_topic=s < model.threshold)
    return out


def rescore(store: Store, model: str, brand: str, relevance: RelevanceModel | None) -> tuple[int, int]:
    """Score ``brand``'s stored vectors of ``model`` again (after new marks or texts; ``relevance``
    None: the brand has no model now, so every mention is relevant). Returns (scored, off topic)."""
    rows = store.relevance.vectors(brand, model)
    scores = score_blobs(relevance, [r["embedding"] for r in rows]) if relevance else [None] * len(rows)
    updates = [(r["id"], s, relevance is not None and s is not None and s < relevance.threshold)
               for r, s in zip(rows, scores, strict=True)]
    changed = [u for u, r in zip(updates, rows, strict=True)
               if (u[1], int(u[2])) != (r["relevance"], r["off_topic"])]
    if changed:
        store.relevance.save_scores(changed)
    return sum(s is not None for s in scores), sum(u[2] for u in updates)
