"""`monitor topics`: the themes of a brand's mentions (monitor.topics), as a table or JSON."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from monitor.cli_common import App, known_brands, parse_since, resolve_brand
from monitor.topics import TopicsReport, clean_label, find_themes, pick_model


@click.command()
@click.option("--brand", help="A brand, as configured (any case); default: every brand.")
@click.option("--since", default="30d", show_default=True,
              help="The period: a duration back from now (30d) or a date (2026-11-01); each theme's change is "
                   "against the period of the same length before it.")
@click.option("--stance", type=click.Choice(["detractor", "promoter"]),
              help="Only the mentions of detractors (why they complain) or of promoters.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: one object per brand and line.")
@click.pass_obj
def topics(app: App, brand, since, stance, fmt):
    """Themes of what is said about a brand: clusters of its mentions' sentence vectors (kept
    when they were classified), each with its distinctive terms, size, change against the
    previous period, sentiment and stance mix, and three representative mentions. A theme
    keeps its id from run to run while it persists."""
    from monitor.classify import current_model_name

    settings = app.settings
    store = app.store()
    until = datetime.now(UTC)
    start = parse_since(since)
    if start >= until:
        raise click.BadParameter(f"{since!r} is not in the past", param_hint="--since")
    chosen = resolve_brand(settings, store, brand)
    brands = [chosen] if chosen else known_brands(settings, store)
    if not brands:
        click.echo("No brands configured or stored: nothing to group into themes.")
        return
    current = current_model_name(settings.classifier, settings.base_dir)
    for name in brands:
        report = find_themes(store, name, since=start, until=until, model=pick_model(store, name, current),
                             stance=stance, save_to=store)
        if fmt == "json":
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            print_report(report)


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def print_report(report: TopicsReport) -> None:
    from rich.console import Console
    from rich.table import Table

    who = f"{report.stance}s' mentions" if report.stance else "mentions"
    head = (f"{clean_label(report.brand)}: {report.mentions} {who} since {report.since:%Y-%m-%d %H:%M}"
            + (f" ({report.model})" if report.model else ""))
    click.echo(head)
    if not report.themes:
        click.echo(f"  {report.note}")
        return
    table = Table(show_lines=True)
    for col in ("id", "theme", "size", "change", "sentiment +/=/-", "promoter/none/detractor", "examples"):
        table.add_column(col, overflow="fold", max_width=60 if col == "examples" else 30)
    for t in report.themes:
        change = "new" if t.change is None else f"{t.change * 100:+.0f}%"
        sentiment = "/".join(_pct(t.sentiment[k]) for k in ("positive", "neutral", "negative"))
        advocacy = "/".join(_pct(t.advocacy[k]) for k in ("promoter", "none", "detractor"))
        examples = "\n".join(f"- {clean_label(e.text, 110)}" for e in t.examples)
        table.add_row(str(t.id or "-"), clean_label(t.label), f"{t.size} ({_pct(t.share)})",
                      f"{change} (was {t.previous})", sentiment, advocacy, examples)
    # scraped text: never interpreted as markup, control characters already gone (clean_label)
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
    if report.other:
        click.echo(f"  {report.other} mention(s) in no theme (small groups)")
