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
    # APScheduler's "Added job", "Scheduler started", "Running job": for debugging only
    logging.getLogger("apscheduler").setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)


class App:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self.redact = Redactor()

    def use_config(self, config_path: str) -> None:
        """``-c`` given after a sub-command: that file, read when the command first needs it."""
        if config_path != self.config_path:
            self.config_path, self._settings = config_path, None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            self.redact = Redactor(collect_secrets(self._settings))
            setup_logging(self._settings.log_level, self.redact)
        return self._settings

    def store(self, readonly: bool = False):
        from monitor.store import Store

        store = Store(self.settings.database_target, readonly=readonly)
        store.redact = self.redact  # errors and alerts are stored without secrets
        store.lease = self.settings.worker_lease  # how long its leases and claims last (monitor.workers)
        if self.settings.privacy.redact_contacts:  # mentions are stored without e-mail addresses and phone numbers
            from monitor.privacy import redact_contacts

            store.clean_text = redact_contacts
        return store


def cli_actor() -> str:
    """Who a CLI change is recorded as, in the audit log and the inbox's history:
    ``cli:<os user>`` (the account running the command; its uid where it has no name)."""
    import os

    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        name = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"cli:{name}"


def _use_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None and (app := ctx.find_object(App)) is not None:
        app.use_config(value)


def config_option() -> click.Option:
    """``-c/--config`` for a sub-command, so that ``monitor mentions -c config.yaml`` works as
    ``monitor -c config.yaml mentions`` does (the later one wins). Eager: it is set before any
    other option's callback or the command itself reads the settings."""
    return click.Option(["-c", "--config", "config_path"], metavar="PATH", expose_value=False, is_eager=True,
                        callback=_use_config, help="Path to the config file (as before the command).")


