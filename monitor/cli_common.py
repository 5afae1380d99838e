"""What the CLI commands share: logging set-up (secrets redacted), the ``App`` context
object, building sources and the classifier from the settings, and printing rows."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from monitor import csvsafe
from monitor.config import Settings, load_settings, parse_duration
from monitor.errors import MonitorError
from monitor.redaction import Redactor, collect_secrets


class RedactingFilter(logging.Filter):
    """Runs every log record through the redaction (``monitor.redaction``): its message,
    its exception's traceback and its stack, so a secret quoted by a library's exception
    is hidden as well as one in a message."""

    def __init__(self, secrets: Iterable[str] | Redactor) -> None:
        super().__init__()
        self.redact = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact:
            return True
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] | Redactor | None = None) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets or []))
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs full URLs at INFO (webhook tokens live in URL paths); prawcore likewise.
    for noisy in ("httpx", "httpcore", "urllib3", "prawcore", "apscheduler.executors", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class App:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self.redact = Redactor()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            self.redact = Redactor(collect_secrets(self._settings))
            setup_logging(self._settings.log_level, self.redact)
        return self._settings

    def store(self, readonly: bool = False):
        from monitor.store import Store

        store = Store(self.settings.database_path, readonly=readonly)
        store.redact = self.redact  # errors and alerts are stored without secrets
        return store


def http_factory(settings: Settings, stop: threading.Event | None = None):
    """One factory (one per-host rate limiter) for every source of the process. ``stop``:
    the daemon's stop event; once set, requests in flight end, none starts, and waits
    between retries or for the rate limiter are cut short."""
    from monitor.http_client import HttpFactory, HttpPolicy, RateLimiter

    h = settings.http
    extra: dict[str, Any] = {"sleep": stop.wait, "stop": stop} if stop is not None else {}
    limiter = RateLimiter(h.per_host_interval, **({"sleep": stop.wait} if stop is not None else {}))
    return HttpFactory(HttpPolicy(user_agent=settings.user_agent, allow_networks=tuple(h.allow_networks),
                                  max_bytes=h.max_bytes, deadline=h.deadline, limiter=limiter, **extra))


def build_sources(settings: Settings, only: str | None = None, stop: threading.Event | None = None) -> list:
    from monitor.collect import build_source, source_key
    from monitor.matching import Matcher

    out = []
    now = lambda: datetime.now(UTC)  # noqa: E731
    factory = http_factory(settings, stop)
    for brand, ss in settings.source_jobs():
        key = source_key(brand.name, ss)
        if only and only not in (key, ss.type, ss.name):
            continue
        source = build_source(brand, ss, http_factory=factory, now=now)
        out.append((source, Matcher(ss.terms or brand.terms), ss))
    if only and not out:
        known = ", ".join(source_key(b.name, s) for b, s in settings.source_jobs()) or "none"
        raise MonitorError(f"no enabled source matches {only!r} (sources: {known})")
    return out


def make_classifier(settings: Settings):
    from monitor.classify import build_classifier

    cache = settings.path(settings.classifier.cache_dir) if settings.classifier.cache_dir else None
    if cache is None:
        cache = settings.database_path.parent / ".monitor-cache"
    return build_classifier(settings.classifier, settings.base_dir, cache_dir=cache)


def parse_since(value: str) -> datetime:
    """A duration back from now (7d: the settings' duration, so at most 10 years) or a date."""
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError as exc:
        if re.match(r"^\s*\d+(\.\d+)?\s*[a-z]*\s*$", value):  # written as a duration: say what is wrong with it
            raise click.BadParameter(f"{value!r}: {exc}") from None
    try:
        dt = datetime.fromisoformat(value)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a duration (7d) nor a date (2026-11-01)") from None
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first representable UTC time
        raise click.BadParameter(f"{value!r} is out of the range of dates") from None


def print_rows(rows: Sequence[Mapping[str, Any]], fmt: str, current_model: str | None = None) -> None:
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    if fmt == "csv":
        if rows:
            csvsafe.write(sys.stdout, rows, list(rows[0]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for col in ("when", "brand", "source", "author", "sentiment", "advocacy", "text"):
        table.add_column(col, overflow="fold", max_width=70 if col == "text" else None)
    for r in rows:
        if r.get("sentiment_p") is not None:
            sent = f"{r['sentiment']} {r['sentiment_p']:.2f}"
        else:
            sent = r.get("sentiment") or "-"
        if r.get("uncertain"):
            sent += " ?"
        if current_model and r.get("model") and r["model"] != current_model:
            sent += " *"  # by an earlier model
        adv = f"{r['advocacy']} {r['advocacy_p']:.2f}" if r.get("advocacy_p") else (r.get("advocacy") or "-")
        title = r.get("title")
        text = (f"{title}: " if title and title not in r["text"] else "") + r["text"]
        table.add_row(r["created_at"][:16].replace("T", " "), r["brand"], r["source"], r.get("author") or "-", sent,
                      adv, text[:300].replace("\n", " "))
    # scraped text: never interpreted as markup
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
