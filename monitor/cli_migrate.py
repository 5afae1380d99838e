"""``monitor migrate``: move an installation from its SQLite file to PostgreSQL (the copy
itself is monitor.store.transfer; registered on the group in cli.py)."""

from __future__ import annotations

import click

from monitor.cli_common import App
from monitor.errors import MonitorError


@click.command()
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The SQLite file to copy (it is brought up to date first, then only read).")
@click.option("--to", "target",
              help="postgresql://user@host:5432/dbname (password: PGPASSWORD or ~/.pgpass); "
                   "default: the config's database, with its database_password.")
@click.option("--resume", is_flag=True,
              help="The target already holds data (an earlier copy): add only the rows it lacks.")
@click.pass_obj
def migrate(app: App, source, target, resume):
    """Copy every table of a SQLite file into an empty PostgreSQL database, ids included, in one
    transaction, with a progress bar; then compare each table's count (exit 1 on a difference)."""
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from monitor.store import Store
    from monitor.store._pg import is_url, safe_url
    from monitor.store.transfer import copy_database

    if target is None:
        if not app.settings.postgres:
            raise click.UsageError("--to postgresql://... is needed: the config's database is not PostgreSQL")
        target = app.settings.database_target
    if not is_url(target):
        raise click.UsageError("--to must be a postgresql:// URL")
    src, dst = Store(source), Store(target)
    try:
        with Progress(console=Console(stderr=True)) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=max(total, 1))
                bar.update(tasks[table], completed=done if total else 1)

            counts = copy_database(src, dst, resume=resume, progress=progress)
    finally:
        src.close()
        dst.close()
    bad = [c for c in counts if not c.ok]
    for c in counts:
        click.echo(f"{c.table}\t{c.source}\t{c.target}\t{'ok' if c.ok else 'DIFFERENT'}")
    if bad:
        raise MonitorError(f"{len(bad)} table(s) differ after the copy: {', '.join(c.table for c in bad)}")
    click.echo(f"copied {sum(c.source for c in counts)} row(s) in {len(counts)} table(s) into {safe_url(target)}; "
               "every count matches")
