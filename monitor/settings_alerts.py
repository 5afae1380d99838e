"""Settings of alert rules and channels (re-exported by config.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from monitor.settings_types import BaseUrl, Duration, Secret, SecretHttpUrl, Strict, Term

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
Sentiment = Literal["negative", "neutral", "positive"]
Stance = Literal["promoter", "detractor", "none"]
KeyPart = Literal["rule", "brand", "source", "author"]
Route = Literal["channels", "inbox"]
Priority = Literal["critical", "high", "normal", "low"]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RuleWhen(Strict):
    """Per-mention conditions; every one given must hold (lists: any of)."""

    brands: list[str] = []
    sources: list[str] = []  # source type (hackernews) or source key (Brand:name)
    sentiment: Annotated[list[Sentiment], BeforeValidator(_as_list)] = []
    advocacy: Annotated[list[Stance], BeforeValidator(_as_list)] = []
    min_probability: float = Field(default=0.0, ge=0.0, le=1.0)  # for both sentiment and advocacy
    min_sentiment_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    min_advocacy_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    min_reach: int | None = Field(default=None, ge=0)
    min_rating: int | None = Field(default=None, ge=1, le=5)
    max_rating: int | None = Field(default=None, ge=1, le=5)
    terms: list[Term] = []  # any of these words or "quoted phrases" (whole word, any case)
    exclude_terms: list[Term] = []
    languages: list[str] = []
    known_author: Literal["advocate", "detractor"] | None = None
    known_author_min_mentions: int = Field(default=2, ge=1)
    known_author_min_share: float = Field(default=0.6, gt=0.0, le=1.0)
    include_uncertain: bool = True
    include_duplicates: bool = False  # the same link seen again (cross-posts) alerts once by default
    question: bool = False  # only mentions that ask something (a sentence ending in '?' or opening how/why/...)

    @model_validator(mode="after")
    def _ratings(self) -> RuleWhen:
        if self.min_rating and self.max_rating and self.min_rating > self.max_rating:
            raise ValueError("min_rating is above max_rating")
        return self


class VolumeSpike(Strict):
    """Matching mentions in the last ``window`` against the brand's own baseline:
    fires when count >= min_count and (count - median) >= threshold * max(1, 1.4826 * MAD)."""

    kind: Literal["volume_spike"]
    window: Duration = timedelta(hours=1)
    baseline: Duration = timedelta(days=7)
    min_count: int = Field(default=5, ge=1)
    threshold: float = Field(default=3.0, gt=0)


class ShareDip(Strict):
    """The share of positive (or promoter) mentions in the last ``window`` fell by at least
    ``drop`` (0.2 = 20 points) below its share over the trailing baseline."""

    kind: Literal["share_dip"]
    of: Literal["positive", "promoter"] = "positive"
    window: Duration = timedelta(days=1)
    baseline: Duration = timedelta(days=14)
    min_count: int = Field(default=10, ge=1)
    drop: float = Field(default=0.2, gt=0.0, le=1.0)


class PromoterTurnedNegative(Strict):
    """An author whose earlier mentions were mostly promoter posted a negative one in ``window``."""

    kind: Literal["promoter_turned_negative"]
    window: Duration = timedelta(days=1)
    min_past: int = Field(default=2, ge=1)
    min_share: float = Field(default=0.6, gt=0.0, le=1.0)
    min_probability: float = Field(default=0.6, ge=0.0, le=1.0)


class SourceSilent(Strict):
    """A source that had at least ``min_count`` mentions over ``baseline`` has had none for ``after``."""

    kind: Literal["source_silent"]
    after: Duration = timedelta(hours=6)
    baseline: Duration = timedelta(days=7)
    min_count: int = Field(default=3, ge=1)


WindowCondition = Annotated[VolumeSpike | ShareDip | PromoterTurnedNegative | SourceSilent, Field(discriminator="kind")]


class Grouping(Strict):
    """One alert per burst: matches with the same key are held for ``wait`` after the first."""

    by: Annotated[list[KeyPart], BeforeValidator(_as_list)] = ["brand"]
    wait: Duration = timedelta(minutes=5)
    examples: int = Field(default=3, ge=1, le=20)


class Digest(Strict):
    """The first ``immediate`` matches of each ``every`` period alert at once; the rest
    arrive as one summary when the period ends."""

    immediate: int = Field(default=3, ge=0)
    every: Duration = timedelta(hours=1)
    examples: int = Field(default=5, ge=1, le=50)


class AlertRule(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    when: RuleWhen = RuleWhen()
    window: WindowCondition | None = None  # absent: a per-mention rule
    channels: list[str] = []  # at least one unless route is inbox only
    # channels: alerts through them; inbox: each match becomes a response-desk item (monitor inbox)
    route: Annotated[list[Route], BeforeValidator(_as_list)] = ["channels"]
    priority: Priority = "normal"  # of the inbox items this rule makes (their SLA: inbox.sla)
    severity: Severity = "warning"
    cooldown: Duration | None = None  # after an alert, the same rule and key stays quiet this long
    cooldown_by: Annotated[list[KeyPart], BeforeValidator(_as_list)] = ["brand"]
    group: Grouping | None = None
    digest: Digest | None = None

    @model_validator(mode="after")
    def _one_batching(self) -> AlertRule:
        if not self.route:
            raise ValueError("route names channels, inbox or both")
        if "channels" in self.route and not self.channels:
            raise ValueError("channels: at least one channel (or route: inbox for the response desk only)")
        if "inbox" in self.route and self.window:
            raise ValueError("route inbox applies to per-mention rules, not to 'window' rules")
        if self.group and self.digest:
            raise ValueError("use either 'group' or 'digest', not both")
        if self.window and (self.group or self.digest):
            raise ValueError("'group' and 'digest' apply to per-mention rules, not to 'window' rules")
        if self.window and set(self.cooldown_by) - {"rule", "brand"}:
            raise ValueError("a 'window' rule's cooldown_by can name only rule and brand")
        return self


class QuietHours(Strict):
    """Deliveries are held from ``start`` to ``end`` (local time) unless their severity is in ``bypass``."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"
    bypass: list[Severity] = ["critical"]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(f"unknown time zone {v[:60]!r} (use e.g. Europe/Berlin)") from None
        return v


