"""config.yaml -> validated pydantic models. The only reader of config files and env vars.

Secrets are never written in the file: a secret field must be an ``${ENV_VAR}``
reference, resolved here from the environment and held as ``SecretStr`` so it never
shows in a repr or a log line. Every problem is reported with its key path and line.

The per-area models live in settings_types.py, settings_sources.py, settings_alerts.py and
settings_web.py; they read nothing themselves and are all importable from here.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Hashable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.settings_alerts import (
    SEVERITY_RANK,
    AlertRule,
    AlertSettings,
    AppriseChannelSettings,
    ChannelBase,
    ChannelSettings,
    ConsoleChannelSettings,
    Digest,
    EmailChannelSettings,
    Grouping,
    KeyPart,
    PromoterTurnedNegative,
    QuietHours,
    RuleWhen,
    Sentiment,
    Severity,
    ShareDip,
    SourceSilent,
    Stance,
    VolumeSpike,
    WebhookChannelSettings,
    WindowCondition,
)
from monitor.settings_handoff import HandoffSettings, HandoffWebhook
from monitor.settings_inbox import InboxSettings, ReplyTemplate
from monitor.settings_report import ReportSettings
from monitor.settings_sources import (
    AppStoreSettings,
    BlueskySettings,
    Brand,
    DemoSettings,
    DiscourseSettings,
    FeedSettings,
    GitHubSettings,
    GooglePlaySettings,
    HackerNewsSettings,
    HealthSettings,
    HttpSettings,
    LemmySettings,
    MastodonSettings,
    RedditSettings,
    SourceBase,
    SourceSettings,
    StackExchangeSettings,
    Terms,
    YouTubeSettings,
)
from monitor.settings_types import (
    Duration,
    Secret,
    Strict,
    parse_duration,
)
from monitor.settings_web import (
    AdvocateSettings,
    AdvocateWeights,
    WebSettings,
)

ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

# The settings models live in the settings_* modules; every one is importable from here.
__all__ = [
    "ENV_REF",
    "SEVERITY_RANK",
    "AdvocateSettings",
    "AdvocateWeights",
    "AlertRule",
    "AlertSettings",
    "AppStoreSettings",
    "AppriseChannelSettings",
    "BlueskySettings",
    "Brand",
    "ChannelBase",
    "ChannelSettings",
    "ClassifierSettings",
    "ConsoleChannelSettings",
    "DemoSettings",
    "Digest",
    "DiscourseSettings",
    "Duration",
    "EmailChannelSettings",
    "FeedSettings",
    "GitHubSettings",
    "GooglePlaySettings",
    "Grouping",
    "HackerNewsSettings",
    "HandoffSettings",
    "HandoffWebhook",
    "HealthSettings",
    "HttpSettings",
    "InboxSettings",
    "KeyPart",
    "LemmySettings",
    "MastodonSettings",
    "PrivacySettings",
    "PromoterTurnedNegative",
    "QuietHours",
    "RedditSettings",
    "ReplyTemplate",
    "RuleWhen",
    "Secret",
    "Sentiment",
    "Settings",
    "Severity",
    "ShareDip",
    "SourceBase",
    "SourceSettings",
    "SourceSilent",
    "StackExchangeSettings",
    "Stance",
    "Strict",
    "Terms",
    "VolumeSpike",
    "WebSettings",
    "WebhookChannelSettings",
    "WindowCondition",
    "YouTubeSettings",
    "load_settings",
    "parse_duration",
    "user_data_dir",
]

# ----------------------------------------------------------------------- classifier


class ClassifierSettings(Strict):
    engine: Literal["onnx", "torch"] = "onnx"
    # A folder (relative to config.yaml's folder, then the working folder), the name of a
    # model bundled with monitor (monitor/models/<name>) or, with the torch engine, a
    # Hugging Face hub id of any sequence-classification model. See classify.resolve_model.
    model: str = "advocacy-minilm"
    batch_size: int = Field(default=64, ge=1, le=4096)
    threads: int = Field(default=2, ge=1, le=256)
    uncertain_below: float = Field(default=0.5, ge=0.0, le=1.0)
    cache_dir: str | None = None  # where the exported ONNX model is kept; default next to the database
    # Language codes the model covers; texts confidently in another language are stored as
    # status unsupported_language. Default: the model's monitor.json (en), or any language
    # for other models; [] turns the check off.
    languages: list[str] | None = None


# -------------------------------------------------------------------------- privacy


class PrivacySettings(Strict):
    # replace e-mail addresses and phone numbers in a mention's title and text by [email] and
    # [phone] before it is stored (monitor.privacy); mentions stored earlier stay as they are
    redact_contacts: bool = False


# --------------------------------------------------------------------------- top level

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Settings(Strict):
    # a SQLite file, or a PostgreSQL server: postgresql://user@host:5432/dbname (password below)
    database: str = "monitor.db"
    # PostgreSQL's password, as ${ENV} (never in the URL); without it libpq's PGPASSWORD or ~/.pgpass
    database_password: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    user_agent: str = "monitor/0.1 (self-hosted brand monitor; +https://github.com/monitor-oss/monitor)"
    brands: list[Brand] = Field(min_length=1)
    classifier: ClassifierSettings = ClassifierSettings()
    classify_every: Duration = timedelta(minutes=1)
    # several workers on one PostgreSQL (README): how long a worker's leases and claims last
    # without its heartbeat (renewed every quarter of it); what a dead worker held is free after it
    worker_lease: Duration = timedelta(seconds=60)
    alerts: AlertSettings = AlertSettings()
    http: HttpSettings = HttpSettings()
    health: HealthSettings = HealthSettings()
    advocates: AdvocateSettings = AdvocateSettings()
    web: WebSettings = WebSettings()
    privacy: PrivacySettings = PrivacySettings()
    inbox: InboxSettings = InboxSettings()
    report: ReportSettings = ReportSettings()
    handoff: HandoffSettings = HandoffSettings()
    # set by the loader: the folder relative paths are resolved against
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _database(self) -> Settings:
        if not timedelta(seconds=2) <= self.worker_lease <= timedelta(hours=1):
            raise ValueError("worker_lease: between 2s and 1h (a dead worker's work waits this long)")
        if self.database.startswith(POSTGRES_SCHEMES):
            if urlsplit(self.database).password is not None:
                raise ValueError("database: write the password as database_password: ${ENV}, not in the URL")
        elif self.database_password is not None:
            raise ValueError("database_password: only with a postgresql:// database")
        return self

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
        for ch in self.inbox.channels:
            if ch not in self.alerts.channels:
                raise ValueError(f"inbox.channels: unknown channel {ch!r}")
        for i, t in enumerate(self.inbox.templates):
            for b in t.brands:
                if b not in names:
                    raise ValueError(f"inbox.templates[{i}] ({t.name}): unknown brand {b!r}")
        for b in self.report.brands:
            if b not in names:
                raise ValueError(f"report.brands: unknown brand {b!r}")
        for ch in self.report.channels:
            if ch not in self.alerts.channels:
                raise ValueError(f"report.channels: unknown channel {ch!r}")
        if self.report.enabled and not self.report.channels:
            raise ValueError("report.channels: at least one channel to send the enabled report through")
        for ch in self.alerts.channels:
            if ch.startswith("handoff:"):
                raise ValueError(f"alerts.channels.{ch}: the prefix handoff: is kept for handoff.webhooks")
        for name, hook in self.handoff.webhooks.items():
            for b in hook.brands:
                if b not in names:
                    raise ValueError(f"handoff.webhooks.{name}.brands: unknown brand {b!r}")
        return self

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def postgres(self) -> bool:
        return self.database.startswith(POSTGRES_SCHEMES)

    @property
    def database_path(self) -> Path:
        """The SQLite file; with PostgreSQL, ``monitor-postgresql`` in the config's folder (the
        name the instance lock and the classifier cache are placed by)."""
        return self.base_dir / "monitor-postgresql" if self.postgres else self.path(self.database)

    @property
    def database_target(self) -> str | Path:
        """What ``Store`` opens: the SQLite file, or the PostgreSQL URL with the password in it
        (never shown: messages use ``database_label``)."""
        if not self.postgres:
            return self.database_path
        if self.database_password is None or not self.database_password.get_secret_value():
            return self.database
        parts = urlsplit(self.database)
        user = quote(unquote(parts.username or ""), safe="")
        secret = quote(self.database_password.get_secret_value(), safe="")
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{user}:{secret}@{host}").geturl()

    @property
    def database_label(self) -> str:
        """Where the data is, for messages: the file, or the URL (it holds no password)."""
        return self.database if self.postgres else str(self.database_path)

    def source_jobs(self) -> list[tuple[Brand, Any]]:
        """(brand, source settings) for every enabled source, in file order."""
        return [(b, s) for b in self.brands for s in b.sources if s.enabled]


# ----------------------------------------------------------------------------- loading

MAX_YAML_DEPTH = 40  # nesting, aliases expanded: the settings are a few levels deep
MAX_YAML_NODES = 50_000  # values, aliases expanded: an alias bomb stops here, not at the memory limit
MAX_YAML_ALIASES = 200


class _RefusedYaml(yaml.MarkedYAMLError):
    """YAML that parses but is refused: duplicate keys, recursive aliases, alias bombs."""


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys and recursive or exploding aliases, counting
    nodes while composing (aliases expanded), before anything is built from them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._open_anchors: list[str] = []
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if event.anchor in self._open_anchors:
                raise _RefusedYaml(None, None, f"alias *{event.anchor} refers to a node that contains it "
                                   "(a recursive structure)", event.start_mark)
            if self._aliases > MAX_YAML_ALIASES:
                raise _RefusedYaml(None, None, f"more than {MAX_YAML_ALIASES} aliases (*name)", event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _RefusedYaml(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark)
        if anchor is not None:
            self._open_anchors.append(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.pop()
        if node is not None:
            self._count(node)
        return node

    def _count(self, node: yaml.Node) -> None:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        sizes = [self._size[id(c)] for c in children]  # composed (or aliased) before their parent
        total = 1 + sum(s for s, _ in sizes)
        depth = 1 + max((d for _, d in sizes), default=0)
        if total > MAX_YAML_NODES:
            raise _RefusedYaml(None, None, f"more than {MAX_YAML_NODES} values once aliases are expanded "
                               "(an alias bomb?)", node.start_mark)
        if depth > MAX_YAML_DEPTH:
            raise _RefusedYaml(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are "
                               "expanded", node.start_mark)
        self._size[id(node)] = (total, depth)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults` keys are meant to be overridden
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # the base class says so, with its line
                if key in first:
                    raise _RefusedYaml("while reading a mapping", node.start_mark,
                                       f"duplicate key {str(key)[:60]!r} (first at line {first[key]})",
                                       key_node.start_mark)
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # 2026-02-30, an int of 5,000 digits, a bad !!float, !!timestamp {}
            raise _RefusedYaml(None, None, f"cannot read this value: {str(exc)[:100]}", node.start_mark) from None


def _parse_yaml(text: str) -> tuple[Any, dict[str, int]]:
    """The document's data and its line map; raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = _line_map(node)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}{problem}" if isinstance(exc, _RefusedYaml) else f"{where}YAML syntax error: {problem}"


