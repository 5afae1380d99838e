"""Settings of a brand's advocate programme (``programme:`` under a brand; re-exported by
config.py): where a personal referral link points, its UTM parameters and the parameter
that carries the advocate's code, and the currency of rewards and referral values."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from monitor.settings_types import HttpUrl, Strict

UtmValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class UtmSettings(Strict):
    """The UTM parameters of every referral link (``utm_source``, ``utm_medium``, ``utm_campaign``)."""

    source: UtmValue = "monitor"
    medium: UtmValue = "advocate"
    campaign: UtmValue | None = None


class ProgrammeSettings(Strict):
    """A brand's advocate programme. The personal referral link is ``url`` with the UTM
    parameters and ``code_param=<the advocate's code>`` added to its query (the URL's own
    query stays); imported referrals name that code."""

    url: HttpUrl
    utm: UtmSettings = UtmSettings()
    # the query parameter carrying the code: e.g. ref (default) or utm_content
    code_param: str = Field(default="ref", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")  # ISO 4217 code of reward and referral values
