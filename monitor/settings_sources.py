"""Settings of brands, their sources, the shared HTTP client and source health (re-exported by config.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from monitor.settings_programme import ProgrammeSettings
from monitor.settings_types import BaseUrl, Duration, HttpUrl, Retention, Secret, Strict, Term


class Terms(Strict):
    """What a brand's mentions look like. Quoted phrases ("acme cloud") match as phrases."""

    include: list[Term] = Field(min_length=1)
    exclude: list[Term] = []
    whole_word: bool = True
    case_sensitive: bool = False


class SourceBase(Strict):
    """Settings every source has. ``name`` defaults to the type; it names the job,
    its cursor and its health record together with the brand."""

    name: str | None = None
    every: Duration = timedelta(minutes=15)
    base_url: BaseUrl | None = None  # default: the real service; override for proxies and mirrors
    terms: Terms | None = None  # per-source override of the brand's terms
    enabled: bool = True
    max_pages: int = Field(default=5, ge=1, le=1000)
    match_all: bool = False  # keep every item, not only those matching the terms (e.g. the brand's own feed)
    retention: Retention | None = None  # delete this source's mentions older than this (default: the brand's)


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
    urls: list[HttpUrl] = []
    language: str = "en-US"  # google_news: hl
    country: str = "US"  # google_news: gl
    subreddits: list[str] = []  # reddit_search: search only these
    max_entries: int = Field(default=500, ge=1, le=10_000)

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
    instance: BaseUrl = "https://mastodon.social"
    hashtags: list[str] = []  # default: the brand's include terms without spaces
    search: bool = False
    token: Secret | None = None

    @model_validator(mode="after")
    def _search_needs_token(self) -> MastodonSettings:
        if self.search and self.token is None:
            raise ValueError("search needs a token (status search requires login)")
        return self

    @model_validator(mode="after")
    def _base_url_is_the_instance(self) -> MastodonSettings:
        """Every source takes ``base_url``; for Mastodon it is the server, so it must not be
        ignored in favour of the default instance."""
        if self.base_url:
            if "instance" in self.model_fields_set and self.instance != self.base_url:
                raise ValueError(f"instance ({self.instance}) and base_url ({self.base_url}) name different "
                                 "servers: give one of them (both mean the Mastodon server)")
            object.__setattr__(self, "instance", self.base_url)  # frozen model: set once, while validating
        return self


class GitHubSettings(SourceBase):
    """GitHub issues and pull requests naming the brand (REST search API). A token is
    optional: without one search allows 10 requests a minute, with one 30. ``base_url``:
    GitHub Enterprise (``https://github.example.com/api/v3``). ``discussions``: also
    discussions naming the brand (GraphQL search, which needs the token: without one they
    are skipped, and ``monitor check`` says so)."""

    type: Literal["github"]
    token: Secret | None = None
    fetch_followers: bool = True
    discussions: bool = False

    def config_notes(self) -> list[str]:
        """What ``monitor check`` tells about settings that are valid but do less than they say."""
        if self.discussions and self.token is None:
            return ["discussions need a token (GitHub's GraphQL API refuses anonymous calls): "
                    "only issues and pull requests are searched"]
        return []


class YouTubeSettings(SourceBase):
    """YouTube comments (Data API v3, an API ``key`` as ``${ENV}``): the comment threads of the
    new videos of ``channels`` (channel ids, ``UC...``), of ``videos`` (video ids) and, with
    ``search``, of the videos a search for each term finds (at most every ``search_every``: a
    search costs 100 of the ``daily_quota`` units, the other calls 1)."""

    type: Literal["youtube"]
    key: Secret
    channels: list[Annotated[str, Field(pattern=r"^UC[A-Za-z0-9_-]{22}$")]] = []
    videos: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{11}$")]] = []
    search: bool = True
    search_every: Duration = timedelta(hours=6)
    video_days: int = Field(default=7, ge=1, le=365)  # a new video's comments are followed this long
    max_videos: int = Field(default=20, ge=1, le=200)  # videos followed per channel or search
    daily_quota: int = Field(default=10_000, ge=1, le=100_000_000)  # units a day (midnight Pacific time)
    fetch_subscribers: bool = True
    max_pages: int = Field(default=30, ge=1, le=1000)  # requests per query and run (one video page each)

    @model_validator(mode="after")
    def _something_to_watch(self) -> YouTubeSettings:
        if not (self.channels or self.videos or self.search):
            raise ValueError("youtube needs channels, videos or search: true")
        return self


