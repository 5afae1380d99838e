"""CLI commands about alert rules and deliveries: ``monitor alerts test|backtest|status|deliver``
(registered on the group in cli.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from monitor import pipeline
from monitor.cli_common import App, parse_since
from monitor.config import parse_duration
from monitor.errors import MonitorError


@click.group()
def alerts():
    """Try, tune and watch alert rules and their deliveries."""


@alerts.command("test")
@click.argument("rule_name", metavar="RULE")
@click.option("--since", default="7d", show_default=True, help="Look at mentions this recent (7d) or since a date.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_obj
def alerts_test(app: App, rule_name, since, limit):
    """Show which stored mentions RULE matches now (no cooldown, grouping or digest applied)."""
    from monitor.cli_alert_views import show_rule_test

    settings = app.settings
    rule = settings.alerts.rule(rule_name)
    if rule is None:
        known = ", ".join(r.name for r in settings.alerts.rules) or "none"
        raise MonitorError(f"no alert rule named {rule_name!r} (rules: {known})")
    show_rule_test(app.store(), rule, parse_since(since), datetime.now(UTC), limit,
                   settings.alerts.web_base_url)


@alerts.command("backtest")
@click.option("--since", default="30d", show_default=True, help="Replay this much history (30d) or since a date.")
@click.option("--step", default="1h", show_default=True,
              help="How often windowed rules, groups and digests are evaluated.")
@click.option("--rule", "only", multiple=True, help="Only these rules (repeatable).")
@click.option("--explain", "n_explain", type=int, default=10, show_default=True,
              help="Show why the latest N spike, dip and turned-promoter alerts fired (0: none).")
@click.pass_obj
def alerts_backtest(app: App, since, step, only, n_explain):
    """Replay all rules over history: how often each would have fired, per day, and why the
    latest windowed alerts fired (the themes, terms, sources and authors that grew)."""
    from monitor.alerts.backtest import replay
    from monitor.cli_alert_views import show_backtest

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
    explained: list = []
    fired = replay(alerts_cfg, app.store(), start, end, step_td, explained=explained)
    show_backtest(fired, start, end, explained, limit=max(n_explain, 0))


@alerts.command("status")
@click.option("--limit", type=int, default=15, show_default=True)
@click.pass_obj
def alerts_status(app: App, limit):
    """Deliveries by state (pending, sent, failing, dead) and the most recent attempts."""
    from monitor.cli_alert_views import show_status

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
    queued = AlertEngine.from_settings(settings.alerts, store, inbox=settings.inbox, handoff=settings.handoff).tick()
    counts = pipeline.deliver(store, build_channels(settings), policy=RetryPolicy.from_settings(settings.alerts))
    click.echo(f"queued {queued} alert(s); " + ", ".join(f"{k} {v}" for k, v in counts.items()))
