"""Settings of advocate scores and the web page (re-exported by config.py)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from monitor.settings_types import BaseUrl, Duration, Strict


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
    # the two share components (stance, consistency) count this many extra passive mentions
    # (weeks): one mention cannot make a full share, and a score nears 100 only on evidence
    evidence_prior: float = Field(default=2, ge=0, le=1000)
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
    # failed logins (counted in memory) in a sliding window, beyond which /login answers 429
    # until the oldest leaves the window; 0 turns a limit off; a successful login resets the name's count
    login_max_failures_per_name: int = Field(default=5, ge=0)
    login_max_failures_per_address: int = Field(default=20, ge=0)
    login_failure_window: Duration = timedelta(minutes=15)
    public_url: BaseUrl | None = None  # e.g. https://monitor.example.com, for links in alerts
    # /metrics (Prometheus text format): operational counts and per-source health, no text;
    # served without login (a scraper has no session) like /healthz, so only when turned on
    metrics: bool = False
