"""Which language a text is in, so texts the model does not cover are marked, not guessed.

Uses py3langid (langid.py's model, 97 languages, shipped inside the wheel: no download).
Short or ambiguous texts (emoji, URLs, a handle and two words, Latin mixed with another
script) are never flagged: a text is called unsupported only when it has enough letters and the identifier
is confident.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

logger = logging.getLogger(__name__)

MIN_PROBABILITY = 0.9  # normalised langid probability needed to call a language
MIN_WEIGHT = 15  # letters needed (a CJK/kana/hangul character counts 3): below this, never judged
_PLACEHOLDERS = re.compile(r"(?<!\w)(?:http|@user)(?!\w)")
_DENSE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

_identifier = None
_lock = threading.Lock()


def _get_identifier():
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def letter_weight(text: str) -> int:
    text = _PLACEHOLDERS.sub(" ", text)
    letters = sum(1 for ch in text if ch.isalpha())
    return letters + 2 * len(_DENSE.findall(text))


def mixed_scripts(text: str) -> bool:
    """Latin and another script each hold at least a quarter of the letters."""
    letters = [ch for ch in _PLACEHOLDERS.sub(" ", text) if ch.isalpha()]
    if not letters:
        return False
    latin = sum(1 for ch in letters if ch < "\u0250")
    return 0.25 <= latin / len(letters) <= 0.75


class LanguageGate:
    """``detect(text)`` gives (language, confident); ``unsupported(text)`` the language
    code when the text is confidently in a language outside ``supported``, else None."""

    def __init__(self, supported: Iterable[str], *, min_probability: float = MIN_PROBABILITY,
                 min_weight: int = MIN_WEIGHT) -> None:
        self.supported = frozenset(code.lower() for code in supported)
        self.min_probability = min_probability
        self.min_weight = min_weight

    def detect(self, text: str) -> tuple[str | None, bool]:
        """The language of an already cleaned text, and whether the call is confident."""
        if letter_weight(text) < self.min_weight or mixed_scripts(text):
            return None, False
        lang, prob = _get_identifier().classify(_PLACEHOLDERS.sub(" ", text))
        return lang, bool(prob >= self.min_probability)

    def unsupported(self, text: str) -> str | None:
        lang, confident = self.detect(text)
        if confident and lang not in self.supported:
            return lang
        return None
