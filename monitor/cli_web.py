"""CLI commands about authors and the web page: ``monitor advocates ...``, ``monitor users ...``
(accounts and their roles), ``monitor audit`` and ``monitor serve`` (registered on the group in
cli.py). Changes made here are recorded in the audit log as ``cli:<os user>``."""

from __future__ import annotations

import json
import sys
import time
from operator import itemgetter

import click

from monitor import csvsafe
from monitor.cli_common import App, cli_actor, parse_since, print_rows, resolve_author_source, resolve_brand
from monitor.errors import MonitorError
from monitor.roles import ROLES
from monitor.textutil import mention_text

ADVOCATE_COLUMNS = ["person_id", "brand", "source", "handle", "flag", "score", "advocate_score", "detractor_score",
                    "stance", "mentions", "promoters", "passives", "detractors", "reach", "weeks_active", "flips",
                    "last_flip", "last_flip_at", "first_at", "last_at", "sources", "marks", "reasons"]


@click.group(invoke_without_command=True)
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--source", help="The authors' platform (e.g. hackernews), or a source whose mentions come from one.")
@click.option("--flag", type=click.Choice(["advocate", "detractor"]), help="Only flagged authors.")
@click.option("--detractors", is_flag=True, help="Rank by detractor score instead of advocate score.")
@click.option("--search", "q", help="Substring of the handle.")
@click.option("--mark", type=click.Choice(["contacted", "rewarded", "do_not_contact", "none"]))
@click.option("--min-score", type=float)
@click.option("--flipped", is_flag=True, help="Only authors who changed sides.")
@click.option("--sort", type=click.Choice(["score", "mentions", "promoters", "detractors", "reach", "last", "handle",
                                           "flips"]), default="score", show_default=True)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--no-refresh", is_flag=True, help="Read the aggregates as they are (no write to the database).")
