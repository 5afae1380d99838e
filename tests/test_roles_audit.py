"""Roles (monitor.roles) and the audit log (store.audit): the permission table, users' roles in
the store, the audit rows every change writes, the CLI, and the web page's checks."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlite_utils import Database

from monitor import roles
from monitor.store import Store
from monitor.store.accounts import AccountError
from monitor.store.migrations import migrations
from tests.pg_support import sqlite_only

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> Store:
    return Store(tmp_path / "m.db", now=clock)


# ------------------------------------------------------------------------ the table


def test_each_role_can_what_the_one_before_it_can_and_more():
    for permission, least in roles.PERMISSIONS.items():
        assert [roles.can(r, permission) for r in roles.ROLES] == [roles.rank(r) >= roles.rank(least)
                                                                   for r in roles.ROLES]
    assert roles.can("viewer", "read") and not roles.can("viewer", "inbox.change")
    assert roles.can("member", "export") and not roles.can("member", "user.manage")
    assert roles.can("admin", "audit.read")
    assert not roles.can(None, "read") and not roles.can("root", "read")
    with pytest.raises(KeyError):
        roles.can("admin", "inbox.chnage")  # a typo fails, never lets anyone in
    assert "member role" in roles.refusal("viewer", "mark") and "a viewer" in roles.refusal("viewer", "mark")


# ------------------------------------------------------------------------ the store


def test_new_users_are_members_unless_given_a_role_and_the_audit_log_says_who(store, clock):
    store.accounts.add_user("ann", "h", role="admin", actor="cli:root")
    clock.tick()
    store.accounts.add_user("ben", "h", actor="ann")
    assert {u["username"]: u["role"] for u in store.accounts.list_users()} == {"ann": "admin", "ben": "member"}
    with pytest.raises(AccountError, match="unknown role"):
        store.accounts.add_user("cy", "h", role="owner")
    entries = store.audit.list(action="user.add")
    assert [(e["actor"], e["target_id"], e["at"]) for e in entries] == [
        ("ann", "ben", "2026-03-02T09:01:00+00:00"), ("cli:root", "ann", "2026-03-02T09:00:00+00:00")]
    assert '"role": "member"' in (entries[0]["detail"] or "")


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(store):
    store.accounts.add_user("ann", "h", role="admin")
    store.accounts.add_user("ben", "h")
    with pytest.raises(AccountError, match="last enabled admin"):
        store.accounts.set_role("ann", "member", actor="ann")
    with pytest.raises(AccountError, match="last enabled admin"):
        store.accounts.disable_user("ann", actor="ann")
    assert store.accounts.list_users()[0]["role"] == "admin" and store.accounts.user_disabled("ann") is False
    assert store.audit.count(action="user.role") == 0  # refused: nothing recorded as done
    assert store.accounts.set_role("ben", "admin", actor="ann") == "member"
    assert store.accounts.set_role("ann", "viewer", actor="ben") == "admin"  # another admin exists now
    with pytest.raises(AccountError, match="no user"):
        store.accounts.set_role("nobody", "viewer")
    assert [e["detail"] for e in store.audit.list(action="user.role")] == [
        '{"from": "admin", "to": "viewer"}', '{"from": "member", "to": "admin"}']


def test_a_disabled_admin_does_not_count_as_the_one_left(store):
    store.accounts.add_user("ann", "h", role="admin")
    store.accounts.add_user("ben", "h", role="admin")
    store.accounts.disable_user("ben", actor="ann")
    with pytest.raises(AccountError):
        store.accounts.disable_user("ann")
    assert store.accounts.enable_user("ben", actor="ann")
    assert store.accounts.disable_user("ann", actor="ben")
    assert [e["action"] for e in store.audit.list(action="user.")] == [
        "user.disable", "user.enable", "user.disable", "user.add", "user.add"]


def test_sessions_carry_the_role(store, clock):
    store.accounts.add_user("ann", "h", role="viewer")
    uid = store.accounts.get_user("ann")["id"]  # type: ignore[index]
    store.accounts.create_session("t", uid, "c", clock.now + timedelta(hours=1))
    assert store.accounts.get_session("t", clock.now)["role"] == "viewer"  # type: ignore[index]


def test_audit_list_filters_pages_and_reads_inbox_events_too(store, clock):
    for i in range(5):
        store.audit.record("ann" if i % 2 == 0 else "ben", f"mark.{'set' if i < 3 else 'clear'}", "author", i,
                           {"n": i})
        clock.tick(10)
    assert store.audit.count() == 5
    assert [e["target_id"] for e in store.audit.list(limit=2)] == ["4", "3"]
    assert [e["target_id"] for e in store.audit.list(limit=2, offset=2)] == ["2", "1"]
    assert [e["target_id"] for e in store.audit.list(actor="ben")] == ["3", "1"]
    assert [e["target_id"] for e in store.audit.list(action="mark.clear")] == ["4", "3"]
    assert [e["target_id"] for e in store.audit.list(since=T0 + timedelta(minutes=10),
                                                     until=T0 + timedelta(minutes=30))] == ["2", "1"]
    assert store.audit.list(action="mark.setx") == []
    assert store.audit.actors() == ["ann", "ben"]


def test_record_inside_a_transaction_goes_with_it(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.audit.record("ann", "user.role", "user", "ben")
        raise RuntimeError("the change failed")
    assert store.audit.count() == 0


def test_detail_passes_the_secret_redaction_and_is_bounded(store):
    store.redact = lambda text: text.replace("s3cret", "[redacted]")
    store.audit.record("ann", "token.create", "token", 1, "made with s3cret " + "x" * 5000)
    detail = store.audit.list()[0]["detail"] or ""
    assert "s3cret" not in detail and "[redacted]" in detail and len(detail) <= 1000


@sqlite_only  # an upgrade of a SQLite file from before roles
def test_upgrading_makes_every_existing_user_an_admin(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m120_roles_audit")
    conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('old', 'h', '2025-01-01')")
    conn.close()
    store = Store(path)
    assert [(u["username"], u["role"]) for u in store.accounts.list_users()] == [("old", "admin")]
    store.accounts.add_user("new", "h")
    assert {u["username"]: u["role"] for u in store.accounts.list_users()} == {"old": "admin", "new": "member"}


# ------------------------------------------------------------------------ the CLI


def _cli_config(tmp_path) -> str:
    (tmp_path / "config.yaml").write_text("database: m.db\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n")
    return str(tmp_path / "config.yaml")


def test_cli_users_roles_and_audit_are_recorded_as_the_os_user(tmp_path):
    from click.testing import CliRunner

    from monitor.cli import main
    from monitor.cli_common import cli_actor

    cfg = _cli_config(tmp_path)

    def run(*args: str, **kw):
        return CliRunner().invoke(main, [*args, "-c", cfg], **kw)

    r = run("users", "add", "ann", "--role", "admin", "--password-stdin", input="a long enough password\n")
    assert r.exit_code == 0 and "created (admin)" in r.output
    r = run("users", "add", "ben", "--password-stdin", input="a long enough password\n")
    assert r.exit_code == 0 and "created (member)" in r.output
    assert run("users", "add", "cy", "--role", "owner", "--password-stdin", input="x" * 12 + "\n").exit_code == 2
    r = run("users", "role", "ben", "viewer")
    assert r.exit_code == 0 and "member -> viewer" in r.output
    r = run("users", "role", "ann", "member")
    assert r.exit_code == 1 and "last enabled admin" in r.output
    r = run("users", "disable", "ann")
    assert r.exit_code == 1 and "last enabled admin" in r.output
    listing = run("users", "list").output.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["ann", "admin"], ["ben", "viewer"]]
    r = run("audit", "--action", "user.role")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert len(lines) == 1 and f"\t{cli_actor()}\tuser.role\tuser ben\t" in lines[0]
    assert cli_actor().startswith("cli:") and len(cli_actor()) > 4
    r = run("audit", "--actor", cli_actor(), "--format", "json")
    import json
    assert [e["action"] for e in json.loads(r.output)] == ["user.role", "user.add", "user.add"]
    assert run("audit", "--actor", "nobody").output == ""


def test_a_user_added_while_there_is_no_admin_hears_how_to_make_one(tmp_path):
    from click.testing import CliRunner

    from monitor.cli import main

    cfg = _cli_config(tmp_path)
    r = CliRunner().invoke(main, ["users", "add", "ben", "-c", cfg, "--password-stdin"],
                           input="a long enough password\n")
    assert r.exit_code == 0 and "monitor users role ben admin" in r.output


# ------------------------------------------------------------------------ the web page

from tests.web_data import NOW  # noqa: E402
from tests.web_support import PASSWORD, hidden, login, make_app, make_db  # noqa: E402
from tests.web_support import client as web_client  # noqa: E402

XSS = "<script>window.__xss(1)</script>"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def web(tmp_path):
    """maria (admin, from make_db), meg (member), vic (viewer); bob's detractor in the inbox."""
    from monitor import inbox as desk
    from monitor.config import InboxSettings
    from monitor.web.security import hash_password

    settings, store = make_db(tmp_path)
    for name, role in (("meg", "member"), ("vic", "viewer")):
        store.accounts.add_user(name, hash_password(PASSWORD, n=2**12), role=role)
    bob = store.query("SELECT id, author_id FROM mentions WHERE text LIKE 'bob says detractor%' ORDER BY id")[0]
    item = desk.route_to_inbox(store, InboxSettings(), bob["id"], "critical", rule="r", now=NOW - timedelta(hours=2))
    return settings, store, {"item": item, "mention": bob["id"], "author": bob["author_id"]}


