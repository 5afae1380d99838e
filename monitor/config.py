"""config.yaml -> validated pydantic models. The only reader of config files and env vars.

Secrets are never written in the file: a secret field must be an ``${ENV_VAR}``
reference, resolved here from the environment and held as ``SecretStr`` so it never
shows in a repr or a log line. Every problem is reported with its key path and line.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError

ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
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


# --------------------------------------------------------------------------- brands


class Terms(Strict):
    """What a brand's mentions look like. Quoted phrases ("acme cloud") match as phrases."""

    include: list[str] = Field(min_length=1)
    exclude: list[str] = []
    whole_word: bool = True
    case_sensitive: bool = False

    @field_validator("include", "exclude")
    @classmethod
    def _no_blank(cls, v: list[str]) -> list[str]:
        cleaned = [t.strip() for t in v]
        if any(not t.strip('"') for t in cleaned):
            raise ValueError("terms must not be empty")
        return cleaned


class SourceBase(Strict):
    """Settings every source has. ``name`` defaults to the type; it names the job,
    its cursor and its health record together with the brand."""

    name: str | None = None
    every: Duration = timedelta(minutes=15)
    base_url: str | None = None  # default: the real service; override for proxies and mirrors
    terms: Terms | None = None  # per-source override of the brand's terms
    enabled: bool = True
    max_pages: int = Field(default=5, ge=1, le=1000)
    match_all: bool = False  # keep every item, not only those matching the terms (e.g. the brand's own feed)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("base_url must be an http:// or https:// URL")
        return v.rstrip("/") if v else v


class HackerNewsSettings(SourceBase):
    type: Literal["hackernews"]
    tags: list[Literal["story", "comment"]] = ["story", "comment"]
    fetch_karma: bool = True


class DemoSettings(SourceBase):
    """Sample mentions shipped with the package: works with no network."""

    type: Literal["demo"]


class RedditSettings(SourceBase):
    """Reddit through PRAW, read-only (script app: client id and secret, no password).
    ``base_url`` replaces both www.reddit.com and oauth.reddit.com (a local replay)."""

    type: Literal["reddit"]
    client_id: Secret
    client_secret: Secret
    # default: the global user_agent; Reddit wants "<platform>:<app>:<version> (by u/<name>)"
    user_agent: str | None = None
    subreddits: list[str] = []  # empty: search all of Reddit
    search: bool = True  # keyword search of submissions (Reddit has no comment search)
    watch: list[Literal["submissions", "comments"]] = []  # new items in `subreddits`, filtered locally
    time_filter: Literal["hour", "day", "week", "month", "year", "all"] = "week"
    limit: int = Field(default=250, ge=1, le=1000)  # items per query and run
    fetch_karma: bool = True

    @model_validator(mode="after")
    def _watch_needs_subreddits(self) -> RedditSettings:
        if self.watch and not self.subreddits:
            raise ValueError("watch needs subreddits: the whole of Reddit is too fast to follow")
        return self


