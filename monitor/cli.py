"""The `monitor` command line: the click group and the pipeline's commands. Each area's
commands live in cli_<area>.py, what they share (logging set-up, the App context) in
cli_common.py. MonitorError becomes a clean message and its exit code (2 for configuration
problems)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import click

from monitor import pipeline
from monitor.cli_alerts import alerts
from monitor.cli_common import (
    App,
    accept_config,
    build_sources,
    make_classifier,
    parse_since,
    print_rows,
    resolve_brand,
    resolve_source_pairs,
)
from monitor.cli_demo import demo
from monitor.cli_governance import forget, retention
from monitor.cli_handoff import tokens
from monitor.cli_import import import_
from monitor.cli_inbox import inbox
from monitor.cli_migrate import migrate
from monitor.cli_model import model
from monitor.cli_programme import programme
from monitor.cli_report import report
from monitor.cli_share import share
from monitor.cli_sources import backfill, cursor, preview, status
from monitor.cli_topics import topics
from monitor.cli_web import advocates, audit, serve, users
from monitor.errors import ConfigError, MonitorError

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- commands


class Group(click.Group):
    def get_command(self, ctx, cmd_name):
        """Each command, and its sub-commands, also takes -c/--config after its name."""
        command = super().get_command(ctx, cmd_name)
        return accept_config(command) if command is not None else None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            for p in exc.problems:
                click.echo(p, err=True)
            ctx.exit(exc.exit_code)
        except MonitorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=Group)
@click.option("-c", "--config", "config_path", default="config.yaml", envvar="MONITOR_CONFIG", show_default=True,
              help="Path to the config file.")
@click.pass_context
def main(ctx, config_path):
    """Self-hosted social media and review sentiment monitor."""
    ctx.obj = App(config_path)


@main.command()
@click.pass_obj
def check(app: App):
    """Validate the config; print every problem with its key path and line (exit code 2)."""
    s = app.settings
    jobs = s.source_jobs()
    click.echo(f"{app.config_path}: OK: {len(s.brands)} brand(s), {len(jobs)} source job(s), "
               f"{len(s.alerts.rules)} alert rule(s), database {s.database_label}")
    for brand, ss in jobs:  # valid settings that do less than they say (a source's config_notes)
        notes = getattr(ss, "config_notes", None)
        for note in notes() if notes is not None else []:
            click.echo(f"note: {brand.name}:{ss.name or ss.type}: {note}")


@main.command()
@click.option("--source", "only", help="Only this source (its key 'Brand:name', name or type).")
@click.option("--once", is_flag=True, help="One run of each source, then exit (default: keep collecting on schedule).")
@click.pass_obj
def collect(app: App, only, once):
    """Fetch new mentions from the configured sources."""
    settings = app.settings
    stopping = threading.Event()
    sources = build_sources(settings, only, stop=stopping)
    store = app.store()
    if once:
        failed = 0
        from monitor.health import health_check_for

        for source, matcher, ss in sources:
            try:
                stats = pipeline.collect(store, source, matcher, max_pages=ss.max_pages,
                                         health=health_check_for(settings, source))
            except Exception as exc:  # not even the run could be recorded (the database failed): say so, go on
                logger.debug("%s: run failed", source.key, exc_info=True)
                click.echo(f"{source.key}: failed, the run could not be recorded: {type(exc).__name__} "
                           "(details with log_level: DEBUG)")
                failed += 1
                continue
            click.echo(f"{source.key}: fetched {stats.fetched}, new {stats.new}, skipped {stats.skipped}"
                       + (f", errors: {'; '.join(stats.errors)}" if stats.errors else ""))
            failed += not stats.ok
        sys.exit(1 if failed == len(sources) and sources else 0)
    from monitor.daemon import Daemon, InstanceLock

    # one daemon per SQLite file, `run` or `collect`; on PostgreSQL any number (monitor.workers)
    lock = InstanceLock(settings.database_path, enabled=not settings.postgres)
    lock.acquire()
    try:
        Daemon(settings, store, sources=sources, classifier_factory=lambda: None, channels={}, collect_only=True,
               stopping=stopping, config_path=Path(app.config_path)).run()
    finally:
        lock.release()


@main.command()
@click.option("--reclassify", is_flag=True,
              help="Re-run the current model over the whole history (replacing its own earlier results); no alerts.")
@click.option("--limit", type=int, default=None, help="At most this many mentions.")
@click.option("--relevance", "rescore", is_flag=True,
              help="Instead: score every brand's stored mentions for relevance again, from the stored vectors (after "
                   "changing about/not_about or marking mentions on the web page); then refresh the figures.")
@click.pass_obj
def classify(app: App, reclassify, limit, rescore):
    """Classify stored mentions that the current model has not classified yet."""
    settings = app.settings
    store = app.store()
    classifier = make_classifier(settings)
    if rescore:
        from monitor import advocates, relevance

        models = relevance.models_for(store, classifier, settings.brands)
        for b in settings.brands:
            scored, off = relevance.rescore(store, classifier.name, b.name, models.get(b.name))
            click.echo(f"{b.name}: {off} of {scored} scored mention(s) off topic" if b.name in models else
                       f"{b.name}: no relevance model (about and not_about examples needed): every mention relevant")
        advocates.refresh(store, settings.advocates, full=True)
        return
    total = store.count_mentions() if reclassify else store.count_unclassified(classifier.name)
    if limit is not None:
        total = min(total, limit)
    from rich.console import Console
    from rich.progress import Progress

    from monitor.alerts.engine import AlertEngine
    from monitor.workers import Heartbeat

    # its claims are renewed while it works, and freed at the end (workers on one database: monitor.workers)
    with Heartbeat(store, register=False), \
            Progress(console=Console(stderr=True), disable=total < 200 and not reclassify) as bar:
        task = bar.add_task(f"{'re-classifying' if reclassify else 'classifying'} with {classifier.name}", total=total)
        advance = lambda k: bar.advance(task, k)  # noqa: E731
        if reclassify:  # re-runs page no one
            n = pipeline.reclassify_all(store, classifier, limit=limit, progress=advance, brands=settings.brands)
        else:
            engine = AlertEngine.from_settings(settings.alerts, store, inbox=settings.inbox, handoff=settings.handoff)
            n = pipeline.classify_pending(store, classifier, engine=engine, limit=limit, progress=advance,
                                            brands=settings.brands)
    click.echo(f"classified {n} mention(s) with {classifier.name}")


@main.command()
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--source", help="A source's key (Brand:name), its name, or a platform (reddit); any case.")
@click.option("--sentiment", type=click.Choice(["negative", "neutral", "positive", "unclassified"]),
              help="unclassified: texts the model did not judge (a language it does not cover, empty) or has not "
                   "classified yet.")
@click.option("--advocacy", type=click.Choice(["promoter", "detractor", "none", "unclassified"]))
@click.option("--since", help="A duration (7d, 12h) or a date (2026-11-01).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--model", "model_name", help="Only this model's classifications (name@version); mentions it has not "
              "classified show none.")
@click.option("--relevance", type=click.Choice(["relevant", "off_topic", "all"]), default="relevant",
              show_default=True, help="off_topic: only the mentions the brand's relevance filter hides (under its "
              "relevance_threshold, or marked not about it); all: both.")
@click.pass_obj
def mentions(app: App, brand, source, sentiment, advocacy, since, limit, fmt, model_name, relevance):
    """List stored mentions, newest first, with the current model's classification (an
    earlier model's, marked *, where the current one has not classified a mention yet)."""
    from monitor.classify import current_model_name

    settings = app.settings
    current = model_name or current_model_name(settings.classifier, settings.base_dir)
    store = app.store()
    brand = resolve_brand(settings, store, brand)
    pairs = resolve_source_pairs(settings, store, source, brand) if source else None
    rows = store.mentions(brand=brand, source_pairs=pairs, sentiment=sentiment, advocacy=advocacy,
                          since=parse_since(since) if since else None, limit=limit, model=current,
                          strict=bool(model_name), relevance=relevance)
    if not rows and fmt == "table" and not store.count_mentions():
        click.echo(f"No mentions in {settings.database_label} yet: run `monitor collect --once` to fetch them from "
                   "the configured sources, or `monitor demo` to see monitor work on sample mentions.")
        return
    print_rows(rows, fmt, current_model=current)
    other = sum(1 for r in rows if r.get("model") != current)
    if fmt == "table" and current and other:
        click.echo(f"{other} of these mention(s) are not classified by {current} yet"
                   f"{' (* an earlier model)' if not model_name else ''}; run: monitor classify", err=True)


