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