class FeedSettings(SourceBase):
    """RSS/Atom. ``preset`` builds the URLs from the brand's terms (google_news,
    reddit_search) or cleans entries (google_alerts: feed URLs from your Google account)."""

    type: Literal["feed"]
    preset: Literal["generic", "google_alerts", "google_news", "reddit_search"] = "generic"
    urls: list[str] = []
    language: str = "en-US"  # google_news: hl
    country: str = "US"  # google_news: gl
    subreddits: list[str] = []  # reddit_search: search only these
    max_entries: int = Field(default=500, ge=1, le=10_000)

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, v: list[str]) -> list[str]:
        for u in v:
            if not re.match(r"^https?://[^\s/]+", u):
                raise ValueError(f"{u!r} is not an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _urls_for_generic(self) -> FeedSettings:
        if self.preset in ("generic", "google_alerts") and not self.urls:
            raise ValueError(f"preset {self.preset} needs urls")
        return self


class AppStoreSettings(SourceBase):
    """Apple App Store customer reviews (the public JSON feed), per app and country."""

    type: Literal["appstore"]
    app_ids: list[int] = Field(min_length=1)
    countries: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = ["us"]
    match_all: bool = True  # reviews of the brand's own app are about the brand


class BlueskySettings(SourceBase):
    """Bluesky post search (needs an account and an app password since Jan 2025)."""

    type: Literal["bluesky"]
    handle: str
    app_password: Secret
    fetch_followers: bool = True


class MastodonSettings(SourceBase):
    """Mastodon hashtag timelines (no login, where the instance allows it) and, with a
    token, status search (where the instance offers full-text search)."""

    type: Literal["mastodon"]
    instance: str = "https://mastodon.social"
    hashtags: list[str] = []  # default: the brand's include terms without spaces
    search: bool = False
    token: Secret | None = None

    @field_validator("instance")
    @classmethod
    def _instance_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("instance must be an http:// or https:// URL")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _search_needs_token(self) -> MastodonSettings:
        if self.search and self.token is None:
            raise ValueError("search needs a token (status search requires login)")
        return self


SourceSettings = Annotated[
    HackerNewsSettings | DemoSettings | RedditSettings | FeedSettings | AppStoreSettings | BlueskySettings
    | MastodonSettings,
    Field(discriminator="type"),
]


class HttpSettings(Strict):
    """The HTTP client every source shares (collect/_http.py)."""

    allow_networks: list[str] = []  # non-public networks sources may reach, e.g. 10.0.0.0/8 for an internal mirror
    per_host_interval: float = Field(default=1.0, ge=0.0, le=3600.0)  # seconds between requests to one host
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    deadline: float = Field(default=30.0, gt=0)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for n in v:
            ipaddress.ip_network(n, strict=False)  # ValueError -> a config problem
        return v


class HealthSettings(Strict):
    """When a source counts as broken (monitor status; a `source-health` alert)."""

    max_failures: int = Field(default=3, ge=1)  # consecutive failed runs
    zero_runs: int = Field(default=3, ge=1)  # consecutive empty runs, when the baseline had results
    baseline_runs: int = Field(default=20, ge=2)  # runs before the empty streak forming the baseline
    baseline_nonzero: float = Field(default=0.8, gt=0.0, le=1.0)  # share of baseline runs with results
    channels: list[str] = []  # where `source-health` alerts go; empty: every configured channel
    severity: Literal["info", "warning", "critical"] = "critical"


class Brand(Strict):
    name: str = Field(min_length=1)
    terms: Terms
    sources: list[SourceSettings] = []

    @model_validator(mode="after")
    def _unique_source_names(self) -> Brand:
        seen = set()
        for s in self.sources:
            key = s.name or s.type
            if key in seen:
                raise ValueError(f"two sources are named {key!r}; give one a distinct 'name'")
            seen.add(key)
        return self


# ----------------------------------------------------------------------- classifier


class ClassifierSettings(Strict):
    engine: Literal["onnx", "torch"] = "onnx"
    # A folder (relative to config.yaml's folder) or, with the torch engine, a Hugging Face
    # hub id of any sequence-classification model.
    model: str = "models/advocacy-minilm"
    batch_size: int = Field(default=64, ge=1, le=4096)
    threads: int = Field(default=2, ge=1, le=256)
    uncertain_below: float = Field(default=0.5, ge=0.0, le=1.0)
    cache_dir: str | None = None  # where the exported ONNX model is kept; default next to the database
    # Language codes the model covers; texts confidently in another language are stored as
    # status unsupported_language. Default: the model's monitor.json (en), or any language
    # for other models; [] turns the check off.
    languages: list[str] | None = None


# --------------------------------------------------------------------------- alerts

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
Sentiment = Literal["negative", "neutral", "positive"]
Stance = Literal["promoter", "detractor", "none"]
KeyPart = Literal["rule", "brand", "source", "author"]


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
    terms: list[str] = []  # any of these words or "quoted phrases" (whole word, any case)
    exclude_terms: list[str] = []
    languages: list[str] = []
    known_author: Literal["advocate", "detractor"] | None = None
    known_author_min_mentions: int = Field(default=2, ge=1)
    known_author_min_share: float = Field(default=0.6, gt=0.0, le=1.0)
    include_uncertain: bool = True
    include_duplicates: bool = False  # the same link seen again (cross-posts) alerts once by default

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
    channels: list[str] = Field(min_length=1)
    severity: Severity = "warning"
    cooldown: Duration | None = None  # after an alert, the same rule and key stays quiet this long
    cooldown_by: Annotated[list[KeyPart], BeforeValidator(_as_list)] = ["brand"]
    group: Grouping | None = None
    digest: Digest | None = None

    @model_validator(mode="after")
    def _one_batching(self) -> AlertRule:
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
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use e.g. Europe/Berlin)") from None
        return v


