"""Building blocks of the settings models: the strict base model, durations and secrets."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """'90s', '10m', '2h', '7d', '1w' or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 2h, 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 2h, 7d)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _secret(value: Any) -> Any:
    if value is None or isinstance(value, SecretStr):
        return value
    raise ValueError("secrets must be written as an ${ENV_VAR} reference, not as a literal value")


# A secret field: the loader replaces "${VAR}" with a SecretStr before validation, so a
# plain string arriving here was written literally in the file.
Secret = Annotated[SecretStr, BeforeValidator(_secret)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
