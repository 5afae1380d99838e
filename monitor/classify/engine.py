"""What every engine shares: texts -> token windows -> length-sorted, dynamically padded
batches -> logits -> marked, calibrated results. An engine supplies ``_tokenize`` and
``_forward``; ONNX and torch give the same results for the same weights up to rounding.

Long texts. The model was trained on windows of ``max_length`` tokens cut with
``textprep.head_tail`` (the beginning and the end of the text, since a review's verdict
is usually its last sentences). A text up to ``LONG_FACTOR`` windows long is classified on
that one head+tail window. A longer text (a long review, a blog post) would lose most of
its middle and its conclusion would fill only half a window, so it is classified on two
windows, the head+tail window and the last ``max_length`` tokens, and their logits are
averaged: the conclusion weighs at least half, and the cost stays at two windows however
long the text is (``textprep.clean`` caps a text at 20,000 characters first).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from monitor.classify.labels import empty_result, generic_results, two_head_results
from monitor.classify.language import LanguageGate
from monitor.classify.textprep import clean, head_tail
from monitor.records import Classification

logger = logging.getLogger(__name__)

LONG_FACTOR = 2  # texts longer than this many windows get a second, tail-only window


def tail_window(ids: list[int], max_len: int) -> list[int]:
    """[CLS] + the last max_len-2 tokens of the text + [SEP]."""
    return [ids[0], *ids[len(ids) - (max_len - 1) : -1], ids[-1]]


class BatchedEngine:
    """Base of the engines. Subclasses set the attributes below in ``__init__``."""

    name: str
    meta: dict
    two_head: bool
    max_length: int
    batch_size: int
    uncertain_below: float
    pad_id: int = 0
    max_batch_tokens: int = 4096
    language_gate: LanguageGate | None = None
    sentiment_map: list[int | None] | None = None  # generic models: output index -> SENTIMENT index

    # ---------------------------------------------------------------- engine-specific

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids with the special tokens, not truncated."""
        raise NotImplementedError

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """int64 (batch, seq) ids and mask -> sentiment logits and advocacy logits (or None)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- shared

    def windows(self, ids: list[int]) -> list[list[int]]:
        if len(ids) <= self.max_length:
            return [ids]
        first = head_tail(ids, self.max_length)
        if len(ids) <= LONG_FACTOR * self.max_length:
            return [first]
        return [first, tail_window(ids, self.max_length)]

    def batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive runs of the length-sorted ``order``: at most ``batch_size`` texts and
        ``max_batch_tokens`` padded tokens each (long windows come in smaller batches,
        which bounds the attention buffers and so the peak memory)."""
        out: list[list[int]] = []
        current: list[int] = []
        for i in order:  # ascending length: the newest item is the widest
            if current and (len(current) >= self.batch_size or (len(current) + 1) * lengths[i] > self.max_batch_tokens):
                out.append(current)
                current = []
            current.append(i)
        if current:
            out.append(current)
        return out

    def logits(self, windows: list[list[int]]) -> tuple[np.ndarray, np.ndarray | None]:
        """Run windows through the network in length-sorted batches padded to their longest."""
        n = len(windows)
        order = sorted(range(n), key=lambda i: len(windows[i]))
        s_out: np.ndarray | None = None
        a_out: np.ndarray | None = None
        for chunk in self.batches(order, [len(w) for w in windows]):
            width = max(len(windows[i]) for i in chunk)
            x = np.full((len(chunk), width), self.pad_id, dtype=np.int64)
            m = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                x[row, : len(windows[i])] = windows[i]
                m[row, : len(windows[i])] = 1
            s, a = self._forward(x, m)
            if s_out is None:
                s_out = np.zeros((n, s.shape[1]), dtype=np.float32)
                a_out = np.zeros((n, a.shape[1]), dtype=np.float32) if a is not None else None
            s_out[chunk] = s
            if a is not None and a_out is not None:
                a_out[chunk] = a
        assert s_out is not None
        return s_out, a_out

    def text_logits(self, cleaned: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """One row of logits per cleaned text, long texts averaged over their windows."""
        owners: list[int] = []
        windows: list[list[int]] = []
        for i, ids in enumerate(self._tokenize(cleaned)):
            for w in self.windows(ids):
                owners.append(i)
                windows.append(w)
        s, a = self.logits(windows)
        if len(windows) == len(cleaned):
            return s, a
        idx = np.asarray(owners)
        counts = np.bincount(idx, minlength=len(cleaned)).astype(np.float32)[:, None]

        def mean(z: np.ndarray) -> np.ndarray:
            out = np.zeros((len(cleaned), z.shape[1]), dtype=np.float32)
            np.add.at(out, idx, z)
            return out / counts

        return mean(s), (mean(a) if a is not None else None)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        results: list[Classification | None] = [None] * len(texts)
        todo: list[int] = []
        cleaned: list[str] = []
        langs: dict[int, str | None] = {}
        for i, t in enumerate(texts):
            c = clean(t if isinstance(t, str) else "")
            if not c:
                results[i] = empty_result(self.name, "empty")
                continue
            if self.language_gate is not None:
                lang, confident = self.language_gate.detect(c)
                if confident and lang not in self.language_gate.supported:
                    results[i] = empty_result(self.name, "unsupported_language", lang=lang)
                    continue
                langs[i] = lang if confident else None
            todo.append(i)
            cleaned.append(c)
        if todo:
            s, a = self.text_logits(cleaned)
            if self.two_head and a is not None:
                done = two_head_results(s, a, self.meta, self.name, self.uncertain_below)
            else:
                done = generic_results(s, self.sentiment_map or [0, 1, 2], self.name, self.uncertain_below)
            for i, r in zip(todo, done, strict=True):
                results[i] = r if langs.get(i) is None else _with_lang(r, langs[i])
        return results  # type: ignore[return-value]


def _with_lang(c: Classification, lang: str | None) -> Classification:
    from dataclasses import replace

    return replace(c, lang=lang)


def model_languages(meta: dict, override: Sequence[str] | None, default: Sequence[str] | None = None
                    ) -> LanguageGate | None:
    """The gate for a model: the config's list, else monitor.json's ``languages``, else
    ``default`` (the shipped model: English; other models: none, any language). [] disables it."""
    langs = override if override is not None else meta.get("languages", default)
    if not langs:
        return None
    return LanguageGate(langs)
