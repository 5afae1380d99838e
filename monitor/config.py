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
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

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
from monitor.settings_sources import (
    AppStoreSettings,
    BlueskySettings,
    Brand,
    DemoSettings,
    FeedSettings,
    HackerNewsSettings,
    HealthSettings,
    HttpSettings,
    MastodonSettings,
    RedditSettings,
    SourceBase,
    SourceSettings,
    Terms,
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
    "Duration",
    "EmailChannelSettings",
    "FeedSettings",
    "Grouping",
    "HackerNewsSettings",
    "HealthSettings",
    "HttpSettings",
    "KeyPart",
    "MastodonSettings",
    "PromoterTurnedNegative",
    "QuietHours",
    "RedditSettings",
    "RuleWhen",
    "Secret",
    "Sentiment",
    "Settings",
    "Severity",
    "ShareDip",
    "SourceBase",
    "SourceSettings",
    "SourceSilent",
    "Stance",
    "Strict",
    "Terms",
    "VolumeSpike",
    "WebSettings",
    "WebhookChannelSettings",
    "WindowCondition",
    "load_settings",
    "parse_duration",
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
