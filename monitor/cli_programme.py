"""`monitor programme`: the advocate programme from the command line (monitor.programme,
store.programme): members and their status, rewards, referral links, referral imports, export."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from pathlib import Path

import click

from monitor import csvsafe
from monitor import programme as prog
from monitor.cli_common import App, cli_actor, resolve_brand
from monitor.cli_inbox import clean_cell
from monitor.errors import MonitorError
from monitor.store.programme import STATUSES

brand_option = click.option("--brand", required=True, help="A brand, as configured (any case).")


def _brand(app: App, store, value: str) -> str:
    brand = resolve_brand(app.settings, store, value)
    assert brand is not None
    return brand


def _money(value: float, currency: str | None) -> str:
    return f"{value:,.2f}" + (f" {currency}" if currency else "")


@click.group()
def programme():
    """The advocate programme: each person's status per brand (identified, contacted, joined,
    rewarded, declined, do_not_contact), rewards, personal referral links and imported referrals."""


@programme.command("list")
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.pass_obj
def programme_list(app: App, brand, status, fmt, limit):
    """Members with their status, rewards and referrals (count and value), most referral value first."""
    store = app.store()  # the writer: an older database gets the programme tables first
    brand = resolve_brand(app.settings, store, brand)
    programmes = prog.programmes_of(app.settings.brands)
    rows = prog.export_rows(store, programmes, brand=brand, status=status)[:limit]
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps({c: r.get(c) for c in prog.EXPORT_COLUMNS}, ensure_ascii=False))
        return
    if not rows:
        click.echo("No one in the programme" + (f" of {brand}" if brand else "") + (f" with status {status}"
                   if status else "") + " (monitor programme status PERSON_ID --brand B contacted adds someone).")
        return
    for t in store.programme.totals(brand):
        cur = (programmes.get(t["brand"]).currency if programmes.get(t["brand"]) else None)  # type: ignore[union-attr]
        click.echo(f"{t['brand']}: {t['members']} member(s) ("
                   + ", ".join(f"{n} {prog.status_label(s)}" for s, n in sorted(t["statuses"].items()))
                   + f"); {t['rewards']} reward(s) {_money(t['reward_value'], cur)}; "
                   f"{t['referrals']} referral(s) {_money(t['referral_value'], cur)}")
    for r in rows:
        flag = "  DO NOT CONTACT" if r["status"] == "do_not_contact" else ""
        click.echo(f"{r['person_id']}\t{r['brand']}\t{clean_cell(r['handle'] or '-', 30)}\t{r['source'] or '-'}\t"
                   f"{prog.status_label(r['status'])}\t{r['rewards']} reward(s) {_money(r['reward_value'], None)}\t"
                   f"{r['referrals']} referral(s) {_money(r['referral_value'], None)}\t{r['code']}{flag}")


@programme.command("status")
@click.argument("person_id", type=click.IntRange(1))
@click.argument("status", type=click.Choice(STATUSES))
@brand_option
@click.option("--note", help="Why, as kept in the status history.")
@click.pass_obj
def programme_status(app: App, person_id, status, brand, note):
    """Set a person's programme STATUS for a brand (PERSON_ID: the author id the web page's
    author link and `monitor advocates --format json` show). From do_not_contact only
    identified (lifting it) is accepted."""
    store = app.store()
    brand = _brand(app, store, brand)
    old = store.programme.member(store.programme.person(person_id), brand)
    member = store.programme.set_status(person_id, brand, status, cli_actor(), note)
    was = old["status"] if old else "not in the programme"
    click.echo(f"person {member['person_id']} for {brand}: {prog.status_label(was)} -> "
               f"{prog.status_label(member['status'])}")


@programme.command("reward")
@click.argument("person_id", type=click.IntRange(1))
@brand_option
@click.option("--what", required=True, help="What the reward was (e.g. 'conference ticket').")
@click.option("--value", type=click.FloatRange(0, 1e12), required=True,
              help="Its value, a number in the brand's programme currency.")
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
              help="When it was given (UTC; default now).")
@click.option("--note")
@click.pass_obj
def programme_reward(app: App, person_id, brand, what, value, at, note):
    """Record a reward given to a person; their status becomes rewarded. Refused for a person
    marked do not contact."""
    store = app.store()
    brand = _brand(app, store, brand)
    p = prog.programmes_of(app.settings.brands).get(brand)
    currency = p.currency if p else None
    rid = store.programme.add_reward(person_id, brand, what, value, cli_actor(), currency=currency,
                                     at=at.replace(tzinfo=UTC) if at else None, note=note)
    click.echo(f"reward #{rid} recorded for person {store.programme.person(person_id)} ({brand}): "
               f"{clean_cell(what, 80)}, {_money(value, currency)}")


@programme.command("link")
@click.argument("person_id", type=click.IntRange(1))
@brand_option
@click.pass_obj
def programme_link(app: App, person_id, brand):
    """Print the person's personal referral link for a brand (the brand's programme URL with its
    UTM parameters and the person's code, made the first time and the same from then on)."""
    store = app.store()
    brand = _brand(app, store, brand)
    click.echo(prog.personal_link(store, prog.programmes_of(app.settings.brands).get(brand), person_id, brand,
                                  cli_actor()))


@programme.command("import-referrals")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--show", type=click.IntRange(0, 10_000), default=20, show_default=True,
              help="How many unmatched lines to list.")
@click.pass_obj
def programme_import(app: App, file: Path, show):
    """Import referrals from a CSV file with a header naming the columns code, date and value
    (ISO dates such as 2026-03-01; plain numbers such as 25.50). Lines with an unknown code, a
    bad date or a bad value are kept as unmatched and listed with their line numbers; importing
    the same lines again adds nothing."""
    store = app.store()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise MonitorError(f"cannot read {file}: {exc.strerror}") from None
    click.echo(f"reading {file.name} ({len(data):,} bytes) ...", err=True)
    summary = prog.import_referrals(store, prog.programmes_of(app.settings.brands), data, file_name=file.name,
                                    actor=cli_actor())
    for line, problem in (summary.problems or [])[:show]:
        click.echo(f"line {line}: unmatched: {clean_cell(problem, 200)}")
    if summary.problems and len(summary.problems) > show:
        click.echo(f"... and {len(summary.problems) - show} more unmatched line(s)")
    click.echo(prog.summary_text(summary))


@programme.command("export")
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="A file (default: stdout).")
@click.pass_obj
def programme_export(app: App, brand, status, output):
    """The programme's members as CSV: status, who changed it and when, code, referral link,
    rewards and referrals (count and value) and the currency (recorded in the audit log,
    export.programme)."""
    store = app.store()
    brand = resolve_brand(app.settings, store, brand)
    rows = prog.export_rows(store, prog.programmes_of(app.settings.brands), brand=brand, status=status)
    # in the audit log like the Programme page's download (export.programme)
    filters = {k: v for k, v in (("brand", brand), ("status", status)) if v}
    store.audit.record(cli_actor(), "export.programme", None, None, {"rows": len(rows), **filters})
    if output:
        with output.open("w", encoding="utf-8", newline="") as f:
            csvsafe.write(f, rows, prog.EXPORT_COLUMNS)
        click.echo(f"{len(rows)} member(s) written to {output}", err=True)
    else:
        csvsafe.write(sys.stdout, rows, prog.EXPORT_COLUMNS)