class ChannelBase(Strict):
    min_severity: Severity = "info"
    quiet_hours: QuietHours | None = None


class ConsoleChannelSettings(ChannelBase):
    type: Literal["console"]


class WebhookChannelSettings(ChannelBase):
    """Our JSON webhook: POSTs the alert with a stable ``Idempotency-Key`` header."""

    type: Literal["webhook"]
    url: SecretHttpUrl  # ${ENV}: webhook URLs carry tokens
    signing_secret: Secret | None = None  # HMAC-SHA256 signature header when set
    timeout: Duration = timedelta(seconds=10)


class AppriseChannelSettings(ChannelBase):
    """Any Apprise URL (slack://, discord://, msteams://, tgram://, mailtos://, json://...)."""

    type: Literal["apprise"]
    url: Secret


class EmailChannelSettings(ChannelBase):
    """Plain-text e-mail over SMTP with a stable Message-ID per alert."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: Secret | None = None
    sender: str = Field(min_length=3, pattern=r"^[^\r\n]+@[^\r\n]+$")
    to: Annotated[list[Annotated[str, Field(pattern=r"^[^\r\n,]+@[^\r\n,]+$")]], BeforeValidator(_as_list)] = \
        Field(min_length=1)
    timeout: Duration = timedelta(seconds=20)


ChannelSettings = Annotated[
    ConsoleChannelSettings | WebhookChannelSettings | AppriseChannelSettings | EmailChannelSettings,
    Field(discriminator="type"),
]


class AlertSettings(Strict):
    channels: dict[str, ChannelSettings] = {"console": ConsoleChannelSettings(type="console")}
    rules: list[AlertRule] = []
    deliver_every: Duration = timedelta(seconds=30)
    evaluate_every: Duration = timedelta(minutes=1)  # windowed rules, group and digest flushes
    web_base_url: BaseUrl | None = None  # links in alerts: <web_base_url>/mentions/<id>
    # a rule with min_reach waits at most this long for an author's reach still to be looked up
    # (sources look it up after the page, pending authors first); then judges without it
    reach_wait: Duration = timedelta(hours=1)
    max_attempts: int = Field(default=8, ge=1, le=100)  # then the delivery is dead-lettered
    backoff_base: Duration = timedelta(seconds=5)
    backoff_max: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _references(self) -> AlertSettings:
        names = set()
        for i, rule in enumerate(self.rules):
            if rule.name in names:
                raise ValueError(f"rules[{i}]: duplicate rule name {rule.name!r}")
            names.add(rule.name)
            for ch in rule.channels:
                if ch not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none"
                    raise ValueError(f"rules[{i}] ({rule.name}): unknown channel {ch!r} (defined: {known})")
        return self

    def rule(self, name: str) -> AlertRule | None:
        return next((r for r in self.rules if r.name == name), None)

    def channels_for(self) -> dict[str, list[str]]:
        """Rule name -> the channels that take its severity."""
        def takes(rule: AlertRule, channel: str) -> bool:
            return SEVERITY_RANK[rule.severity] >= SEVERITY_RANK[self.channels[channel].min_severity]

        return {r.name: [c for c in r.channels if takes(r, c)] if "channels" in r.route else [] for r in self.rules}