def accept_config(command: click.Command) -> click.Command:
    """Give ``command`` and each of its sub-commands its own ``-c/--config`` (once)."""
    if not any("--config" in p.opts for p in command.params):
        command.params.append(config_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_config(sub)
    return command


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
        if only and only.casefold() not in {key.casefold(), ss.type.casefold(), (ss.name or ss.type).casefold()}:
            continue
        source = build_source(brand, ss, http_factory=factory, now=now)
        out.append((source, Matcher(ss.terms or brand.terms), ss))
    if only and not out:
        known = ", ".join(source_key(b.name, s) for b, s in settings.source_jobs()) or "none"
        raise MonitorError(f"no enabled source matches {only!r} (sources: {known})")
    return out


def known_brands(settings: Settings, store) -> list[str]:
    """The configured brands, then those only the database holds mentions of."""
    names = [b.name for b in settings.brands]
    return names + sorted({b for b, _key, _type in store.mention_sources()} - set(names))


def resolve_brand(settings: Settings, store, value: str | None, hint: str = "--brand") -> str | None:
    """A brand as the user typed it -> its configured (or stored) spelling, whatever the case.
    Unknown, or several brands differing only by case: a usage error naming the brands."""
    if value is None:
        return None
    brands = known_brands(settings, store)
    if value in brands:
        return value
    found = [b for b in brands if b.casefold() == value.casefold()]
    if len(found) == 1:
        return found[0]
    if found:
        raise click.BadParameter(f"{value!r} could be {', '.join(found)}: write it as one of them", param_hint=hint)
    raise click.BadParameter(f"no brand {value!r} (brands: {', '.join(brands) or 'none configured or stored'})",
                             param_hint=hint)


def _source_table(settings: Settings, store, brand: str | None) -> list[tuple[str, str, str, str | None]]:
    """(brand, key, name, configured type or None) of each configured and each stored source."""
    from monitor.collect import source_key

    table: dict[str, tuple[str, str, str, str | None]] = {}
    for b, ss in settings.source_jobs():
        key = source_key(b.name, ss)
        table[key] = (b.name, key, ss.name or ss.type, ss.type)
    for stored, key, _kind in store.mention_sources():
        table.setdefault(key, (stored, key, key[len(stored) + 1:] if key.startswith(stored + ":") else key, None))
    return [row for row in table.values() if brand is None or row[0] == brand]


def _no_source(settings: Settings, store, value: str, brand: str | None, hint: str) -> click.BadParameter:
    table = _source_table(settings, store, brand)
    known = sorted({key for _b, key, _n, _t in table} | {t for _b, _k, _n, t in table if t}
                   | {kind for b, _k, kind in store.mention_sources() if brand is None or b == brand})
    return click.BadParameter(f"no source {value!r}{f' for brand {brand}' if brand else ''} (a source's Brand:name, "
                              f"name or type: {', '.join(known) or 'none configured or stored'})", param_hint=hint)


def resolve_source_pairs(settings: Settings, store, value: str, brand: str | None = None) -> list[tuple[str, str]]:
    """``--source`` of ``monitor mentions``: a source's key (Brand:name), its name (every brand's
    source of that name) or a type (``reddit``: the platform a mention comes from, or a
    configured ``type``), whatever the case -> the stored (key, platform) pairs it covers.
    Naming nothing configured or stored is a usage error that lists the sources."""
    want = value.casefold()
    table = _source_table(settings, store, brand)
    keys = {key for _b, key, _n, _t in table if key.casefold() == want}
    if not keys:
        keys = {key for _b, key, name, kind in table if want in (name.casefold(), (kind or "").casefold())}
    pairs = [(key, kind) for b, key, kind in store.mention_sources() if brand is None or b == brand]
    chosen = [(k, t) for k, t in pairs if k in keys or t.casefold() == want]
    if not keys and not chosen:
        raise _no_source(settings, store, value, brand, "--source")
    return chosen


def resolve_author_source(settings: Settings, store, value: str | None, brand: str | None = None) -> str | None:
    """``--source`` of ``monitor advocates`` (an author belongs to one platform): a platform, or
    a source's key or name whose mentions all come from one platform. A source whose mentions
    come from several (the demo's) is ambiguous: a usage error that lists them."""
    if value is None:
        return None
    want = value.casefold()
    pairs = [(key, kind) for b, key, kind in store.mention_sources() if brand is None or b == brand]
    kinds = sorted({t for _k, t in pairs if t.casefold() == want})
    if not kinds:
        keys = {key for _b, key, name, _t in _source_table(settings, store, brand)
                if want in (key.casefold(), name.casefold())}
        kinds = sorted({t for k, t in pairs if k in keys})
        configured = sorted({t for _b, key, _n, t in _source_table(settings, store, brand) if key in keys and t})
        kinds = kinds or configured
    if len(kinds) == 1:
        return kinds[0]
    if kinds:
        raise click.BadParameter(f"{value!r} covers authors of several platforms ({', '.join(kinds)}): "
                                 "name one of them", param_hint="--source")
    raise _no_source(settings, store, value, brand, "--source")


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


def _unjudged(row: Mapping[str, Any]) -> dict[str, Any]:
    """A mention the model did not judge (status not ok: a language it does not cover, an
    empty text) shows no labels: its stored 'neutral'/'none' are placeholders, not readings."""
    return {**row, "sentiment": None, "sentiment_p": None, "advocacy": None, "advocacy_p": None}


def print_rows(rows: Sequence[Mapping[str, Any]], fmt: str, current_model: str | None = None) -> None:
    rows = [_unjudged(r) if r.get("status") not in (None, "ok") else r for r in rows]
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
        if r.get("status") not in (None, "ok"):
            lang = r.get("classified_lang")
            sent = "unclassified" + (f" ({lang})" if r["status"] == "unsupported_language" and lang else "")
        elif r.get("sentiment_p") is not None:
            sent = f"{r['sentiment']} {r['sentiment_p']:.2f}"
        else:
            sent = r.get("sentiment") or "-"
        if r.get("uncertain") and r.get("status") in (None, "ok"):
            sent += " ?"
        if current_model and r.get("model") and r["model"] != current_model:
            sent += " *"  # by an earlier model
        adv = f"{r['advocacy']} {r['advocacy_p']:.2f}" if r.get("advocacy_p") else (r.get("advocacy") or "-")
        title = r.get("title")
        text = (f"{title}: " if title and title not in r["text"] else "") + r["text"]
        if r.get("off_topic"):
            text = "[off topic] " + text
        table.add_row(r["created_at"][:16].replace("T", " "), r["brand"], r["source"], r.get("author") or "-", sent,
                      adv, text[:300].replace("\n", " "))
    # scraped text: never interpreted as markup
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
