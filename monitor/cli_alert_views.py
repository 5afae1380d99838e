"""Terminal views for `monitor alerts test|backtest|status` (the CLI side: the alerts package
prints nothing; scraped text is never markup)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

import click
from rich.console import Console
from rich.table import Table

from monitor.alerts import explain, windows
from monitor.alerts.channels import header_safe
from monitor.alerts.rules import classification_of, mention_matches, reason
from monitor.records import Alert
from monitor.store import Store


def _console() -> Console:
    return Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160)


def _p(label, p) -> str:
    return f"{label} {p:.2f}" if label and p is not None else (label or "-")


def show_rule_test(store: Store, rule, since: datetime, now: datetime, limit: int, web_base_url: str | None) -> None:
    db = store.alerts
    if rule.window is not None:
        rows = db.classified(since=now - windows.lookback(rule), until=now, brands=rule.when.brands)
        found = windows.evaluate(rule, rows, now, stances=lambda r: db.author_stances(r.get("author_id"), r["id"]),
                                 web_base_url=web_base_url, themes=partial(explain.theme_growth, store))
        click.echo(f"rule {rule.name} ({rule.window.kind}) over {len(rows)} mention(s): "
                   f"{len(found)} alert(s) would fire now")
        for a in found:
            click.echo(f"\n{a.title}\n{a.body}")
        return
    rows = db.classified(since=since, until=now)
    matched = [r for r in rows if mention_matches(rule.when, r, classification_of(r),
                                                  partial(db.author_stances, r["author_id"], r["id"]))]
    click.echo(f"rule {rule.name}: {reason(rule.when)}")
    click.echo(f"{len(matched)} of {len(rows)} classified mention(s) since {since:%Y-%m-%d %H:%M} match "
               f"(before cooldown, grouping and digests); newest {min(limit, len(matched))}:")
    table = Table()
    for col in ("id", "when", "brand", "source", "author", "reach", "sentiment", "advocacy", "text"):
        table.add_column(col, overflow="fold", max_width=60 if col == "text" else None)
    for r in list(reversed(matched))[:limit]:
        table.add_row(str(r["id"]), r["created_at"][:16].replace("T", " "), r["brand"],
                      r["source"], r.get("author") or "-",
                      "-" if r.get("reach") is None else str(r["reach"]),
                      _p(r.get("sentiment"), r.get("sentiment_p")), _p(r.get("advocacy"), r.get("advocacy_p")),
                      (r.get("text") or "")[:200].replace("\n", " "))
    _console().print(table)


def show_backtest(fired: dict[str, Counter], start: datetime, end: datetime, explained: Sequence[Alert] = (),
                  limit: int = 10) -> None:
    days = []
    d = start.date()
    while d <= end.date():
        days.append(d.isoformat())
        d += timedelta(days=1)
    n_days = max(1, len(days))
    summary = Table(title=f"alert rules replayed {start:%Y-%m-%d} .. {end:%Y-%m-%d} ({n_days} days)")
    for col in ("rule", "fired", "per day (mean)", "max in a day", "days with alerts"):
        summary.add_column(col)
    for name, counter in fired.items():
        total = sum(counter.values())
        summary.add_row(name, str(total), f"{total / n_days:.1f}", str(max(counter.values(), default=0)),
                        f"{sum(1 for v in counter.values() if v)}/{n_days}")
    per_day = Table(title="fires per day")
    per_day.add_column("day")
    for name in fired:
        per_day.add_column(name, justify="right")
    for day in days:
        if any(fired[n].get(day) for n in fired):
            per_day.add_row(day, *[str(fired[n].get(day, 0)) for n in fired])
    console = _console()
    console.print(summary)
    console.print(per_day)
    shown = [a for a in explained if a.data.get("explanation")][-limit:] if limit else []
    if shown:
        click.echo(f"\nwhy they fired (the latest {len(shown)} spike, dip and turned-promoter alert(s)):")
    for a in shown:  # plain text, control characters already gone (alerts.explain)
        click.echo(f"\n{a.created_at:%Y-%m-%d %H:%M} {header_safe(a.title)}")
        click.echo(explain.explanation_text(a.data["explanation"]))


def show_status(store: Store, limit: int) -> None:
    db = store.alerts
    counts = db.delivery_counts()
    holds = db.open_holds()
    click.echo(f"deliveries: pending {counts['pending']} (failing {counts['failing']}), sent {counts['sent']}, "
               f"dead {counts['dead']}; matches held for groups/digests: {len(holds)}")
    waits = db.wait_counts()
    if waits:  # rules with min_reach: 'reach unknown' was judged without the author's reach
        click.echo("matches that waited for their author's reach: "
                   + ", ".join(f"{outcome} {n}" for outcome, n in sorted(waits.items())))
    console = _console()
    troubled = db.deliveries("dead", limit) + [d for d in db.deliveries("pending", limit * 4) if d["attempts"]][:limit]
    if troubled:
        t = Table(title="dead and failing deliveries")
        for col in ("id", "channel", "status", "attempts", "next attempt", "rule", "last error"):
            t.add_column(col, overflow="fold")
        for d in troubled:
            t.add_row(str(d["id"]), d["channel"], d["status"], str(d["attempts"]),
                      d["next_attempt_at"] if d["status"] == "pending" else "-", d["rule"], d["last_error"] or "")
        console.print(t)
    attempts = db.recent_attempts(limit)
    if attempts:
        t = Table(title="recent attempts")
        for col in ("when", "delivery", "channel", "attempt", "outcome", "retry at", "error"):
            t.add_column(col, overflow="fold")
        for a in attempts:
            t.add_row(a["started_at"], str(a["delivery_id"]), a["channel"], str(a["attempt"]), a["outcome"],
                      a["retry_at"] or "-", a["error"] or "")
        console.print(t)