async def _as(web, name: str):
    settings, store, _ = web
    c = web_client(make_app(settings, store))
    await c.__aenter__()
    r = await login(c, name)
    assert r.status_code == 303, r.text
    return c


def _changes(store) -> list[tuple[str, str]]:
    """What people did (the set-up's users and the rule's inbox entry are by ``system``)."""
    return [(e["actor"], e["action"]) for e in store.audit.list(limit=1000) if e["actor"] != "system"]


@pytest.mark.anyio
async def test_a_viewer_reads_everything_but_every_change_is_refused_and_no_button_shown(web):
    settings, store, ids = web
    c = await _as(web, "vic")
    item, author, mention = ids["item"], ids["author"], ids["mention"]
    pages = {}
    for path in ("/overview", "/inbox", f"/inbox/{item}", f"/authors/{author}", "/mentions", "/advocates",
                 "/corrections", "/api/advocates"):
        r = await c.get(path)
        assert r.status_code == 200, path
        pages[path] = r.text
    csrf = hidden(pages["/inbox"], "csrf")
    posts = {
        f"/inbox/{item}/change": {"action": "assign", "assignee": "vic", "version": "1"},
        f"/inbox/{item}/notes": {"text": "hello"},
        "/inbox/bulk": {"action": "close", "item": f"{item}:1"},
        "/inbox/add": {"mention_id": str(mention)},
        f"/authors/{author}/marks": {"brand": "Acme", "mark": "contacted", "on": "1"},
        f"/authors/{author}/links": {"source": "demo", "handle": "alice"},
        f"/authors/{author}/unlink": {"author_id": str(author)},
        f"/mentions/{mention}/correct": {"field": "advocacy", "label": "promoter"},
        "/admin/users/role": {"username": "vic", "role": "admin"},
        "/admin/users/disable": {"username": "maria"},
    }
    for path, data in posts.items():
        r = await c.post(path, data={**data, "csrf": csrf})
        assert r.status_code == 403, path
        assert "needs the" in r.text and "you are a viewer" in r.text, path
    for path in ("/export/advocates.csv", "/export/detractors.csv", "/export/mentions.csv",
                 "/export/corrections.csv", "/admin/users", "/audit"):
        r = await c.get(path)
        assert r.status_code == 403 and "you are a viewer" in r.text, path
    assert "needs the member role" in (await c.get("/export/mentions.csv")).text
    api = await c.post(f"/api/inbox/{item}/change", json={"action": "assign", "assignee": "maria", "version": 1},
                       headers={"x-csrf-token": csrf})
    assert api.status_code == 403 and "needs the member role" in api.json()["detail"]
    assert "needs the admin role" in (await c.get("/audit")).text
    # nothing changed
    assert store.inbox.get(item)["state"] == "new" and store.inbox.notes(item) == []  # type: ignore[index]
    assert store.accounts.marks_of(author) == [] and store.accounts.corrections() == []
    assert {u["username"]: u["role"] for u in store.accounts.list_users()}["vic"] == "viewer"
    assert _changes(store) == [("vic", "login")]  # logging in is recorded, nothing else
    # and no buttons
    assert f'action="/inbox/{item}/change"' not in pages[f"/inbox/{item}"]
    assert f'action="/inbox/{item}/notes"' not in pages[f"/inbox/{item}"]
    assert "needs the member role" in pages[f"/inbox/{item}"]
    assert 'name="item"' not in pages["/inbox"] and 'name="action"' not in pages["/inbox"]
    assert 'action="/inbox/add"' not in pages["/mentions"] and '/correct"' not in pages["/mentions"]
    assert "/export/" not in pages["/mentions"] + pages["/advocates"] + pages["/corrections"]
    assert "/marks" not in pages[f"/authors/{author}"] and "/links" not in pages[f"/authors/{author}"]
    assert 'href="/admin/users"' not in pages["/overview"] and 'href="/audit"' not in pages["/overview"]
    await c.__aexit__(None, None, None)


