"""Settings of the scheduled weekly report (re-exported by config.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from monitor.settings_types import Strict

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ReportSettings(Strict):
    """The weekly per-brand report (``monitor report``): sent on ``day`` at ``hour`` (in
    ``timezone``) for the ISO week that ended before, once per brand and week, through
    ``channels`` (e-mail channels get the HTML report, chat channels a short summary with a
    link to the printable page). ``brands``: empty, every brand not marked competitor."""

    enabled: bool = False
    day: Weekday = "mon"
    hour: int = Field(default=8, ge=0, le=23)
    timezone: str = "UTC"
    brands: list[str] = []
    channels: list[str] = []
    top: int = Field(default=5, ge=1, le=50)  # advocates, detractors, themes and notable mentions shown

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {v[:60]!r} (use e.g. Europe/Berlin)") from None
        return v
