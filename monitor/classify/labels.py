"""Logits -> calibrated, labelled results; shared by every engine (numpy only)."""

from __future__ import annotations

import numpy as np

from monitor.records import Classification, LabelScore

SENTIMENT = ("negative", "neutral", "positive")
ADVOCACY = ("promoter", "detractor", "none")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def label_score(labels: tuple[str, ...], probs: np.ndarray) -> LabelScore:
    p = {lab: round(float(v), 4) for lab, v in zip(labels, probs, strict=True)}
    return LabelScore(labels[int(np.argmax(probs))], p)


def two_head_results(s_logits: np.ndarray, a_logits: np.ndarray, meta: dict, model: str,
                     uncertain_below: float) -> list[Classification]:
    s = softmax((s_logits + np.asarray(meta.get("sentiment_offsets", [0, 0, 0]))) / meta.get("sentiment_temperature", 1.0))
    a = softmax(a_logits / meta.get("advocacy_temperature", 1.0))
    out = []
    for sp, ap in zip(s, a, strict=True):
        sent = label_score(SENTIMENT, sp)
        adv = label_score(ADVOCACY, ap)
        out.append(Classification(sent, adv, model, uncertain=bool(sent.confidence < uncertain_below)))
    return out


def generic_results(logits: np.ndarray, mapping: list[int | None], model: str,
                    uncertain_below: float) -> list[Classification]:
    """Any sequence-classification model: its outputs merged onto SENTIMENT by ``mapping``
    (output index -> SENTIMENT index or None); no advocacy stance."""
    present = sorted({t for t in mapping if t is not None})
    labels = tuple(SENTIMENT[t] for t in present)
    out = []
    for probs in softmax(logits):
        merged = np.zeros(len(SENTIMENT))
        for j, target in enumerate(mapping):
            if target is not None:
                merged[target] += probs[j]
        merged = merged / merged.sum() if merged.sum() > 0 else merged
        sent = label_score(labels, merged[present])
        out.append(Classification(sent, LabelScore("none", {}), model, uncertain=bool(sent.confidence < uncertain_below)))
    return out


def empty_result(model: str, status: str, lang: str | None = None) -> Classification:
    """For a text the model must not judge (empty, unsupported language): marked, not guessed."""
    return Classification(LabelScore("neutral", {}), LabelScore("none", {}), model, uncertain=True, lang=lang,
                          status=status)