@pytest.mark.anyio
async def test_a_member_works_the_inbox_and_marks_but_not_the_admin_pages(web):
    settings, store, ids = web
    c = await _as(web, "meg")
    item, author = ids["item"], ids["author"]
    page = await c.get(f"/inbox/{item}")
    assert f'action="/inbox/{item}/change"' in page.text and f'action="/inbox/{item}/notes"' in page.text
    csrf = hidden(page.text, "csrf")
    r = await c.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "assign", "assignee": "meg",
                                                    "version": "1"})
    assert r.status_code == 303
    for action, version in (("close", "2"), ("reopen", "3")):  # a closed item re-opened: allowed, audited
        r = await c.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": action, "version": version})
        assert r.status_code == 303, action
    assert store.inbox.get(item)["state"] == "assigned"  # type: ignore[index]
    r = await c.post(f"/authors/{author}/marks", data={"csrf": csrf, "brand": "Acme", "mark": "contacted", "on": "1"})
    assert r.status_code == 303
    r = await c.get("/export/detractors.csv")
    assert r.status_code == 200 and "bob" in r.text
    assert (await c.get("/admin/users")).status_code == 403 and (await c.get("/audit")).status_code == 403
    done = _changes(store)
    assert {("meg", "export.detractors"), ("meg", "inbox.reopen"), ("meg", "inbox.close"),
            ("meg", "inbox.assign")} <= set(done)
    assert {a for who, a in done if who == "meg"} & {"mark.set", "programme.status"}  # the mark, as recorded
    reopen = store.audit.list(action="inbox.reopen")[0]
    assert reopen["at"] == NOW.isoformat() and reopen["detail"] == "closed -> assigned"
    await c.__aexit__(None, None, None)


