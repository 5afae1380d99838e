"""Building blocks of the settings models: the strict base model and the one type of each
kind of value (durations, terms, URLs, secrets), so every field of a kind is checked alike."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

# ------------------------------------------------------------------------------ durations

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_DURATION = timedelta(seconds=1)
MAX_DURATION = timedelta(days=3653)  # ten years: longer is a typo, and date arithmetic would overflow


def parse_duration(value: Any) -> timedelta:
    """'90s', '10m', '2h', '7d', '1w' or a number of seconds; from 1 second to 10 years."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 2h, 7d")
    elif isinstance(value, int | float):
        seconds = float(value) if abs(value) < 1e300 else math.copysign(math.inf, value > 0 or -1)  # 10**400
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{value[:40]!r} is not a duration (use e.g. 30s, 10m, 2h, 7d)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError("expected a duration such as 30s, 10m, 2h, 7d")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds < MIN_DURATION.total_seconds():
        raise ValueError("a duration must be at least 1 second (1s)")
    if seconds > MAX_DURATION.total_seconds():  # inf included
        raise ValueError("a duration must be at most 10 years (3653d)")
    return timedelta(seconds=seconds)


# Every duration of the settings: positive, at least a second, at most ten years.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _retention(value: timedelta) -> timedelta:
    if value < timedelta(days=1):
        raise ValueError("a retention must be at least 1 day (1d): shorter would delete mentions before they are "
                         "classified and alerted on")
    return value


# How long mentions are kept (``retention: 400d``): a duration of at least a day.
Retention = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_retention)]

# ---------------------------------------------------------------------------------- terms


def term_phrase(term: str) -> str:
    """What a term matches: the words inside its quotes ('"acme cloud"' -> 'acme cloud')."""
    return term.strip().strip('"').strip()


def _term(value: str) -> str:
    term = value.strip()
    if not term_phrase(term):
        raise ValueError("a term must contain a word: empty, blank and bare-quote terms would match everything "
                         "or nothing")
    return term


# A brand or rule term: a word or a "quoted phrase", never empty once its quotes and spaces go.
Term = Annotated[str, AfterValidator(_term)]

# ----------------------------------------------------------------------------------- URLs

_HOST = re.compile(r"^[^\s/?#@:\[\]<>\\\"'{}|^`%]+$")


def check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host: no spaces or control characters, a valid port."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a URL must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError when not a number in 0-65535
        host = parts.hostname
    except ValueError:
        raise ValueError("not a valid URL: its port or [IPv6] host is malformed") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not host:
        raise ValueError("the URL has no host name")
    if not (host.startswith("[") or ":" in host or _HOST.match(host)) or ".." in host or port == 0:
        raise ValueError("the URL's host is not a valid host name")
    return value


def _base_url(value: str) -> str:
    return value.rstrip("/")


# Every URL of the settings. BaseUrl: a prefix paths are appended to (no trailing slash).
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
BaseUrl = Annotated[str, AfterValidator(check_http_url), AfterValidator(_base_url)]

# -------------------------------------------------------------------------------- secrets


def _secret(value: Any) -> Any:
    if value is None or isinstance(value, SecretStr):
        return value
    raise ValueError("secrets must be written as an ${ENV_VAR} reference, not as a literal value")


def _secret_http_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    if url:  # empty: already reported as an unset environment variable
        check_http_url(url)  # its messages quote no part of the URL, which may carry tokens
    return value


# A secret field: the loader replaces "${VAR}" with a SecretStr before validation, so a
# plain string arriving here was written literally in the file.
Secret = Annotated[SecretStr, BeforeValidator(_secret)]
SecretHttpUrl = Annotated[SecretStr, BeforeValidator(_secret), AfterValidator(_secret_http_url)]


class Strict(BaseModel):
    # allow_inf_nan=False: no setting is infinite or NaN (.inf, .nan in YAML)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