def _resolve_env(node: Any, env: dict[str, str], path: str, problems: list[str], lines: dict) -> Any:
    if isinstance(node, dict):
        return {k: _resolve_env(v, env, f"{path}.{k}" if path else str(k), problems, lines) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, env, f"{path}[{i}]", problems, lines) for i, v in enumerate(node)]
    if isinstance(node, str):
        m = ENV_REF.match(node.strip())
        if m:
            var = m.group(1)
            # stripped: a secret read from a file ends in a newline, which HTTP libraries refuse and
            # then quote, secret and all, in their error (into logs, stored errors and alerts)
            value = env.get(var, "").strip()
            if not value:
                blank = "is blank" if env.get(var) else "is not set"
                problems.append(f"{_where(lines, path)}{path}: environment variable {var} {blank}")
                return SecretStr("")
            return SecretStr(value)
        if "${" in node:
            problems.append(f"{_where(lines, path)}{path}: write an env reference alone, as ${{NAME}}")
    return node


def _line_map(root: yaml.Node) -> dict[str, int]:
    """key path ("alerts.rules[0].name") -> 1-based line, from the YAML node tree."""
    lines: dict[str, int] = {}

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


def user_data_dir(env: dict[str, str] | None = None) -> Path:
    """Where monitor keeps a user's own data outside any project (the demo's database):
    ``$XDG_DATA_HOME/monitor``, else ``~/.local/share/monitor`` (a relative XDG_DATA_HOME is
    ignored, as the XDG spec says)."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_DATA_HOME", "").strip()
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share") / "monitor"


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
        data, lines = _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: {_yaml_problem(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys, not {type(data).__name__}")
    problems: list[str] = []
    data = _resolve_env(data, env, "", problems, lines)
    data["base_dir"] = file.resolve().parent
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc, _ = _walk_loc(err["loc"], data)
            key = _loc_to_path(loc) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key{_did_you_mean(err['loc'])}"
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


def _tagged(annotation: Any) -> dict[str, type[BaseModel]] | None:
    """A union of settings models told apart by a ``type`` (or ``kind``) tag: tag -> model."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    found: dict[str, type[BaseModel]] = {}
    for arg in typing.get_args(annotation):
        field = getattr(arg, "model_fields", {}).get("type") or getattr(arg, "model_fields", {}).get("kind")
        if field is None or typing.get_origin(field.annotation) is not Literal:
            return None
        found.update(dict.fromkeys(typing.get_args(field.annotation), arg))
    return found


