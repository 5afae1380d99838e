"""CLI commands of data governance: ``monitor retention run`` and ``monitor forget`` (see
monitor.governance; registered on the group in cli.py)."""

from __future__ import annotations

import click

from monitor.cli_common import App, cli_actor
from monitor.errors import MonitorError


@click.group()
def retention():
    """Delete mentions older than their retention (``retention:`` of a brand or source)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.pass_obj
def retention_run(app: App, dry_run):
    """Delete mentions older than their retention, with every row derived from them (their
    figures are kept as counts). The daemon does this once a day."""
    from monitor import governance

    settings = app.settings
    rules = governance.retention_rules(settings)
    if not rules:
        click.echo("no retention configured (retention: 400d on a brand or a source): nothing is deleted")
        return
    result = governance.run_retention(app.store(), settings, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for rule, n in result.per_rule:
        click.echo(f"{rule.scope}: older than {rule.keep.days}d: {verb} {n} mention(s)")
    derived = ", ".join(f"{table} {n}" for table, n in sorted(result.rows.items()) if table != "mentions")
    click.echo(f"{verb} {result.mentions} mention(s) in all" + (f"; with them: {derived}" if derived else ""))


@retention.command("status")
@click.pass_obj
def retention_status(app: App):
    """The configured retentions, the latest passes, and how many erasures are recorded."""
    from monitor import governance

    settings = app.settings
    rules = governance.retention_rules(settings)
    for rule in rules:
        click.echo(f"{rule.scope}: keep {rule.keep.days}d")
    if not rules:
        click.echo("no retention configured: mentions are kept for ever")
    store = app.store()
    for run in store.governance.retention_runs(5):
        click.echo(f"{run['ran_at']}: {'dry run, would delete' if run['dry_run'] else 'deleted'} "
                   f"{run['mentions']} mention(s)")
    click.echo(f"erasures recorded: {len(store.governance.erasures(10_000))}")


@click.command()
@click.argument("author")
@click.option("--source", help="Only this platform's handle (e.g. reddit); default: the handle on every platform.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget(app: App, author, source, yes):
    """Erase a person: every mention by AUTHOR (a handle, any case) and by handles linked to it,
    with classifications, corrections, inbox items, scores, links, the advocate programme's
    status, history and rewards (referrals stay in the brand's totals, linked to no one),
    hand-off flags, and the texts of alerts and hand-off events that quoted them. What
    remains is a record that an erasure happened: when, how many rows, and a salted hash of
    the handle, never the handle."""
    from monitor import governance

    settings = app.settings
    store = app.store()
    found = governance.forget_candidates(store, author, source)
    if not found:
        raise MonitorError(f"no author {author!r}" + (f" on {source}" if source else "") + " is stored")
    for a in found:
        click.echo(f"{a['source']}: {a['handle']} ({a['mentions']} mention(s))")
    if not yes and not click.confirm(f"Erase these {len(found)} author(s) and everything about them?"):
        raise click.Abort()
    result = governance.forget(store, settings, author, source, actor=cli_actor())
    rows = ", ".join(f"{table} {n}" for table, n in sorted(result.rows.items()))
    click.echo(f"erased {len(found)} author(s), {result.mentions} mention(s)" + (f"; rows: {rows}" if rows else ""))
