"""Text preparation shared by training and inference (no torch here)."""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 20_000  # cut before tokenising: tokeniser time grows with input size
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_USER = re.compile(r"(?<!\w)@\w{1,30}")


def clean(text: str) -> str:
    """Normalise untrusted text for the model: NFC, no control chars or lone surrogates,
    URLs and @handles replaced by placeholders (as in the training tweets), bounded size.

    Long texts keep their beginning and their end: a review's conclusion is usually last.
    """
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    text = _URL.sub("http", text)
    text = _USER.sub("@user", text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > MAX_CHARS:
        half = MAX_CHARS // 2
        text = text[:half] + " … " + text[-half:]
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def head_tail(ids: list[int], max_len: int, head_share: float = 0.5) -> list[int]:
    """Cut a token id list (with [CLS] first and [SEP] last) to max_len keeping the
    head and the tail of the text rather than only its head."""
    if len(ids) <= max_len:
        return ids
    body = ids[1:-1]
    room = max_len - 2
    head = int(room * head_share)
    tail = room - head
    return [ids[0], *body[:head], *body[len(body) - tail :], ids[-1]]
