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


STANCE = (-2, -1, 0, 1, 2)


def offset(logits: np.ndarray, meta: dict, head: str) -> np.ndarray:
    """A head's logits plus its decision offsets from monitor.json (``<head>_offsets``; none: zeros)."""
    return logits + np.asarray(meta.get(f"{head}_offsets", 0.0))


def stance_scores(st_logits: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """The 5-point stance label (-2..+2: argmax after the validation-tuned offsets, the
    decision that minimised macro-MAE) and the calibrated expected score (a float)."""
    z = offset(st_logits, meta, "stance")
    labels = np.asarray(STANCE)[z.argmax(axis=-1)]
    expected = softmax(z / meta.get("stance_temperature", 1.0)) @ np.asarray(STANCE, dtype=float)
    return labels, expected


def two_head_results(s_logits: np.ndarray, a_logits: np.ndarray, meta: dict, model: str,
                     uncertain_below: float, st_logits: np.ndarray | None = None,
                     embeddings: list[bytes] | None = None) -> list[Classification]:
    s = softmax(offset(s_logits, meta, "sentiment") / meta.get("sentiment_temperature", 1.0))
    a = softmax(offset(a_logits, meta, "advocacy") / meta.get("advocacy_temperature", 1.0))
    stance = stance_scores(st_logits, meta) if st_logits is not None else None
    out = []
    for i, (sp, ap) in enumerate(zip(s, a, strict=True)):
        sent = label_score(SENTIMENT, sp)
        adv = label_score(ADVOCACY, ap)
        st = (int(stance[0][i]), round(float(stance[1][i]), 3)) if stance is not None else (None, None)
        out.append(Classification(sent, adv, model, uncertain=bool(sent.confidence < uncertain_below),
                                  stance=st[0], stance_score=st[1],
                                  embedding=embeddings[i] if embeddings is not None else None))
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
        out.append(Classification(sent, LabelScore("none", {}), model,
                                  uncertain=bool(sent.confidence < uncertain_below)))
    return out


def empty_result(model: str, status: str, lang: str | None = None) -> Classification:
    """For a text the model must not judge (empty, unsupported language): marked, not guessed."""
    return Classification(LabelScore("neutral", {}), LabelScore("none", {}), model, uncertain=True, lang=lang,
                          status=status)