@pytest.mark.anyio
async def test_two_people_assigning_at_once_the_second_hears_it_and_both_are_in_the_log(web):
    settings, store, ids = web
    item = ids["item"]
    meg, maria = await _as(web, "meg"), await _as(web, "maria")
    page_meg, page_maria = await meg.get(f"/inbox/{item}"), await maria.get(f"/inbox/{item}")
    assert hidden(page_meg.text, "version") == hidden(page_maria.text, "version") == "1"
    r = await maria.post(f"/inbox/{item}/change", data={"csrf": hidden(page_maria.text, "csrf"), "action": "assign",
                                                        "assignee": "maria", "version": "1"})
    assert r.status_code == 303
    r = await meg.post(f"/inbox/{item}/change", data={"csrf": hidden(page_meg.text, "csrf"), "action": "assign",
                                                      "assignee": "meg", "version": "1"})
    assert r.status_code == 409 and "changed by maria" in r.text and "Nothing was changed" in r.text
    assert store.inbox.get(item)["assignee"] == "maria"  # type: ignore[index]
    log = store.audit.list(target_type="inbox_item", target_id=item)
    assert [(e["actor"], e["action"]) for e in log][:2] == [("meg", "inbox.conflict"), ("maria", "inbox.assign")]
    assert '"assignee": "meg"' in (log[0]["detail"] or "") and "changed by maria" in (log[0]["detail"] or "")
    for c in (meg, maria):
        await c.__aexit__(None, None, None)


