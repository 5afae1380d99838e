"""Which language a text is in, so texts the model does not cover are marked, not guessed.

Uses py3langid (langid.py's model, 97 languages, shipped inside the wheel: no download).
Short or ambiguous texts (emoji, URLs, a handle and two words, Latin mixed with another
script) are never flagged: a text is called unsupported only when it has enough letters and the identifier
is confident.

Speed. ``detect_many`` gives exactly what ``detect`` gives for each text, faster: the
cheap checks take a shortcut for ASCII text, and py3langid's byte automaton walks all
texts of a batch at once, one byte position per numpy step (texts sorted by length, the
few longest finished in plain Python); the features then go through py3langid's own
scoring, text by text, so every language and probability is bit for bit the same. That
walk reads py3langid internals: on first use it is checked against ``classify`` on
sample texts, and any difference (or a changed py3langid) falls back to ``classify``
text by text.
"""

from __future__ import annotations

import logging
import math
import re
import string
import threading
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

MIN_PROBABILITY = 0.9  # normalised langid probability needed to call a language
MIN_WEIGHT = 15  # letters needed (a CJK/kana/hangul character counts 3): below this, never judged
_PLACEHOLDERS = re.compile(r"(?<!\w)(?:http|@user)(?!\w)")
_DENSE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_DROP_ASCII_LETTERS = str.maketrans("", "", string.ascii_letters)

_identifier = None
_batched: _BatchedIdentifier | None | bool = None  # False: checked, unusable (use classify)
_lock = threading.Lock()


def _get_identifier():
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def letter_weight(text: str) -> int:
    return _weight(_PLACEHOLDERS.sub(" ", text))


def mixed_scripts(text: str) -> bool:
    """Latin and another script each hold at least a quarter of the letters."""
    return _mixed(_PLACEHOLDERS.sub(" ", text))


def _weight(text: str) -> int:
    """``letter_weight`` of a text whose placeholders are already blanked."""
    if text.isascii():  # ASCII letters are exactly a-z and A-Z, and none is dense
        return len(text) - len(text.translate(_DROP_ASCII_LETTERS))
    letters = sum(1 for ch in text if ch.isalpha())
    return letters + 2 * len(_DENSE.findall(text))


def _mixed(text: str) -> bool:
    if text.isascii():  # letters, if any, all Latin
        return False
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    latin = sum(1 for ch in letters if ch < "\u0250")
    return 0.25 <= latin / len(letters) <= 0.75


class LanguageGate:
    """``detect(text)`` gives (language, confident); ``unsupported(text)`` the language
    code when the text is confidently in a language outside ``supported``, else None.
    ``detect_many(texts)``: ``detect`` of each, in one pass."""

    def __init__(self, supported: Iterable[str], *, min_probability: float = MIN_PROBABILITY,
                 min_weight: int = MIN_WEIGHT) -> None:
        self.supported = frozenset(code.lower() for code in supported)
        self.min_probability = min_probability
        self.min_weight = min_weight

    def detect(self, text: str) -> tuple[str | None, bool]:
        """The language of an already cleaned text, and whether the call is confident."""
        blanked = _PLACEHOLDERS.sub(" ", text)
        if _weight(blanked) < self.min_weight or _mixed(blanked):
            return None, False
        lang, prob = _get_identifier().classify(blanked)
        return lang, bool(prob >= self.min_probability)

    def detect_many(self, texts: Sequence[str]) -> list[tuple[str | None, bool]]:
        """``[detect(t) for t in texts]``, the same results, several times faster."""
        out: list[tuple[str | None, bool]] = [(None, False)] * len(texts)
        judged: list[int] = []
        blanked: list[str] = []
        for i, text in enumerate(texts):
            b = _PLACEHOLDERS.sub(" ", text)
            if _weight(b) >= self.min_weight and not _mixed(b):
                judged.append(i)
                blanked.append(b)
        for i, (lang, prob) in zip(judged, identify_many(blanked), strict=True):
            out[i] = (lang, bool(prob >= self.min_probability))
        return out

    def unsupported(self, text: str) -> str | None:
        lang, confident = self.detect(text)
        if confident and lang not in self.supported:
            return lang
        return None


def identify_many(texts: Sequence[str]) -> list[tuple[str, float]]:
    """py3langid's ``classify`` of each text (normalised probabilities), in one pass."""
    if not texts:
        return []
    identifier = _get_identifier()
    batched = _get_batched(identifier)
    if batched is None:
        return [identifier.classify(t) for t in texts]
    return batched.classify_many(texts)


# Texts the batched walk must score exactly like py3langid before it is used: several
# languages and scripts, upper case, a featureless text, lengths either side of TAIL_AT.
_SELF_CHECK = (
    "I really love this product and I recommend it to all my friends.",
    "Ce produit est vraiment nul, je ne le recommande à personne.",
    "Das ist wirklich ein sehr schlechtes Produkt, ich empfehle es nicht.",
    "这个产品非常好，我会推荐给我的朋友们使用。",
    "Мне очень понравилось, всем рекомендую этот сервис.",
    "THIS IS THE WORST SERVICE I HAVE EVER USED, AVOID IT",
    "😀😀🔥🔥👍",
    "",
    "ok",
    "Este producto es terrible, no lo recomiendo a nadie. " * 9,
)


