"""What every engine shares: texts -> token windows -> length-sorted, dynamically padded
batches -> logits -> marked, calibrated results. An engine supplies ``_tokenize`` and
``_forward``; ONNX and torch give the same results for the same weights up to rounding.

Targets. A model trained to read the brand (``monitor.json`` ``"targeted": true``) gets
``[CLS] brand [SEP] text [SEP]`` for each text that has a target (``classify(texts,
targets)``), so a post that leaves one brand for another gets a stance toward each; the
window of the text shrinks by the brand's tokens. Texts without a target (a plain CSV)
are read alone, as in training.

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
from monitor.classify.textprep import TARGET_MAX_TOKENS, clean, clean_target, head_tail
from monitor.records import Classification
from monitor.vectors import pack

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
    targeted: bool = False  # the model reads the brand with the text
    max_length: int
    batch_size: int
    uncertain_below: float
    pad_id: int = 0
    max_batch_tokens: int = 4096
    language_gate: LanguageGate | None = None
    reads_declared_language: bool = True  # classify(..., langs=): the language each source declared
    sentiment_map: list[int | None] | None = None  # generic models: output index -> SENTIMENT index
    embeds: bool = False  # _forward gives the pooled sentence vector as its last output
    keep_embeddings: bool = True  # attach it to each result (False: drop it; the benchmark's baseline)

    # ---------------------------------------------------------------- engine-specific

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids with the special tokens, not truncated."""
        raise NotImplementedError

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """int64 (batch, seq) ids and mask -> the logits of each head: sentiment first, then
        (two-head models) advocacy and, where the model has one, stance; where ``embeds``
        and ``keep_embeddings``, the mean-pooled sentence vector last."""
        raise NotImplementedError

    def _target_ids(self, targets: list[str]) -> list[list[int]]:
        """Token ids of each (cleaned) target, without special tokens."""
        raise NotImplementedError

    # ---------------------------------------------------------------- shared

    def windows(self, ids: list[int], target: list[int] | None = None) -> list[list[int]]:
        """The windows of one text's ids; with target ids, each window becomes
        ``[CLS] target [SEP] window-body [SEP]`` (the body shrinks to make room)."""
        prefix = [*target[:TARGET_MAX_TOKENS], ids[-1]] if target else []
        room = self.max_length - len(prefix)
        if len(ids) <= room:
            out = [ids]
        elif len(ids) <= LONG_FACTOR * room:
            out = [head_tail(ids, room)]
        else:
            out = [head_tail(ids, room), tail_window(ids, room)]
        return [[w[0], *prefix, *w[1:]] for w in out] if prefix else out

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

    def logits(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Run windows through the network in length-sorted batches padded to their longest;
        one array of logits per head."""
        n = len(windows)
        order = sorted(range(n), key=lambda i: len(windows[i]))
        outs: list[np.ndarray] = []
        for chunk in self.batches(order, [len(w) for w in windows]):
            width = max(len(windows[i]) for i in chunk)
            x = np.full((len(chunk), width), self.pad_id, dtype=np.int64)
            m = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                x[row, : len(windows[i])] = windows[i]
                m[row, : len(windows[i])] = 1
            heads = [z for z in self._forward(x, m) if z is not None]
            if not outs:
                outs = [np.zeros((n, z.shape[1]), dtype=np.float32) for z in heads]
            for out, z in zip(outs, heads, strict=True):
                out[chunk] = z
        return outs

    def text_logits(self, cleaned: list[str], targets: list[str] | None = None) -> list[np.ndarray]:
        """One row of logits per cleaned text (and head), long texts averaged over their windows."""
        outs = self.text_outputs(cleaned, targets)
        return outs[:-1] if self._gives_vectors() else outs

    def _gives_vectors(self) -> bool:
        return self.embeds and self.keep_embeddings

    def text_outputs(self, cleaned: list[str], targets: list[str] | None = None) -> list[np.ndarray]:
        """``text_logits`` and, where the engine keeps them, the sentence vectors last (a long
        text's the mean over its windows)."""
        owners: list[int] = []
        windows: list[list[int]] = []
        target_ids: list[list[int]] = [[] for _ in cleaned]
        if self.targeted and targets and any(targets):
            brands = sorted({t for t in targets if t})  # a batch names few brands: tokenise each once
            by_brand = dict(zip(brands, self._target_ids(brands), strict=True))
            target_ids = [by_brand[t] if t else [] for t in targets]
        for i, ids in enumerate(self._tokenize(cleaned)):
            for w in self.windows(ids, target_ids[i]):
                owners.append(i)
                windows.append(w)
        heads = self.logits(windows)
        if len(windows) == len(cleaned):
            return heads
        idx = np.asarray(owners)
        counts = np.bincount(idx, minlength=len(cleaned)).astype(np.float32)[:, None]

        def mean(z: np.ndarray) -> np.ndarray:
            out = np.zeros((len(cleaned), z.shape[1]), dtype=np.float32)
            np.add.at(out, idx, z)
            return out / counts

        return [mean(z) for z in heads]

    def classify(self, texts: Sequence[str], targets: Sequence[str | None] | None = None, *,
                 langs: Sequence[str | None] | None = None) -> list[Classification]:
        """One result per text, in order. ``targets``: the brand each text is about (same
        length; None or "" for none); a model that reads brands judges the stance toward it.
        ``langs``: the language each text's source declared (``fr``, ``en-US``, None); see
        ``_gate``."""
        if targets is not None and len(targets) != len(texts):
            raise ValueError(f"{len(targets)} targets for {len(texts)} texts")
        if langs is not None and len(langs) != len(texts):
            raise ValueError(f"{len(langs)} languages for {len(texts)} texts")
        results: list[Classification | None] = [None] * len(texts)
        todo: list[int] = []
        cleaned: list[str] = []
        todo_targets: list[str] = []
        found: dict[int, str | None] = {}
        for i, t in enumerate(texts):
            target = clean_target(targets[i]) if targets is not None and self.targeted else ""
            c = clean(t if isinstance(t, str) else "", target or None)
            if not c:
                results[i] = empty_result(self.name, "empty")
                continue
            if self.language_gate is not None:
                lang, supported = _gate(self.language_gate, c, langs[i] if langs is not None else None)
                if not supported:
                    results[i] = empty_result(self.name, "unsupported_language", lang=lang)
                    continue
                found[i] = lang
            todo.append(i)
            cleaned.append(c)
            todo_targets.append(target)
        if todo:
            heads = self.text_outputs(cleaned, todo_targets)
            vectors = pack(heads.pop()) if self._gives_vectors() else None
            if self.two_head and len(heads) >= 2:
                stance = heads[2] if len(heads) > 2 and "stance_offsets" in self.meta else None
                done = two_head_results(heads[0], heads[1], self.meta, self.name, self.uncertain_below, stance,
                                        vectors)
            else:
                done = generic_results(heads[0], self.sentiment_map or [0, 1, 2], self.name, self.uncertain_below)
            for i, r in zip(todo, done, strict=True):
                results[i] = r if found.get(i) is None else _with_lang(r, found[i])
        return results  # type: ignore[return-value]


def declared_language(value: str | None) -> str | None:
    """A declared language tag as the gate's code: ``en-US`` -> ``en``; None when unusable."""
    if not isinstance(value, str):
        return None
    code = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return code if code.isascii() and code.isalpha() and 2 <= len(code) <= 3 else None


def _gate(gate: LanguageGate, text: str, declared: str | None) -> tuple[str | None, bool]:
    """(language, whether the model covers it). The detector, when confident, decides (a
    client's default ``en`` on a French post does not hide it; a post declared French but
    confidently English is judged). Otherwise the source's declared language does: a short
    post declared French is not judged by an English model, one declared English (or with
    nothing declared) is."""
    lang, confident = gate.detect(text)
    if confident:
        return lang, lang in gate.supported
    code = declared_language(declared)
    return code, code is None or code in gate.supported


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