class ChannelBase(Strict):
    min_severity: Severity = "info"
    quiet_hours: QuietHours | None = None


class ConsoleChannelSettings(ChannelBase):
    type: Literal["console"]


class WebhookChannelSettings(ChannelBase):
    """Our JSON webhook: POSTs the alert with a stable ``Idempotency-Key`` header."""

    type: Literal["webhook"]
    url: Secret  # ${ENV}: webhook URLs carry tokens
    signing_secret: Secret | None = None  # HMAC-SHA256 signature header when set
    timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _http(cls, v: SecretStr) -> SecretStr:
        value = v.get_secret_value()
        if value and not re.match(r"^https?://[^\s/]+", value):  # empty: already reported as unset
            raise ValueError("the webhook URL must be an http:// or https:// URL")
        return v


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
    web_base_url: str | None = None  # links in alerts: <web_base_url>/mentions/<id>
    max_attempts: int = Field(default=8, ge=1, le=100)  # then the delivery is dead-lettered
    backoff_base: Duration = timedelta(seconds=5)
    backoff_max: Duration = timedelta(hours=1)

    @field_validator("web_base_url")
    @classmethod
    def _web_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("web_base_url must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

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
        return {r.name: [c for c in r.channels if SEVERITY_RANK[r.severity] >= SEVERITY_RANK[self.channels[c].min_severity]]
                for r in self.rules}


# ------------------------------------------------------------------------- advocates


class AdvocateWeights(Strict):
    """Weights of the advocate/detractor score components (the score is their weighted
    mean, 0-100)."""

    stance: float = Field(default=40, ge=0)  # share of the author's classified mentions with that stance
    volume: float = Field(default=20, ge=0)  # how many such mentions (log scale, saturating at volume_cap)
    reach: float = Field(default=15, ge=0)  # followers/karma (log scale, saturating at reach_cap)
    recency: float = Field(default=15, ge=0)  # how recent the latest such mention is (half-life)
    consistency: float = Field(default=10, ge=0)  # share of active weeks with that stance


class AdvocateSettings(Strict):
    advocate_min_score: float = Field(default=50, ge=0, le=100)
    advocate_min_mentions: int = Field(default=2, ge=1)
    detractor_min_score: float = Field(default=50, ge=0, le=100)
    detractor_min_mentions: int = Field(default=1, ge=1)
    weights: AdvocateWeights = AdvocateWeights()
    volume_cap: int = Field(default=10, ge=1)
    reach_cap: int = Field(default=100_000, ge=10)
    recency_half_life: Duration = timedelta(days=60)
    # advocacy index: below this many classified mentions a week shows "n<min", not a number
    index_min_sample: int = Field(default=30, ge=1)
    index_confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    # classifications of this model are read; default: the model of the newest classification
    model: str | None = None


class WebSettings(Strict):
    """The browse page: ``monitor serve``, or inside ``monitor run`` when enabled."""

    enabled: bool = False  # also serve from ``monitor run``
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=1, le=65535)
    # Host header allow-list (DNS rebinding): add the reverse proxy's public name
    allowed_hosts: list[str] = ["127.0.0.1", "localhost", "::1"]
    secure_cookies: bool = False  # true behind https; false for plain-http localhost
    session_lifetime: Duration = timedelta(hours=12)
    public_url: str | None = None  # e.g. https://monitor.example.com, for links in alerts


# --------------------------------------------------------------------------- top level


class Settings(Strict):
    database: str = "monitor.db"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    user_agent: str = "monitor/0.1 (self-hosted brand monitor; +https://github.com/monitor-oss/monitor)"
    brands: list[Brand] = Field(min_length=1)
    classifier: ClassifierSettings = ClassifierSettings()
    classify_every: Duration = timedelta(minutes=1)
    alerts: AlertSettings = AlertSettings()
    http: HttpSettings = HttpSettings()
    health: HealthSettings = HealthSettings()
    advocates: AdvocateSettings = AdvocateSettings()
    web: WebSettings = WebSettings()
    # set by the loader: the folder relative paths are resolved against
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _unique_brands(self) -> Settings:
        names = [b.name for b in self.brands]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate brand names: {', '.join(sorted(dup))}")
        for rule in self.alerts.rules:
            for b in rule.when.brands:
                if b not in names:
                    raise ValueError(f"alert rule {rule.name!r} names unknown brand {b!r}")
        for ch in self.health.channels:
            if ch not in self.alerts.channels:
                raise ValueError(f"health.channels: unknown channel {ch!r}")
        return self

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_path(self) -> Path:
        return self.path(self.database)

    def source_jobs(self) -> list[tuple[Brand, Any]]:
        """(brand, source settings) for every enabled source, in file order."""
        return [(b, s) for b in self.brands for s in b.sources if s.enabled]


