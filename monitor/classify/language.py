"""Which language a text is in, so texts the model does not cover are marked, not guessed.

Uses py3langid (langid.py's model, 97 languages, shipped inside the wheel: no download).
Short or ambiguous texts (emoji, URLs, a handle and two words, Latin mixed with another
script) are never flagged: a text is called unsupported only when it has enough letters and the identifier
is confident.

Every text of a judged language goes through py3langid, ASCII too: a cheap test cannot tell
English from ASCII Spanish or French, and the stored ``lang`` must be py3langid's. What is
cheap is the rest: placeholders are blanked once, and an ASCII text (most posts) has its
letters counted without a Python loop and cannot mix scripts.
"""

from __future__ import annotations

import logging
import re
import string
import threading
from collections.abc import Iterable

logger = logging.getLogger(__name__)

MIN_PROBABILITY = 0.9  # normalised langid probability needed to call a language
MIN_WEIGHT = 15  # letters needed (a CJK/kana/hangul character counts 3): below this, never judged
_PLACEHOLDERS = re.compile(r"(?<!\w)(?:http|@user)(?!\w)")
_DENSE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_DROP_ASCII_LETTERS = str.maketrans("", "", string.ascii_letters)

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
    return _weight(_PLACEHOLDERS.sub(" ", text))


def _weight(text: str) -> int:
    """``letter_weight`` of a text whose placeholders are blanked already."""
    if text.isascii():  # the ASCII letters are a-z and A-Z, and none is dense
        return len(text) - len(text.translate(_DROP_ASCII_LETTERS))
    letters = sum(1 for ch in text if ch.isalpha())
    return letters + 2 * len(_DENSE.findall(text))


def _mixed(text: str) -> bool:
    """Latin and another script each hold at least a quarter of the letters (of a text whose
    placeholders are blanked already)."""
    if text.isascii():  # its letters, if any, are all Latin
        return False
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    latin = sum(1 for ch in letters if ch < "\u0250")
    return 0.25 <= latin / len(letters) <= 0.75


class LanguageGate:
    """``detect(text)`` gives (language, confident); a text confidently in a language outside
    ``supported`` is one the model does not cover."""

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