@click.pass_context
def advocates(ctx, brand, source, flag, detractors, q, mark, min_score, flipped, sort, limit, fmt, no_refresh):
    """Authors ranked by advocate (or detractor) score, with the reasons for each score."""
    if ctx.invoked_subcommand:
        return
    from monitor.handoff import refresh_and_announce
    from monitor.web.views import Views

    app: App = ctx.obj
    settings = app.settings
    if not no_refresh:
        refresh_and_announce(app.store(), settings)
    kind = "detractor" if detractors else "advocate"
    reader = app.store(readonly=True)
    brand = resolve_brand(settings, reader, brand)
    source = resolve_author_source(settings, reader, source, brand)
    rows = Views(reader, settings).authors(
        kind, brand=brand, source=source, flag=flag, q=q, mark=mark, min_score=min_score, flipped=flipped, sort=sort,
        limit=limit)
    for r in rows:
        r["reasons"] = "; ".join(f"{c['name']} {c['fact']} +{c['points']}" for c in r["reasons"] if c["points"] > 0)
        r["marks"] = " ".join(r["marks"])
    rows = [{c: r.get(c) for c in ADVOCATE_COLUMNS} for r in rows]
    if fmt != "table":
        print_rows(rows, fmt)
        return
    if not rows:
        click.echo(f"no {kind}s match (monitor mentions shows what is stored; authors count once their mentions "
                   "are classified)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("handle", "source", "brand", "score", "flag", "stance", "pro/pas/det", "reach", "last", "why"):
        table.add_column(col, overflow="fold", max_width=60 if col == "why" else None)
    for r in rows:
        flip = f" (flipped {r['last_flip']})" if r["flips"] else ""
        table.add_row(r["handle"], r["source"], r["brand"], f"{r['score']:.0f}", r["flag"] or "", r["stance"] + flip,
                      f"{r['promoters']}/{r['passives']}/{r['detractors']}",
                      "-" if r["reach"] is None else str(r["reach"]),
                      r["last_at"][:10], r["reasons"])
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


@advocates.command("refresh")
@click.option("--full", is_flag=True, help="Rebuild everything rather than what changed.")
@click.pass_obj
def advocates_refresh(app: App, full):
    """Bring the advocate scores and the advocacy index up to date (and queue the hand-off's
    advocate.flagged / detractor.flagged events of persons newly flagged)."""
    from monitor.handoff import refresh_and_announce

    t0 = time.monotonic()
    r = refresh_and_announce(app.store(), app.settings, full=full)
    click.echo(f"{'full' if r.full else 'incremental'} refresh with model {r.model or '(none yet)'}: "
               f"{r.weeks} week group(s), {r.persons} person(s) in {time.monotonic() - t0:.1f}s")


@advocates.command("index")
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--weeks", type=int, default=12, show_default=True)
@click.option("--by", type=click.Choice(["week", "source"]), default="week", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def advocates_index(app: App, brand, weeks, by, fmt):
    """The advocacy index (NPS-style, -100..+100) per week or source, by signal and basis:
    basis 'text' is the model's label, 'stars' the review ratings (5 promoter, 4 passive, 1-3 detractor),
    'survey' imported 0-10 survey scores (9-10 promoter, 7-8 passive, 0-6 detractor)."""
    from monitor import advocates as adv

    cfg = app.settings.advocates
    reader = app.store(readonly=True)
    brand = resolve_brand(app.settings, reader, brand)
    rows = reader.advocacy.weekly(brand, adv.since_week(weeks))
    out = []
    for b in sorted({r["brand"] for r in rows}):
        brows = [r for r in rows if r["brand"] == b]
        for signal, basis in (("relationship", "text"), ("transactional", "text"), ("transactional", "stars"),
                              ("relationship", "survey"), ("transactional", "survey")):
            series = adv.index_series(brows, cfg, basis=basis, signal=signal, key=itemgetter(by))
            for key, ix in series.items():
                out.append({"brand": b, by: key, "signal": signal, "basis": basis, "index": ix["value"],
                            "low": ix["low"], "high": ix["high"], "n": ix["n"], "promoters": ix["promoters"],
                            "passives": ix["passives"], "detractors": ix["detractors"]})
    if fmt == "table" and not out:
        click.echo(f"no advocacy figures{f' for {brand}' if brand else ''} in the last {weeks} week(s) (monitor "
                   "advocates refresh brings them up to date with the classified mentions)")
        return
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for col in ("brand", by, "signal", "basis", f"index [{cfg.index_confidence:.0%} interval]", "n",
                    "pro/pas/det"):
            table.add_column(col, overflow="fold", justify="right" if col in ("n", "pro/pas/det") else "left")
        for r in out:
            if r["index"] is None:
                shown = f"- (n<{cfg.index_min_sample})"
            else:
                shown = f"{r['index']:+.0f} [{r['low']:+.0f}, {r['high']:+.0f}]"
            table.add_row(r["brand"], r[by], r["signal"], r["basis"], shown, str(r["n"]),
                          f"{r['promoters']}/{r['passives']}/{r['detractors']}")
        Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 200).print(table)
        return
    print_rows(out, fmt)


@advocates.command("link")
@click.argument("person")
@click.argument("other")
@click.option("--by", "user", default=cli_actor, show_default="cli:<os user>", help="Who confirmed the link.")
@click.pass_obj
def advocates_link(app: App, person, other, user):
    """Confirm that two handles (SOURCE:HANDLE each) are one person; their mentions then count together."""
    from monitor import advocates as adv

    refs = []
    for name, ref in (("PERSON", person), ("OTHER", other)):
        source, colon, handle = (part.strip() for part in ref.partition(":"))
        if not (colon and source and handle):
            raise click.BadParameter(f"{ref!r} is not SOURCE:HANDLE (the author's platform, a colon, the handle), "
                                     "e.g. monitor advocates link hackernews:alice reddit:alice_dev", param_hint=name)
        refs.append((source, handle))
    store = app.store()
    ids = []
    for source, handle in refs:
        found = store.accounts.find_author(source, handle)
        if found is None:
            raise MonitorError(f"no author {handle!r} on source {source!r}")
        ids.append(found)
    store.accounts.link_authors(ids[0], ids[1], user)
    adv.recompute_persons(store, app.settings.advocates, ids)
    click.echo(f"linked {other} to {person}")


@advocates.command("corrections")
@click.option("--field", type=click.Choice(["advocacy", "sentiment", "relevance"]), default="advocacy",
              show_default=True, help="relevance: the marks about / not about the brand.")
@click.pass_obj
def advocates_corrections(app: App, field):
    """Label corrections made on the web page, as evaluation CSV (text,label,...) on stdout."""
    rows = [{"text": mention_text(r), "brand": r["brand"], "label": r["label"], "field": r["field"],
             "mention_id": r["mention_id"], "model_label": r["model_label"], "model": r["model"]}
            for r in app.store(readonly=True).accounts.corrections(field)]
    csvsafe.write(sys.stdout, rows, ["text", "brand", "label", "field", "mention_id", "model_label", "model"])


@click.group()
def users():
    """Accounts for the web page and their roles: viewer (reads everything), member (also works
    the inbox, marks, corrects, links, exports), admin (also manages users, every user's API
    tokens, reads the audit log)."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="viewer, member or admin. Default: member for a new user; --replace keeps the user's role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (for scripts).")
@click.option("--replace", is_flag=True, help="Set a new password for an existing user (logs them out).")
@click.pass_obj
def users_add(app: App, username, role, password_stdin, replace):
    """Create a user (asks for the password twice); a member unless --role says otherwise."""
    from monitor.web.security import hash_password

    if not username.strip() or len(username) > 100:
        raise MonitorError("the user name must be 1 to 100 characters")
    store = app.store()
    disabled = store.accounts.user_disabled(username)
    if disabled is not None and not replace:
        raise MonitorError(f"user {username!r} exists (use --replace to set a new password)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise MonitorError("the password must have at least 10 characters")
    store.accounts.add_user(username, hash_password(password), replace=replace, role=role, actor=cli_actor())
    now = {u["username"]: u["role"] for u in store.accounts.list_users()}[username]
    if disabled:
        click.echo(f"user {username!r} updated ({now}); still disabled "
                   f"(monitor users enable {username} lets them log in)")
    else:
        click.echo(f"user {username!r} {'updated' if disabled is not None else 'created'} ({now})")
    if not store.accounts.admins():
        click.echo(f"no enabled admin yet: `monitor users role {username} admin` lets one manage users on the web page")


@users.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def users_role(app: App, username, role):
    """Give a user another role (the last enabled admin stays one)."""
    old = app.store().accounts.set_role(username, role, actor=cli_actor())
    click.echo(f"user {username!r}: {old} -> {role}" if old != role else f"user {username!r} is already {role}")


@users.command("list")
@click.pass_obj
def users_list(app: App):
    """Every user with their role, whether disabled, and their open inbox items."""
    for u in app.store().accounts.list_users():
        click.echo("\t".join([u["username"], u["role"], f"created {u['created_at']}"]
                             + (["disabled"] if u["disabled"] else [])
                             + ([f"{u['open_items']} open inbox item(s)"] if u["open_items"] else [])))


@users.command("disable")
@click.argument("username")
@click.pass_obj
def users_disable(app: App, username):
    """Disable a user and end their sessions (their inbox items stay assigned, reassignable)."""
    if not app.store().accounts.disable_user(username, actor=cli_actor()):
        raise MonitorError(f"no user {username!r}")
    click.echo(f"user {username!r} disabled")


@users.command("enable")
@click.argument("username")
@click.pass_obj
def users_enable(app: App, username):
    """Let a disabled user log in again, with the password they had."""
    if not app.store().accounts.enable_user(username, actor=cli_actor()):
        raise MonitorError(f"no user {username!r}")
    click.echo(f"user {username!r} enabled")


@click.command()
@click.option("--actor", help="Only this actor: a user name, cli:<os user> or system.")
@click.option("--action", help="Only actions starting with this, e.g. inbox, user.role, programme, token, export.")
@click.option("--since", help="From this time on: 7d, 24h, or an ISO date.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def audit(app: App, actor, action, since, limit, fmt):
    """The audit log, newest first: who changed what, when (users and roles, logins, inbox items
    with refused changes, the advocate programme and marks, corrections, author links, API
    tokens, exports, erasures)."""
    rows = app.store(readonly=True).audit.list(actor=actor, action=action, since=parse_since(since) if since else None,
                                               limit=limit)
    from monitor.cli_inbox import clean_cell  # terminal-safe: no escape sequences from a name or detail

    columns = ["at", "actor", "action", "target_type", "target_id", "detail"]
    if fmt == "table":
        for r in rows:
            target = f"{r['target_type']} {r['target_id']}" if r["target_type"] else "-"
            click.echo("\t".join([r["at"], clean_cell(r["actor"], 200), r["action"], target,
                                  clean_cell(r["detail"] or "", 300)]))
        return
    if fmt == "json":
        click.echo(json.dumps([{k: r[k] for k in columns} for r in rows], ensure_ascii=False, indent=1))
        return
    csvsafe.write(sys.stdout, [dict(r) for r in rows], columns)


@click.command()
@click.option("--host", help="Default: web.host in config (127.0.0.1).")
@click.option("--port", type=int, help="Default: web.port in config (8470).")
@click.pass_obj
def serve(app: App, host, port):
    """Serve the web page for marketing teams (log in with a user from `monitor users add`)."""
    import contextlib

    from monitor.web import serve as run_server

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the page is stopped: not an error
        run_server(app.settings, host=host, port=port)
