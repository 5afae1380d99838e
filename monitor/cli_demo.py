"""``monitor demo``: the whole pipeline on sample mentions shipped with monitor (no network
needed), into a database that stays (the user's data folder), and with ``--serve`` the web page
on it, opened on the sample brand, with a demo user (registered on the group in cli.py)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import click

from monitor import pipeline
from monitor.cli_common import App, build_sources, make_classifier, print_rows, setup_logging
from monitor.config import Settings, user_data_dir
from monitor.errors import ConfigError, MonitorError
from monitor.store import Store

BRAND = "Acme"  # the sample mentions' brand; BigCo is the competitor some of them name
USER = "demo"
HOST = "127.0.0.1"
PORT = 8470
DEMO_DAYS = 90  # the samples' span (hours_ago up to about nine weeks), for the stored themes


def demo_database() -> Path:
    return user_data_dir() / "demo.db"


def demo_settings(app: App, db_path: Path, port: int = PORT) -> Settings:
    """The demo's own settings: the two sample brands, the classifier of the config when there
    is one (else the bundled model), two alert rules to the console (detractors with reach also to the
    inbox, with direct questions), the page on 127.0.0.1."""
    from monitor.cli_model import classifier_settings

    base = Path(app.config_path).resolve().parent if Path(app.config_path).exists() else Path.cwd()
    classifier_cfg = {}
    if Path(app.config_path).exists():
        try:
            classifier_cfg = app.settings.classifier.model_dump()
        except ConfigError:
            click.echo(f"note: {app.config_path} is invalid; the demo uses the default classifier", err=True)
    if not classifier_cfg.get("cache_dir"):  # reuse the ONNX export across demo runs
        if classifier_cfg:
            classifier_cfg["cache_dir"] = str(classifier_settings(app)[2])
        else:  # no config: the user's cache (~/.cache/monitor), never the working folder or the package
            from monitor.classify.onnx_engine import default_cache_dir

            classifier_cfg["cache_dir"] = str(default_cache_dir())
    return Settings.model_validate({
        "database": str(db_path),
        # BigCo: a competitor named in some samples; a post that leaves it for Acme is stored
        # once per brand, each row with the stance toward its own brand
        "brands": [{"name": BRAND, "terms": {"include": ["acme"]}, "sources": [{"type": "demo", "match_all": True}]},
                   {"name": "BigCo", "terms": {"include": ["bigco"]}, "sources": [{"type": "demo"}]}],
        "classifier": classifier_cfg,
        "alerts": {"channels": {"console": {"type": "console"}}, "rules": [
            {"name": "detractor-with-reach",
             "when": {"advocacy": "detractor", "min_probability": 0.6, "min_reach": 1000},
             "channels": ["console"], "severity": "critical", "route": ["channels", "inbox"], "priority": "critical"},
            {"name": "direct-questions", "when": {"question": True}, "route": "inbox", "priority": "high"},
            {"name": "negative-with-reach",
             "when": {"sentiment": "negative", "min_probability": 0.8, "min_reach": 1000},
             "channels": ["console"], "severity": "warning"},
        ]},
        "web": {"host": HOST, "port": port},
        "base_dir": base,
    })


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@click.command()
@click.option("--database", type=click.Path(dir_okay=False),
              help="Where to keep the demo database (default: demo.db in the user's data folder, "
                   "$XDG_DATA_HOME/monitor or ~/.local/share/monitor).")
@click.option("--serve", is_flag=True,
              help="Then serve the web page on 127.0.0.1, opened on Acme, with a user 'demo' whose new password "
                   "is printed (Ctrl-C stops it).")
@click.option("--port", type=click.IntRange(1, 65535), default=PORT, show_default=True,
              help="The web page's port, with --serve.")
@click.pass_obj
def demo(app: App, database, serve, port):
    """Run the whole pipeline on sample mentions shipped with monitor: no network needed."""
    from monitor import advocates, topics
    from monitor.alerts.channels import ConsoleChannel

    db_path = Path(database).expanduser() if database else demo_database()
    if serve and not _port_free(port):
        raise MonitorError(f"port {port} on {HOST} is in use: choose another with --port")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(app, db_path, port)
    if not logging.getLogger().handlers:
        setup_logging("WARNING")
    store = Store(settings.database_path)
    try:
        t0 = time.monotonic()
        new = 0
        for source, matcher, ss in build_sources(settings):
            stats = pipeline.collect(store, source, matcher, max_pages=ss.max_pages)
            new += stats.new
            click.echo(f"collected {stats.new} sample mention(s) into {settings.database_path}")
        if not new and store.count_mentions():
            click.echo(f"(the demo database already holds {store.count_mentions()} mention(s); "
                       f"delete {settings.database_path} to start afresh)")
        classifier = make_classifier(settings)
        n = pipeline.classify_pending(store, classifier, settings.alerts.rules, settings.alerts.channels_for())
        click.echo(f"classified {n} mention(s) with {classifier.name} in {time.monotonic() - t0:.1f}s\n")
        advocates.refresh(store, settings.advocates, full=True)
        # the themes of all the samples (about nine weeks), stored as the daemon's themes job does
        topics.store_themes(store, [b.name for b in settings.brands], classifier.name, store.now(),
                            days=DEMO_DAYS)
        total = store.count_mentions()
        click.echo(f"The newest of {total} mention(s):")
        print_rows(store.mentions(limit=8), "table")
        click.echo("")
        counts = pipeline.deliver(store, {"console": ConsoleChannel()})
        click.echo(f"{counts['sent']} alert(s) delivered to the console.\n")
        show_figures(store, settings)
    finally:
        store.close()
    if not serve:
        click.echo(f"\nSee it in the web page: monitor demo --serve (the database stays in {settings.database_path})")
        return
    serve_demo(settings)


def show_figures(store: Store, settings: Settings) -> None:
    """The advocacy index of the sample brand per week and the flagged authors, as the page shows them."""
    from monitor import advocates

    cfg = settings.advocates
    rows = store.advocacy.weekly(BRAND, advocates.since_week(26))
    weekly = advocates.index_series(rows, cfg, basis="text", signal="relationship")
    click.echo(f"{BRAND}: advocacy index per week, social mentions as the model reads them "
               f"(-100..+100, {cfg.index_confidence:.0%} interval; a week needs {cfg.index_min_sample} classified):")
    for week, ix in weekly.items():
        shown = f"{ix['value']:+5.0f} [{ix['low']:+.0f}, {ix['high']:+.0f}]" if ix["value"] is not None else \
            f"    - (below {ix['min_sample']})"
        click.echo(f"  week of {week}  {shown:<18} n={ix['n']}: {ix['promoters']} promoter(s), "
                   f"{ix['detractors']} detractor(s)")
    stars = advocates.index_series(rows, cfg, basis="stars", signal="transactional", key=lambda r: "all").get("all")
    if stars and stars["value"] is not None:
        click.echo(f"  app reviews by their stars, all weeks: {stars['value']:+.0f} "
                   f"[{stars['low']:+.0f}, {stars['high']:+.0f}] n={stars['n']}")
    for kind, label in (("advocate", "advocates"), ("detractor", "detractors")):
        flagged = store.advocacy.list_authors(kind=kind, brand=BRAND, flag=kind, limit=1000)
        names = ", ".join(f"{r['handle']} ({r['score']:.0f})" for r in flagged[:5])
        click.echo(f"{len(flagged)} {label} flagged" + (f": {names}" + (", ..." if len(flagged) > 5 else "")
                                                        if flagged else ""))
    flipped = store.advocacy.list_authors(kind="advocate", brand=BRAND, flipped=True, sort="reach", limit=1000)
    if flipped:
        click.echo(f"{len(flipped)} changed sides, e.g. " + ", ".join(
            f"{r['handle']} ({r['last_flip']})" for r in flipped[:3]))


def serve_demo(settings: Settings) -> None:
    """A demo user with a new password (printed once, never logged), then the page until Ctrl-C."""
    from monitor.web import serve as run_server
    from monitor.web.security import hash_password

    password = secrets.token_urlsafe(12)
    store = Store(settings.database_path)
    try:
        store.accounts.add_user(USER, hash_password(password), replace=True, role="admin")
        store.accounts.enable_user(USER)  # the demo's own user: its new password must let it in
    finally:
        store.close()
    url = f"http://{settings.web.host}:{settings.web.port}/overview?{urlencode({'brand': BRAND})}"
    click.echo(f"\nThe web page: {url}\nLog in as user {USER!r}, password {password}  (Ctrl-C stops the page)")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the page is stopped: not an error
        run_server(settings)
    click.echo(f"The page stopped; the demo stays in {settings.database_path} (monitor demo --serve shows it again, "
               "with a new password).")
