"""`monitor import FILE`: feedback from other channels into a named source of a brand
(the reading and checking is ``monitor.importer``'s; this module stores and reports)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from monitor import importer
from monitor.cli_common import App
from monitor.errors import MonitorError
from monitor.records import FetchResult

SHOW_BAD = 20  # bad rows listed one by one; the rest counted


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--brand", required=True, help="The configured brand the feedback is about.")
@click.option("--source", "name", required=True, help="A name for this feed (source key 'Brand:NAME').")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Default: by extension (.jsonl, .ndjson: jsonl; else csv).")
@click.option("--text", "text_col", default="text", show_default=True, help="Column (or JSON key) of the text.")
@click.option("--author", "author_col", help="Column of the author's name or handle.")
@click.option("--date", "date_col", help="Column of the date (ISO 8601 or Unix seconds); default: the import time.")
@click.option("--url", "url_col", help="Column of a link to the original.")
@click.option("--score", "score_col", help="Column of a 0-10 survey score (NPS): counts as basis 'survey'.")
@click.option("--id", "id_col", help="Column of a stable id; default: a hash of the row's content.")
@click.option("--kind", help="Mention kind: default 'survey' with --score, else 'feedback' ('support' counts as "
              "a transactional signal).")
@click.option("--delimiter", default=",", show_default=True, help="CSV field delimiter ('\\t' for tab).")
@click.option("--encoding", default="utf-8", show_default=True, help="The file's encoding (a UTF-8 BOM is fine).")
@click.option("--classify", "classify_now", is_flag=True, help="Then classify what is new, as `monitor classify`.")
@click.pass_context
def import_(ctx: click.Context, file: Path, brand, name, fmt, text_col, author_col, date_col, url_col, score_col,
            id_col, kind, delimiter, encoding, classify_now):
    """Import feedback (survey verbatims, support tickets, other tools' exports) from a CSV
    or JSONL file into a named source of a brand. Bad rows are reported by line and
    skipped; a file that fails as a whole stores nothing. Importing again stores nothing new.
    Each import is recorded as a run of the source 'Brand:NAME' (`monitor status`)."""
    app: App = ctx.obj
    settings = app.settings
    brands = [b.name for b in settings.brands]
    if brand not in brands:
        raise MonitorError(f"unknown brand {brand!r} (configured: {', '.join(brands)})")
    delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter
    if len(delimiter) != 1:
        raise MonitorError(f"--delimiter must be one character, not {delimiter!r}")
    mapping = importer.Mapping(text=text_col, author=author_col, date=date_col, url=url_col, score=score_col,
                               id=id_col)
    source_key = f"{brand}:{name}"
    store = app.store()
    started = store.now()  # each import is recorded as a run of its source (monitor status lists it)
    size = file.stat().st_size
    tty = sys.stderr.isatty() and size <= importer.MAX_BYTES
    bar = click.progressbar(length=size, label=f"reading {file.name}", file=sys.stderr) if tty else None
    try:
        with bar if bar is not None else contextlib.nullcontext():
            result = importer.read_file(file, mapping, brand=brand, name=name, fmt=fmt,
                                        kind=kind or ("survey" if score_col else "feedback"), delimiter=delimiter,
                                        encoding=encoding, progress=bar.update if bar is not None else None)
    except importer.ImportFileError as exc:  # the file failed as a whole: a failed run, nothing stored
        store.record_run(source_key, started, fetched=0, new=0, skipped=0, error=f"{file.name}: {exc}")
        raise
    for line, why in result.bad[:SHOW_BAD]:
        click.echo(f"{file.name}: line {line}: skipped: {why}", err=True)
    if len(result.bad) > SHOW_BAD:
        click.echo(f"{file.name}: ... and {len(result.bad) - SHOW_BAD} more bad row(s)", err=True)
    if not result.mentions:
        message = f"{file.name}: no importable row ({result.rows} read, {len(result.bad)} bad); nothing imported"
        store.record_run(source_key, started, fetched=0, new=0, skipped=len(result.bad), error=message)
        raise MonitorError(message)
    new = store.save_batch(source_key, "import", FetchResult(result.mentions, cursor=None))
    old = len(result.mentions) - len(new)
    store.record_run(source_key, started, fetched=len(result.mentions), new=len(new), skipped=len(result.bad),
                     error=None)
    summary = (f"{source_key}: {result.rows} row(s) read, {len(new)} new, {old} already stored, "
               f"{len(result.bad)} skipped")
    if not new:
        click.echo(summary + "; nothing new stored")
        return
    click.echo(summary + ("" if classify_now else "; run `monitor classify` to classify the new mention(s)"))
    if classify_now and ctx.parent is not None and isinstance(group := ctx.parent.command, click.Group):
        command = group.get_command(ctx.parent, "classify")
        if command is not None:
            ctx.invoke(command)
    from monitor import advocates

    advocates.refresh(store, settings.advocates)
