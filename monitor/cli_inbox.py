"""`monitor inbox`: the response desk from the command line (monitor.inbox, store.inbox)."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime

import click

from monitor.cli_common import App, cli_actor, resolve_brand
from monitor.errors import MonitorError
from monitor.handoff import Handoff
from monitor.inbox import change, draft_for, human, item_reply_target, overdue_by, route_to_inbox
from monitor.settings_inbox import PRIORITIES
from monitor.store import parse_iso
from monitor.store.inbox import VIEWS, InboxError


def clean_cell(text: str, limit: int) -> str:
    """Scraped text made safe for a terminal line: no control or format characters (escape
    sequences, bidi overrides), whitespace as single spaces, bounded length."""
    kept = "".join(" " if ch.isspace() else ch for ch in text
                   if not unicodedata.category(ch).startswith("C") or ch.isspace())
    kept = re.sub(r"\s+", " ", kept).strip()
    return kept if len(kept) <= limit else kept[:limit - 1] + "\u2026"


by_option = click.option("--by", default=cli_actor, show_default="cli:<os user>", metavar="NAME",
                         help="Who makes the change, as recorded in the item's history and the audit log.")


@click.group()
def inbox():
    """The response desk: mentions that need an answer (rules with route: inbox, or added by
    hand), their state, assignee, notes and response times."""


@inbox.command("list")
@click.option("--state", "view", type=click.Choice(list(VIEWS)), default="open", show_default=True,
              help="open: new and assigned; or one state; all.")
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--assignee", metavar="NAME", help="Only items assigned to NAME ('-': unassigned).")
@click.option("--priority", type=click.Choice(PRIORITIES))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.pass_obj
def inbox_list(app: App, view, brand, assignee, priority, fmt, limit):
    """Items, most urgent first (priority, then the earliest due)."""
    store = app.store()  # the writer: an older database gets the inbox tables first
    brand = resolve_brand(app.settings, store, brand)
    now = datetime.now(UTC)
    rows = store.inbox.items(states=VIEWS[view], brand=brand, assignee=assignee, priority=priority, limit=limit)
    if fmt == "json":
        for r in rows:
            late = overdue_by(r, now)
            click.echo(json.dumps({k: r[k] for k in ("id", "mention_id", "brand", "priority", "state", "assignee",
                                                     "rule", "entered_at", "mention_at", "due_at",
                                                     "first_response_at", "dismiss_reason", "author", "source", "url")}
                                  | {"overdue_seconds": int(late.total_seconds()) if late else None},
                                  ensure_ascii=False))
        return
    if not rows:
        click.echo(f"No {view} inbox items.")
        return
    for r in rows:
        late = overdue_by(r, now)
        due = f"OVERDUE {human(late)}" if late else f"due {r['due_at'][:16]}"
        who = (r["assignee"] or "unassigned") + (" (disabled)" if r["assignee_disabled"] else "")
        click.echo(f"#{r['id']}\t{r['priority']}\t{r['state']}\t{who}\t{due}\t{r['brand']}\t{r['source']}\t"
                   f"{clean_cell(r['author'] or '-', 30)}\t{clean_cell(r['title'] or r['text'], 80)}")


@inbox.command("show")
@click.argument("item", type=click.IntRange(1))
@click.option("--template", metavar="NAME", help="The reply template to draft with (default: the first that fits).")
@click.pass_obj
def inbox_show(app: App, item, template):
    """One item: the mention, where to reply, a reply draft, notes and every change."""
    store = app.store()  # the writer: an older database gets the inbox tables first
    row = store.inbox.get(item)
    if row is None:
        raise MonitorError(f"no inbox item {item}")
    target = item_reply_target(row)
    draft = draft_for(store, app.settings.inbox, row, template)
    click.echo(f"#{row['id']} {row['priority']} {row['state']}, assigned to {row['assignee'] or 'nobody'}; "
               f"{row['brand']} · {row['source']} · {row['author'] or 'unknown author'}")
    click.echo(clean_cell(row["title"] or "", 200) + ("\n" if row["title"] else "") + clean_cell(row["text"], 2000))
    if row["first_response_at"]:
        at = parse_iso(row["first_response_at"])
        click.echo(f"first response {row['first_response_at']} by {row['responded_by'] or '-'}: "
                   f"{human(at - parse_iso(row['entered_at']))} after it entered the inbox, "
                   f"{human(at - parse_iso(row['mention_at']))} after the mention")
    else:
        late = overdue_by(row, datetime.now(UTC))
        click.echo(f"due {row['due_at']}" + (f": OVERDUE {human(late)}" if late else ""))
    click.echo(f"reply on: {target.label}: {target.url or '-'}" + (f" ({target.hint})" if target.hint else ""))
    click.echo(f"draft ({draft.template or 'no template fits'}):\n  {draft.text}")
    for n in store.inbox.notes(item):
        click.echo(f"note {n['created_at']} {n['author']}: {clean_cell(n['text'], 500)}")
    for e in store.inbox.events(item):
        change = f"{e['from_state'] or '-'} -> {e['to_state']}" if e["to_state"] else ""
        click.echo(f"  {e['at']} {clean_cell(e['actor'] or 'rule', 200)}: {e['action']} {change} "
                   f"{clean_cell(e['assignee'] or '', 200)} {clean_cell(e['detail'] or '', 500)}".rstrip())


@inbox.command("add")
@click.argument("mention", type=click.IntRange(1))
@click.option("--priority", type=click.Choice(PRIORITIES), default="normal", show_default=True)
@by_option
@click.pass_obj
def inbox_add(app: App, mention, priority, by):
    """Put a mention (its id, as `monitor mentions --format json` shows) in the inbox."""
    store = app.store()
    item = route_to_inbox(store, app.settings.inbox, mention, priority, by=by)
    if item is None:
        existing = store.inbox.item_for_mention(mention)
        if existing is None:
            raise MonitorError(f"no mention {mention}")
        click.echo(f"mention {mention} is already inbox item #{existing}")
        return
    click.echo(f"mention {mention} is inbox item #{item} ({priority})")


def _each(app: App, items: tuple[int, ...], action: str, by: str, **kw) -> None:
    """One change on each item; every outcome said; exit 1 when any was refused."""
    store = app.store()
    failed = 0
    for item in items:
        try:
            row = change(store, item, action, by, handoff=Handoff.of(app.settings), **kw)
        except InboxError as exc:
            failed += 1
            click.echo(f"#{item}: {exc}", err=True)
            continue
        click.echo(f"#{item}: {row['state']}" + (f", assigned to {row['assignee']}" if row["assignee"] else ""))
    if failed:
        raise MonitorError(f"{failed} of {len(items)} item(s) not changed")


items_argument = click.argument("items", nargs=-1, required=True, type=click.IntRange(1))


@inbox.command("assign")
@items_argument
@click.option("--to", "assignee", required=True, metavar="USER", help="A web user (monitor users list).")
@by_option
@click.pass_obj
def inbox_assign(app: App, items, assignee, by):
    """Assign items to a user."""
    _each(app, items, "assign", by, assignee=assignee)


@inbox.command("respond")
@items_argument
@by_option
@click.pass_obj
def inbox_respond(app: App, items, by):
    """Mark items responded (their first-response time is now)."""
    _each(app, items, "respond", by)


@inbox.command("close")
@items_argument
@by_option
@click.pass_obj
def inbox_close(app: App, items, by):
    """Close items."""
    _each(app, items, "close", by)


@inbox.command("dismiss")
@items_argument
@click.option("--reason", required=True, help="Why no response is needed (kept with the item).")
@by_option
@click.pass_obj
def inbox_dismiss(app: App, items, reason, by):
    """Dismiss items that need no response, with the reason."""
    _each(app, items, "dismiss", by, reason=reason)


@inbox.command("reopen")
@items_argument
@by_option
@click.pass_obj
def inbox_reopen(app: App, items, by):
    """Re-open closed or dismissed items (assigned again if they had an assignee)."""
    _each(app, items, "reopen", by)


@inbox.command("note")
@click.argument("item", type=click.IntRange(1))
@click.argument("text")
@by_option
@click.pass_obj
def inbox_note(app: App, item, text, by):
    """Add an internal note to an item (never shown outside monitor)."""
    try:
        app.store().inbox.add_note(item, by, text)
    except InboxError as exc:
        raise MonitorError(str(exc)) from None
    click.echo(f"#{item}: note added")