@pytest.mark.anyio
async def test_admin_changes_roles_with_csrf_and_cannot_remove_the_last_admin(web):
    settings, store, ids = web
    c = await _as(web, "maria")
    page = await c.get("/admin/users")
    assert page.status_code == 200 and 'href="/admin/users"' in page.text and 'href="/audit"' in page.text
    assert 'data-user="vic"' in page.text
    csrf = hidden(page.text, "csrf")
    r = await c.post("/admin/users/role", data={"csrf": "forged", "username": "vic", "role": "member"})
    assert r.status_code == 403
    r = await c.post("/admin/users/role", data={"csrf": csrf, "username": "vic", "role": "member"})
    assert r.status_code == 303 and "viewer" in r.headers["location"]
    r = await c.post("/admin/users/role", data={"csrf": csrf, "username": "maria", "role": "viewer"})
    assert r.status_code == 400 and "last enabled admin" in r.text
    r = await c.post("/admin/users/disable", data={"csrf": csrf, "username": "maria"})
    assert r.status_code == 400 and "last enabled admin" in r.text
    r = await c.post("/admin/users/role", data={"csrf": csrf, "username": "vic", "role": "root"})
    assert r.status_code == 400 and "unknown role" in r.text
    r = await c.post("/admin/users/enable", data={"csrf": csrf, "username": "nobody"})
    assert r.status_code == 400 and "no user" in r.text
    assert {u["username"]: u["role"] for u in store.accounts.list_users()} == {
        "maria": "admin", "meg": "member", "vic": "member"}
    role = store.audit.list(action="user.role")
    assert [(e["actor"], e["target_id"], e["detail"]) for e in role] == [
        ("maria", "vic", '{"from": "viewer", "to": "member"}')]
    await c.__aexit__(None, None, None)


@pytest.mark.anyio
async def test_a_disabled_users_assignments_stay_visible_and_can_be_reassigned(web):
    settings, store, ids = web
    item = ids["item"]
    store.inbox.change(item, "assign", "maria", assignee="meg")
    c = await _as(web, "maria")
    csrf = hidden((await c.get("/admin/users")).text, "csrf")
    assert (await c.post("/admin/users/disable", data={"csrf": csrf, "username": "meg"})).status_code == 303
    users = (await c.get("/admin/users")).text
    assert 'href="/inbox?assignee=meg">1</a>' in users and "disabled" in users
    inbox = (await c.get("/inbox")).text
    assert "meg" in inbox and "(disabled)" in inbox
    page = await c.get(f"/inbox/{item}")
    assert ">maria</option>" in page.text and ">meg</option>" not in page.text
    assert ">vic</option>" not in page.text  # a viewer cannot work items
    r = await c.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "assign", "assignee": "vic",
                                                    "version": hidden(page.text, "version")})
    assert r.status_code == 400 and "is a viewer" in r.text
    r = await c.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "assign", "assignee": "maria",
                                                    "version": hidden(page.text, "version")})
    assert r.status_code == 303 and store.inbox.get(item)["assignee"] == "maria"  # type: ignore[index]
    assert {e["action"] for e in store.audit.list(actor="maria")} >= {"inbox.assign", "user.disable"}
    await c.__aexit__(None, None, None)


@pytest.mark.anyio
async def test_the_audit_page_filters_pages_and_escapes(web):
    settings, store, ids = web
    store.audit.record(XSS, "mark.set", "author", ids["author"], {"note": XSS})
    for i in range(120):
        store.audit.record("bulk", "test.row", "thing", i)
    c = await _as(web, "maria")
    page = await c.get("/audit")
    assert page.status_code == 200 and XSS not in page.text and "&lt;script&gt;" in page.text
    assert "mark.set" not in page.text  # older than the 120 rows and the login: on page 2
    assert "page=2" in page.text and "mark.set" in (await c.get("/audit?page=2")).text
    first = await c.get("/audit?action=test.row")
    assert first.text.count("<code>test.row</code>") == 100 and "page=2" in first.text
    second = await c.get("/audit?action=test.row&page=2")
    assert second.text.count("<code>test.row</code>") == 20 and "page=3" not in second.text
    only = await c.get("/audit", params={"actor": XSS})
    assert only.text.count("<code>mark.set</code>") == 1 and "test.row" not in only.text
    assert "<code>inbox.entered</code>" in (await c.get("/audit?action=inbox")).text
    day = NOW.date().isoformat()
    assert "test.row" in (await c.get(f"/audit?since={day}&until={day}")).text
    assert "Nothing recorded" in (await c.get("/audit?until=2000-01-01")).text
    assert (await c.get("/audit?since=yesterday")).status_code == 400
    await c.__aexit__(None, None, None)