def _unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X."""
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = tuple(a for a in args if a is not type(None))
            annotation = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
        else:
            return annotation


_ABSENT = object()


def _child(data: Any, part: Any) -> Any:
    if isinstance(data, dict):
        return data.get(part, _ABSENT)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return _ABSENT


def _walk_loc(loc: tuple, data: Any = _ABSENT) -> tuple[tuple, Any]:
    """pydantic's error location -> (the key path as written in the file, the type found there).

    Where a list or dict holds a tagged union (sources, channels, window conditions),
    pydantic adds the tag as a part of the location of its own. It is dropped by its
    position, not by its name, so a key named like a type (the channel ``console:
    {type: console}``) keeps its place in the path. The ``[0]`` pydantic gives a single value
    written for a list (``sentiment: happy``) is dropped too, when ``data``, the document, is given.
    """
    annotation: Any = Settings
    path: list = []
    for part in loc:
        annotation = _unwrap(annotation)
        tagged = _tagged(annotation)
        if tagged is not None and part in tagged:
            annotation = tagged[part]
            continue
        if isinstance(part, int) and data is not _ABSENT and not isinstance(data, list | dict):
            annotation = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else None
            continue  # a single value validated as a one-item list
        data = _child(data, part)
        path.append(part)
        origin = typing.get_origin(annotation)
        if origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            annotation = None
    return tuple(path), _unwrap(annotation)


def _did_you_mean(loc: tuple) -> str:
    import difflib

    _, model = _walk_loc(loc[:-1])
    fields = list(getattr(model, "model_fields", {})) if isinstance(model, type) else []
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
