"""`monitor share`: share of voice of every brand against the others (monitor.share), as a
table or JSON."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from monitor.cli_common import App, known_brands, parse_since
from monitor.share import ShareReport, competitors, share_of_voice
from monitor.topics import clean_label, find_themes, pick_model


@click.command()
@click.option("--since", default="30d", show_default=True,
              help="The period: a duration back from now (30d) or a date (2026-11-01), as whole weeks from the "
                   "Monday of the week it falls in.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: one object with every brand and its weekly series.")
@click.pass_obj
def share(app: App, since, fmt):
    """Share of voice: each brand's share of all brands' mentions, its sentiment mix, its
    advocacy index with the interval and its top themes, side by side (brands marked
    `competitor: true` last) and week by week. Figures come from the weekly aggregates
    (`monitor advocates refresh` brings them up to date)."""
    from monitor.classify import current_model_name

    settings = app.settings
    store = app.store()
    until = datetime.now(UTC)
    start = parse_since(since)
    if start >= until:
        raise click.BadParameter(f"{since!r} is not in the past", param_hint="--since")
    current = current_model_name(settings.classifier, settings.base_dir)

    def themes(brand: str):
        return find_themes(store, brand, since=start, until=until, model=pick_model(store, brand, current),
                           save_to=store)

    report = share_of_voice(store, known_brands(settings, store), settings.advocates, since=start, until=until,
                            rivals=competitors(settings.brands), themes=themes)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print_share(report)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def index_text(index: dict) -> str:
    """'+23.5 [+12.0, +34.1] n=120', or 'n<30' under the minimum sample."""
    if index.get("value") is None:
        return f"n<{index.get('min_sample')} (n={index.get('n', 0)})"
    return f"{index['value']:+.1f} [{index['low']:+.1f}, {index['high']:+.1f}] n={index['n']}"


def print_share(report: ShareReport) -> None:
    from rich.console import Console
    from rich.table import Table

    click.echo(f"Share of voice since {report.since} (whole weeks), {report.total} mentions of "
               f"{len(report.brands)} brand(s)")
    if report.note:
        click.echo(f"  {report.note}")
        return
    table = Table(show_lines=True)
    for col in ("brand", "mentions", "share", "sentiment +/=/-", "advocacy index [interval]", "top themes"):
        table.add_column(col, overflow="fold", max_width=50 if col == "top themes" else 30)
    for b in report.brands:
        name = clean_label(b.brand) + (" (competitor)" if b.competitor else "")
        if b.note:
            table.add_row(name, "0", "-", "-", "-", b.note)
            continue
        sentiment = "/".join(_pct(b.sentiment[k]) for k in ("positive", "neutral", "negative")) if b.sentiment \
            else "not classified"
        themes = "\n".join(f"- {clean_label(t)}" for t in b.themes) or (b.themes_note or "-")
        table.add_row(name, str(b.mentions), _pct(b.share), sentiment, index_text(b.index), themes)
    console = Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if len(report.weeks) > 1:
        weekly = Table(title="share of each week's mentions")
        weekly.add_column("week")
        for b in report.brands:
            weekly.add_column(clean_label(b.brand, 30), justify="right")
        shares = report.weekly_shares()
        for i, week in enumerate(report.weeks):
            weekly.add_row(week, *[f"{_pct(shares[b.brand][i])} ({b.weeks.get(week, 0)})" for b in report.brands])
        console.print(weekly)
