"""`monitor report`: the weekly per-brand report (monitor.report), printed or sent."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from monitor.cli_common import App, resolve_brand


@click.command()
@click.option("--brand", help="A brand, as configured (any case); default: the brands report.brands names "
                               "(every brand not marked competitor).")
@click.option("--week", help="The ISO week (YYYY-Www, e.g. 2026-W48); default: the last whole week.")
@click.option("--format", "fmt", type=click.Choice(["html", "text"]), default="text", show_default=True,
              help="html: the e-mail's HTML document.")
@click.option("--send", is_flag=True,
              help="Queue it for report.channels and deliver now, once per brand and week (a report sent "
                   "before is not sent again).")
@click.pass_obj
def report(app: App, brand, week, fmt, send):
    """The weekly report of a brand: volume, sentiment, advocacy index with its interval, top
    themes and their change, share of voice, top advocates and detractors with the reasons
    of their scores, and the week's most notable mentions."""
    from monitor import report as weekly

    settings = app.settings
    store = app.store()
    now = datetime.now(UTC)
    try:
        monday = weekly.parse_week(week) if week else weekly.last_week(now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from None
    chosen = resolve_brand(settings, store, brand)
    brands = [chosen] if chosen else weekly.report_brands(settings)
    if send and not settings.report.channels:
        raise click.UsageError("report.channels names no channel to send the report through")
    queued = 0
    for name in brands:
        built = weekly.build(store, settings, name, monday, save_to=store)
        if send:
            if weekly.queue(store, built, settings.report.channels, now):
                queued += 1
                click.echo(f"{name} {built.week}: queued for {', '.join(settings.report.channels)}")
            else:
                click.echo(f"{name} {built.week}: queued before, not sent again")
        else:
            click.echo(weekly.render_html(built) if fmt == "html" else weekly.render_text(built))
    if queued:
        _deliver(store, settings)


def _deliver(store, settings) -> None:
    """Every due delivery once (the report's, and any other waiting); a failed one stays
    queued for the daemon's retries."""
    from monitor.alerts.channels import build_channels
    from monitor.alerts.outbox import RetryPolicy, deliver_due

    counts = deliver_due(store, build_channels(settings), policy=RetryPolicy.from_settings(settings.alerts))
    click.echo("delivery: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if n) or "nothing due"))
