"""CLI commands of the hand-off: ``monitor tokens create|list|revoke`` (API tokens for the JSON
API) and ``monitor advocates export`` (CRM-ready files for HubSpot and Salesforce); registered
on the group in cli.py. Token creation, revocation and exports are recorded in the audit log
as ``cli:<os user>``."""

from __future__ import annotations

import sys

import click

from monitor import crm, roles
from monitor.cli_common import App, cli_actor, resolve_author_source, resolve_brand
from monitor.cli_web import advocates
from monitor.errors import MonitorError


@click.group()
def tokens():
    """API tokens: scripts use the JSON API with 'Authorization: Bearer <token>'. A token acts as
    its user (never above the user's role); scope read (GET) or read-write (also POST)."""


@tokens.command("create")
@click.argument("username")
@click.option("--scope", type=click.Choice(["read", "read-write"]), default="read", show_default=True)
@click.option("--expires", default="90d", show_default=True, help="30d, 12h, 1w... or never.")
@click.option("--name", default="", help="What the token is for (shown in lists).")
@click.pass_obj
def tokens_create(app: App, username, scope, expires, name):
    """Create a token for USERNAME and print it once (only its hash is stored)."""
    from monitor import tokens as tk

    store = app.store()
    user = store.accounts.get_user(username)
    if user is None:
        raise MonitorError(f"no enabled user {username!r} (monitor users list)")
    allowed = scope == "read" or roles.can(user["role"], "token.write")
    actor = cli_actor()
    with store.transaction():
        new = tk.create(store, username, scope, name=name, expires=tk.parse_expiry(expires), by=actor,
                        allowed=allowed)
        store.audit.record(actor, "token.create", "token", new.id,
                           {"user": username, "scope": scope, "name": name.strip()[:100],
                            "expires_at": new.expires_at.isoformat() if new.expires_at else None})
    click.echo(new.token)
    click.echo(f"token {new.id} for {username} ({scope}), expires "
               f"{new.expires_at.isoformat() if new.expires_at else 'never'}: copy it now, it is not shown again",
               err=True)


@tokens.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@click.option("--all", "show_all", is_flag=True, help="Revoked tokens too.")
@click.pass_obj
def tokens_list(app: App, username, show_all):
    """Tokens with their user, scope, created, last used and expiry (never the token itself)."""
    from monitor import tokens as tk

    store = app.store(readonly=True)
    rows = store.handoff.tokens(username, include_revoked=show_all)
    if not rows:
        click.echo("no tokens (monitor tokens create USER)")
        return
    now = store.now()
    for t in rows:
        state = tk.state(t, now)
        click.echo("\t".join([str(t["id"]), t["prefix"] + "…", t["username"], t["scope"], t["name"] or "-",
                              f"created {t['created_at']}", f"last used {t['last_used_at'] or 'never'}",
                              f"expires {t['expires_at'] or 'never'}", state]))


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(1))
@click.pass_obj
def tokens_revoke(app: App, token_id):
    """Revoke token TOKEN_ID (monitor tokens list shows the ids): it stops working at once."""
    from monitor import tokens as tk

    store = app.store()
    row = store.handoff.token(token_id)
    if row is None:
        raise MonitorError(f"no token {token_id} (monitor tokens list)")
    actor = cli_actor()
    with store.transaction():
        done = tk.revoke(store, token_id, actor)
        if done:
            store.audit.record(actor, "token.revoke", "token", token_id, {"user": row["username"]})
    click.echo(f"token {token_id} of {row['username']} " + ("revoked" if done else "was revoked already"))


@advocates.command("export")
@click.option("--format", "fmt", type=click.Choice(crm.FORMATS), default="hubspot", show_default=True,
              help="The CRM's contact import: hubspot, salesforce-lead or salesforce-contact.")
@click.option("--detractors", is_flag=True, help="Detractors instead of advocates.")
@click.option("--brand", help="A brand, as configured (any case).")
@click.option("--source", help="The authors' platform (e.g. hackernews).")
@click.option("--flag", type=click.Choice(["advocate", "detractor"]), help="Only flagged authors.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=10_000, show_default=True)
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="The CSV file to write (default: stdout).")
@click.pass_obj
def advocates_export(app: App, fmt, detractors, brand, source, flag, limit, output):
    """Advocates (or detractors) as a CSV the CRM's contact import takes: HubSpot or Salesforce
    Lead / Contact columns, then the monitor's fields (handle, platform, profile URL, brand,
    score, last mention, programme status). Unknown fields (e-mail) stay empty; people marked
    do not contact are left out (counted on stderr)."""
    from monitor import csvsafe
    from monitor.web.views import Views

    kind = "detractor" if detractors else "advocate"
    reader = app.store(readonly=True)
    brand = resolve_brand(app.settings, reader, brand)
    source = resolve_author_source(app.settings, reader, source, brand)
    listed = Views(reader, app.settings).authors(kind, brand=brand, source=source, flag=flag, limit=limit)
    profiles = reader.handoff.profiles([r["person_id"] for r in listed])
    rows, columns, left_out = crm.rows(listed, kind, fmt, profiles, crm.programme_status(reader))
    app.store().audit.record(cli_actor(), f"export.crm-{kind}s", None, None,
                             {"rows": len(rows), "left_out_do_not_contact": left_out, "format": fmt, "brand": brand,
                              "source": source, "flag": flag})
    csvsafe.write(output, rows, columns)
    if output is not sys.stdout or left_out:
        click.echo(f"{len(rows)} {kind}(s) written for {fmt}"
                   + (f"; {left_out} marked do not contact left out" if left_out else ""), err=True)