@main.command()
@click.pass_obj
def run(app: App):
    """Run the daemon: collect on schedule, classify, alert. Stops cleanly on SIGTERM/SIGINT."""
    from monitor.alerts.channels import build_channels
    from monitor.daemon import Daemon, InstanceLock

    settings = app.settings
    # one daemon per SQLite file; on PostgreSQL any number of workers share the database (monitor.workers)
    lock = InstanceLock(settings.database_path, enabled=not settings.postgres)
    lock.acquire()
    try:
        store = _open_waiting(app)
        stopping = threading.Event()
        daemon = Daemon(settings, store, sources=build_sources(settings, stop=stopping),
                        classifier_factory=lambda: make_classifier(settings), channels=build_channels(settings),
                        stopping=stopping, config_path=Path(app.config_path))
        web = None
        if settings.web.enabled:  # the page shares the daemon's writer store
            from monitor.web import start_in_thread

            web = start_in_thread(settings, store)
        daemon.run()
        if web:
            web[0].should_exit = True
            web[1].join(timeout=10)
    finally:
        lock.release()


def _open_waiting(app: App):
    """The daemon's store; a PostgreSQL server that cannot be reached yet (down, restarting) is
    waited for, the wait doubling up to a minute, each try logged (a wrong password or a missing
    database is no reason to wait: that error ends the command)."""
    import time

    from monitor.errors import StoreUnavailable

    delay = 1.0
    while True:
        try:
            return app.store()
        except StoreUnavailable as exc:
            logger.warning("%s; trying again in %.0fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 60.0)


for _command in (status, preview, backfill, cursor, model, alerts, advocates, users, serve, demo, import_, retention,
                 forget):
    main.add_command(_command)
main.add_command(topics)
main.add_command(inbox)
main.add_command(programme)
main.add_command(share)
main.add_command(report)
main.add_command(migrate)
main.add_command(audit)
main.add_command(tokens)