class StackExchangeSettings(SourceBase):
    """Stack Exchange questions and answers naming the brand (API 2.3, one ``site``). No key
    needed; an app ``key`` (stackapps.com) as ``${ENV}`` raises the daily quota from 300 to
    10,000 requests."""

    type: Literal["stackexchange"]
    site: str = Field(default="stackoverflow", pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")
    key: Secret | None = None


class GooglePlaySettings(SourceBase):
    """Google Play reviews of an app (package id), per language and country, newest first.
    Experimental and unofficial (the web store's own batchexecute RPC; Google Play's terms do
    not allow automated access): no key, stars kept like the App Store's."""

    type: Literal["googleplay"]
    app_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$", max_length=200)]] = (
        Field(min_length=1))
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]] = Field(
        default=["en"], min_length=1)
    countries: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = Field(default=["us"], min_length=1)
    match_all: bool = True  # reviews of the brand's own app are about the brand


def _server_url(settings: SourceBase, field: str, what: str) -> None:
    """``field`` (``instance``, ``forum``) and ``base_url`` both name the server of a source that
    has no default one: one of them is needed, and two different ones are a mistake."""
    own = getattr(settings, field)
    if settings.base_url:
        if own is not None and own != settings.base_url:
            raise ValueError(f"{field} ({own}) and base_url ({settings.base_url}) name different servers: give one "
                             f"of them (both mean the {what})")
        object.__setattr__(settings, field, settings.base_url)  # frozen model: set once, while validating
    elif own is None:
        raise ValueError(f"{field} is required: the URL of the {what}")


class LemmySettings(SourceBase):
    """Lemmy posts and comments naming the brand (API v3 search, any instance, no login).
    ``instance`` (or ``base_url``): the server searched; with ``listing_type: All`` it searches
    what it federates from other instances too."""

    type: Literal["lemmy"]
    instance: BaseUrl | None = None
    types: list[Literal["posts", "comments"]] = Field(default=["posts", "comments"], min_length=1)
    listing_type: Literal["All", "Local"] = "All"
    search_budget: int = Field(default=50, ge=1, le=10_000)  # searches in any 10 minutes (Lemmy allows 60)

    @model_validator(mode="after")
    def _instance(self) -> LemmySettings:
        _server_url(self, "instance", "Lemmy instance")
        return self


class DiscourseSettings(SourceBase):
    """A Discourse forum's posts naming the brand (``mode: search``) or all its new posts
    (``mode: latest``, for the brand's own forum). ``forum`` (or ``base_url``): the forum's URL.
    ``api_key``/``api_username`` (``${ENV}``, both or neither) for a forum that needs a login."""

    type: Literal["discourse"]
    forum: BaseUrl | None = None
    mode: Literal["search", "latest"] = "search"
    full_text: bool = True  # search: fetch the whole posts of the hits (one request per topic), not only excerpts
    api_key: Secret | None = None
    api_username: Secret | None = None

    @model_validator(mode="after")
    def _forum(self) -> DiscourseSettings:
        _server_url(self, "forum", "Discourse forum")
        if (self.api_key is None) != (self.api_username is None):
            raise ValueError("api_key and api_username go together: Discourse needs both")
        return self


SourceSettings = Annotated[
    HackerNewsSettings | DemoSettings | RedditSettings | FeedSettings | AppStoreSettings | BlueskySettings
    | MastodonSettings | GitHubSettings | StackExchangeSettings | YouTubeSettings | GooglePlaySettings | LemmySettings
    | DiscourseSettings,
    Field(discriminator="type"),
]


class HttpSettings(Strict):
    """The HTTP client every source shares (http_client.py)."""

    allow_networks: list[str] = []  # non-public networks sources may reach, e.g. 10.0.0.0/8 for an internal mirror
    per_host_interval: float = Field(default=1.0, ge=0.0, le=3600.0)  # seconds between requests to one host
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    deadline: float = Field(default=30.0, gt=0, le=3600.0)  # seconds

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


ExampleText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Brand(Strict):
    name: str = Field(min_length=1)
    terms: Terms
    sources: list[SourceSettings] = []
    retention: Retention | None = None  # delete mentions older than this (a source's own retention wins)
    competitor: bool = False  # someone else's brand, watched for share of voice (monitor share, the Compare page)
    # relevance (monitor.relevance): texts that are about this brand and that are not (another
    # meaning of its name); with marks from the web page they teach a model over the stored
    # sentence vectors; mentions scoring under the threshold are kept but left out of figures
    about: list[ExampleText] = []
    not_about: list[ExampleText] = []
    relevance_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # the advocate programme (monitor.programme): referral link, UTM parameters, currency
    programme: ProgrammeSettings | None = None

    @model_validator(mode="after")
    def _unique_source_names(self) -> Brand:
        seen = set()
        for s in self.sources:
            key = s.name or s.type
            if key in seen:
                raise ValueError(f"two sources are named {key!r}; give one a distinct 'name'")
            seen.add(key)
        return self