# ----------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps line numbers for error messages."""


def _resolve_env(node: Any, env: dict[str, str], path: str, problems: list[str], lines: dict) -> Any:
    if isinstance(node, dict):
        return {k: _resolve_env(v, env, f"{path}.{k}" if path else str(k), problems, lines) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, env, f"{path}[{i}]", problems, lines) for i, v in enumerate(node)]
    if isinstance(node, str):
        m = ENV_REF.match(node.strip())
        if m:
            var = m.group(1)
            if var not in env or env[var] == "":
                problems.append(f"{_where(lines, path)}{path}: environment variable {var} is not set")
                return SecretStr("")
            return SecretStr(env[var])
        if "${" in node:
            problems.append(f"{_where(lines, path)}{path}: write an env reference alone, as ${{NAME}}")
    return node


def _line_map(text: str) -> dict[str, int]:
    """key path ("alerts.rules[0].name") -> 1-based line, from the YAML node tree."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return lines

    def walk(node, path):
        if node is None:
            return
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                sub = f"{path}.{k.value}" if path else str(k.value)
                lines[sub] = k.start_mark.line + 1
                walk(v, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, f"{path}[{i}]")

    walk(root, "")
    return lines


def _where(lines: dict[str, int], path: str) -> str:
    probe = path
    while probe:
        if probe in lines:
            return f"line {lines[probe]}: "
        shorter = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", probe)
        if shorter == probe:
            break
        probe = shorter
    return ""


def _loc_to_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _is_tag(part: Any, known_tags: set[str]) -> bool:
    return isinstance(part, str) and part in known_tags


def load_settings(path: str | Path, env: dict[str, str] | None = None) -> Settings:
    """Read and validate a config file; raise ConfigError listing every problem."""
    file = Path(path)
    env = dict(os.environ) if env is None else env
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: {where}YAML syntax error: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys, not {type(data).__name__}")
    lines = _line_map(text)
    problems: list[str] = []
    data = _resolve_env(data, env, "", problems, lines)
    data["base_dir"] = file.resolve().parent
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        tags = _discriminator_tags()
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not _is_tag(p, tags))
            key = _loc_to_path(loc) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key{_did_you_mean(loc, err)}"
            elif err["type"] == "missing":
                msg = "required key is missing"
            elif err["type"] == "union_tag_invalid":
                given = err.get("input", {})
                given = given.get("type", given.get("kind")) if isinstance(given, dict) else given
                msg = f"unknown type {given!r}; expected one of {err['ctx'].get('expected_tags')}"
            problems.append(f"{_where(lines, key)}{key}: {msg}")
    if problems:
        raise ConfigError(f"{file}: {len(problems)} problem(s)", [f"{file}: {p}" for p in problems])
    return settings


def _typed_models() -> dict[str, type[BaseModel]]:
    """Every settings model with a ``type: Literal[...]`` tag, by tag."""
    found: dict[str, type[BaseModel]] = {}
    stack = list(Strict.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        f = cls.model_fields.get("type") or cls.model_fields.get("kind")
        if f is not None and len(getattr(f.annotation, "__args__", ())) == 1:
            found[f.annotation.__args__[0]] = cls
    return found


def _discriminator_tags() -> set[str]:
    return set(_typed_models())


def _did_you_mean(loc: tuple, err: dict) -> str:
    import difflib

    model_fields = _fields_at(loc[:-1])
    if not model_fields:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), model_fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields_at(loc: tuple) -> list[str]:
    model: Any = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if isinstance(part, str) and part in _discriminator_tags():
            model = _model_for_tag(part)
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _inner_model(field.annotation)
    return list(getattr(model, "model_fields", {}).keys()) if model else []


def _model_for_tag(tag: str):
    return _typed_models().get(tag)


def _inner_model(annotation):
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