def _get_batched(identifier) -> _BatchedIdentifier | None:
    global _batched
    with _lock:
        if _batched is None:
            try:
                candidate = _BatchedIdentifier(identifier)
                ok = candidate.classify_many(list(_SELF_CHECK)) == [identifier.classify(t) for t in _SELF_CHECK]
            except Exception as exc:  # py3langid's internals changed
                logger.debug("batched language identification unavailable: %s", exc)
                ok = False
            if not ok:
                logger.info("py3langid internals differ from what the batched walk expects; "
                            "identifying languages text by text")
            _batched = candidate if ok else False
        return _batched or None


class _BatchedIdentifier:
    """py3langid's ``classify`` over many texts: the automaton walk of all texts runs in
    numpy, one byte position at a time; the rest is py3langid's own arithmetic."""

    TAIL_AT = 8  # when this few texts are still walking, finish them in plain Python

    def __init__(self, identifier) -> None:
        self.identifier = identifier
        self.encode = identifier._encode
        self.score = identifier._sparse_score
        self.ptc = identifier.nb_ptc
        self.classes = identifier.nb_classes
        self.norm_probs = bool(identifier._norm_probs)
        self.alias_pairs = list(identifier._alias_pairs)
        self.min_confidence = identifier.min_confidence
        # the automaton as numpy arrays, and as py3langid holds them (for the Python tail)
        self.nm_list = identifier.tk_nextmove
        self.rowbase_list = identifier._rowbase
        self.out_list = identifier.tk_output
        self.nm = np.asarray(identifier.tk_nextmove)
        self.rowbase = np.asarray(identifier._rowbase, dtype=np.int64)
        self.out = np.asarray(identifier.tk_output, dtype=np.int64)
        from py3langid.langid import RAW_FLOOR

        self.raw_floor = RAW_FLOOR

    def features(self, encoded: list[bytes]) -> list[list[int]]:
        """The automaton's feature ids of each text, in text order (as py3langid's walk)."""
        n = len(encoded)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: the walking ones are a prefix
        sorted_len = lengths[order]
        buf = np.frombuffer(b"".join(encoded[i] for i in order.tolist()), dtype=np.uint8)
        offsets = np.zeros(n, dtype=np.int64)
        np.cumsum(sorted_len[:-1], out=offsets[1:])
        state = np.zeros(n, dtype=np.int64)
        hit_rows: list[np.ndarray] = []
        hit_feats: list[np.ndarray] = []
        k, pos = n, 0
        while True:
            while k and sorted_len[k - 1] <= pos:
                k -= 1
            if k <= self.TAIL_AT:
                break
            s = self.nm[self.rowbase[state[:k]] + buf[offsets[:k] + pos]].astype(np.int64)
            state[:k] = s
            f = self.out[s]
            hit = f >= 0
            if hit.any():
                hit_rows.append(np.flatnonzero(hit))
                hit_feats.append(f[hit])
            pos += 1
        found: list[list[int]] = [[] for _ in range(n)]
        if hit_rows:
            rows = np.concatenate(hit_rows)
            feats = np.concatenate(hit_feats)
            by_row = np.argsort(rows, kind="stable")  # each text's features in byte order
            rows, feats = rows[by_row], feats[by_row]
            bounds = np.flatnonzero(np.diff(rows)) + 1
            for r, chunk in zip(rows[np.r_[0, bounds]].tolist(), np.split(feats, bounds), strict=True):
                found[r] = chunk.tolist()
        nm, rowbase, out = self.nm_list, self.rowbase_list, self.out_list
        for r in range(k):  # the longest few: py3langid's walk from where the batch left off
            st = int(state[r])
            append = found[r].append
            for letter in encoded[int(order[r])][pos:]:
                st = nm[rowbase[st] + letter]
                f = out[st]
                if f >= 0:
                    append(f)
        result: list[list[int]] = [[] for _ in range(n)]
        for r, i in enumerate(order.tolist()):
            result[i] = found[r]
        return result

    def classify_many(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        encoded = [self.encode(t) for t in texts]
        out = []
        for text, feats in zip(encoded, self.features(encoded), strict=True):
            if feats:
                scores = self.score(Counter(feats), self.ptc)
            else:  # as py3langid: no features, a flat score
                scores = np.full(len(self.classes), 0.0 if self.norm_probs else self.raw_floor, dtype=np.float32)
            out.append(self._decide(scores, len(text)))
        return out

    def _decide(self, scores: np.ndarray, n_bytes: int) -> tuple[str, float]:
        """py3langid's LanguageIdentifier._decide and classify after the raw scores."""
        if self.norm_probs:
            scores *= 1.0 / math.sqrt(n_bytes or 1)
            np.exp(scores - scores.max(), out=scores)
            scores /= scores.sum()
        for i, j in self.alias_pairs:
            if self.norm_probs:
                scores[i] += scores[j]
                scores[j] = 0.0
            else:
                scores[i] = max(scores[i], scores[j])
                scores[j] = self.raw_floor
        i = int(scores.argmax())
        conf = float(scores[i])
        if self.min_confidence is not None and conf < self.min_confidence:
            return "und", conf
        return self.classes[i], conf
