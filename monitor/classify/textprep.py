"""Text preparation shared by training and inference (no torch here)."""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 20_000  # cut before tokenising: tokeniser time grows with input size
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_USER = re.compile(r"(?<!\w)@\w{1,30}")


def clean(text: str, target: str | None = None) -> str:
    """Normalise untrusted text for the model: NFC, no control chars or lone surrogates,
    URLs and @handles replaced by placeholders (as in the training tweets), bounded size.
    With a ``target`` brand, handles that are the brand's own (``@SouthwestAir`` for
    "Southwest") are kept: who the post addresses is what a targeted model must see.

    Long texts keep their beginning and their end: a review's conclusion is usually last.
    """
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    text = _URL.sub("http", text)
    key = target_key(target) if target else ""
    text = _USER.sub(lambda m: m.group(0) if key and _same_handle(m.group(0)[1:].lower(), key) else "@user", text)
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


TARGET_MAX_TOKENS = 16


def target_key(target: str) -> str:
    """Letters and digits of a brand name, lower case: how a handle or hashtag spells it."""
    return re.sub(r"[\W_]+", "", target.lower())


def _same_handle(handle: str, key: str) -> bool:
    short = min(len(handle), len(key))
    return short >= 3 and (key in handle or handle in key)


def clean_target(target: str | None) -> str:
    """The brand as the model reads it: cleaned like a text, without a leading @ or #,
    at most 60 characters ("" for no target)."""
    if not target or not isinstance(target, str):
        return ""
    t = _CONTROL.sub(" ", unicodedata.normalize("NFC", target))
    t = _SPACE.sub(" ", t).strip().lstrip("@#").strip()
    return t[:60]


def with_target(text_ids: list[int], target_ids: list[int], max_len: int) -> list[int]:
    """``[CLS] target [SEP] text [SEP]``: the text window (``[CLS] text [SEP]``, cut with
    ``head_tail`` to what the target leaves) with the target's tokens spliced in after
    [CLS]. No target: the text window alone."""
    if not target_ids:
        return head_tail(text_ids, max_len)
    prefix = [*target_ids[:TARGET_MAX_TOKENS], text_ids[-1]]  # target tokens + [SEP]
    window = head_tail(text_ids, max_len - len(prefix))
    return [window[0], *prefix, *window[1:]]
