"""One redaction for all text that leaves the process: log records (the CLI's logging
filter), errors stored in the database (source runs, deliveries, delivery attempts) and
alerts, which carry those errors to every channel.

It is built from every secret of the settings and hides each secret's value whole, and
also its parts. URL-shaped secrets are split so that a library that logs a piece of a URL
cannot leak it either: Apprise at DEBUG logs the Slack tokens of ``slack://A/B/C`` one by
one, and the user, path and token of ``json://user:pass@host/path?token=...``. The parts
are the user and password, each path segment, each query value and, for a scheme other
than http(s), the host, which for Slack, Discord or Telegram URLs is a token. Parts of
fewer than ``MIN_PART`` characters and common words of URL paths are left alone. Each
piece is also matched percent-encoded, percent-decoded and as ``repr()`` escapes it (h11
quotes a bad header value as bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote

MASK = "***"
MIN_PART = 4  # shorter parts ("api", "v2") would mask innocent text everywhere
_COMMON = frozenset({
    "hook", "hooks", "webhook", "webhooks", "services", "service", "incoming", "notify", "notifications", "message",
    "messages", "send", "post", "json", "jsons", "xml", "form", "forms", "apprise", "slack", "discord", "msteams",
    "teams", "alerts", "alert", "channel", "channels", "default", "true", "false", "none", "null", "markdown", "text",
    "html", "http", "https", "localhost", "index", "rest",
})


def secret_parts(value: str) -> set[str]:
    """``value`` and, when it is URL-shaped, its secret-bearing parts (see the module)."""
    parts = {value}
    scheme, sep, rest = value.partition("://")
    if not sep:
        return parts
    rest = rest.split("#", 1)[0]
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        parts |= {user, password}
    if scheme.lower() not in ("http", "https") and "." not in host and host.lower() != "localhost":
        parts |= {host, *host.split(":")}  # slack://T.../B.../..., tgram://<bot id>:<token>/...
    parts |= set(path.split("/"))
    parts |= {v for _, v in parse_qsl(query, keep_blank_values=True)}
    return {p for p in parts if p == value or (len(p) >= MIN_PART and p.lower() not in _COMMON)}


def _forms(piece: str) -> set[str]:
    """How ``piece`` may appear in text: as is, percent-encoded or decoded, escaped as
    repr() or JSON escape it."""
    return {piece, quote(piece, safe=""), unquote(piece), repr(piece)[1:-1], json.dumps(piece)[1:-1]}


class Redactor:
    """``redactor(text)``: ``text`` with every secret (and secret part) replaced by ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for secret in secrets:
            secret = (secret or "").strip()
            if len(secret) < MIN_PART:
                continue
            for part in secret_parts(secret):
                needles |= {form for form in _forms(part) if len(form) >= MIN_PART}
        # longest first: a whole URL goes before its parts, so no fragment of it is left
        ordered = sorted(needles, key=lambda n: (-len(n), n))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)

    @classmethod
    def from_settings(cls, settings) -> Redactor:
        return cls(collect_secrets(settings))


def collect_secrets(obj) -> list[str]:
    """The value of every SecretStr in a settings tree (models, dicts, lists)."""
    from pydantic import BaseModel, SecretStr

    found: list[str] = []
    if isinstance(obj, SecretStr):
        found.append(obj.get_secret_value())
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            found += collect_secrets(getattr(obj, name))
    elif isinstance(obj, dict):
        for v in obj.values():
            found += collect_secrets(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            found += collect_secrets(v)
    return found
