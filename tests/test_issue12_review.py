"""Issue 12 (parts 4 to 6) seen together: what a review of the programme, the hand-off and the
roles found between them, one test per fix."""

from __future__ import annotations

import json

import pytest

from monitor import governance
from monitor import inbox as desk
from monitor.config import Settings
from monitor.settings_inbox import InboxSettings
from monitor.store import Store
from tests.web_data import NOW, seed


@pytest.fixture
def seeded(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    seed(store)
    yield store
    store.close()


def settings_for(tmp_path, **extra) -> Settings:
    return Settings.model_validate({"database": str(tmp_path / "monitor.db"),
                                    "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}], **extra})


def _alice_item(store: Store) -> int:
    mention = store.query("SELECT m.id FROM mentions m JOIN authors a ON a.id = m.author_id "
                          "WHERE a.handle = 'alice' ORDER BY m.id")[0]["id"]
    item = desk.route_to_inbox(store, InboxSettings(), mention, "high", rule="r", now=NOW)
    assert item is not None
    store.inbox.add_note(item, "maria", "alice asked for a refund by e-mail")
    return item


def test_forget_counts_the_inbox_items_of_the_persons_mentions_with_their_history_and_notes(seeded, tmp_path):
    item = _alice_item(seeded)
    result = governance.forget(seeded, settings_for(tmp_path), "alice")
    assert result.rows["inbox_items"] == 1 and result.rows["inbox_notes"] == 1
    assert result.rows["inbox_events"] >= 1  # at least its entry
    assert seeded.inbox.get(item) is None
    assert not seeded.query("SELECT 1 FROM inbox_notes") and not seeded.query("SELECT 1 FROM inbox_events")
    (erasure,) = seeded.governance.erasures()
    assert json.loads(erasure["rows"])["inbox_items"] == 1  # the record of the erasure names them too


def test_a_retention_dry_run_counts_the_inbox_rows_it_would_delete_and_keeps_them(seeded, tmp_path):
    item = _alice_item(seeded)
    settings = settings_for(tmp_path, brands=[{"name": "Acme", "terms": {"include": ["acme"]}, "retention": "1d"}])
    dry = governance.run_retention(seeded, settings, dry_run=True)
    assert dry.rows["inbox_items"] >= 1 and dry.rows["inbox_notes"] == 1
    assert seeded.inbox.get(item) is not None  # rolled back
    done = governance.run_retention(seeded, settings)
    assert done.rows["inbox_items"] == dry.rows["inbox_items"] and seeded.inbox.get(item) is None


def test_a_hand_off_event_whose_content_was_removed_is_dead_lettered_saying_so():
    from monitor.alerts.channels import HandoffWebhookChannel
    from monitor.errors import DeliveryError
    from monitor.records import Alert

    channel = HandoffWebhookChannel("handoff:crm", "http://127.0.0.1:9/hook", signing_secret="k")
    stripped = Alert("detractor.flagged", "handoff:detractor.flagged:Acme:2", "info", "removed", "removed",
                     brand="Acme", data={"removed": "erased on request"})
    with pytest.raises(DeliveryError) as err:
        channel.content(stripped)
    assert err.value.permanent and "removed (erased on request)" in str(err.value)
    broken = Alert("detractor.flagged", "k", "info", "t", "b", brand="Acme", data={})
    with pytest.raises(DeliveryError, match="carries no hand-off event"):
        channel.content(broken)


def test_an_erasure_is_in_the_audit_log_with_who_and_the_counts_never_the_handle(seeded, tmp_path):
    governance.forget(seeded, settings_for(tmp_path), "alice", actor="cli:dpo")
    (entry,) = seeded.audit.list(action="author.forget")
    (erasure,) = seeded.governance.erasures()
    assert entry["actor"] == "cli:dpo" and entry["target_type"] == "erasure"
    assert entry["target_id"] == str(erasure["id"])
    assert json.loads(entry["detail"])["mentions"] == erasure["mentions"] > 0
    assert "alice" not in json.dumps(seeded.audit.list(), default=str).lower()


def _cli(tmp_path, *args: str, input: str | None = None):
    from click.testing import CliRunner

    from monitor.cli import main
    from tests.conftest import write_config

    cfg = write_config(tmp_path / "config.yaml", f"""
        database: {tmp_path / "monitor.db"}
        brands:
          - name: Acme
            terms: {{include: [acme]}}
            programme: {{url: "https://acme.example/join"}}
        """)
    return CliRunner().invoke(main, ["-c", str(cfg), *args], input=input, catch_exceptions=False)


def test_cli_forget_and_programme_export_are_in_the_audit_log(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    seed(store)
    alice = store.query("SELECT id FROM authors WHERE handle = 'alice'")[0]["id"]
    store.programme.set_status(alice, "Acme", "contacted", "maria")
    store.close()
    out = _cli(tmp_path, "programme", "export", "-o", str(tmp_path / "p.csv"))
    assert out.exit_code == 0, out.output
    out = _cli(tmp_path, "forget", "bob", "--yes")
    assert out.exit_code == 0, out.output
    out = _cli(tmp_path, "audit", "--format", "json")
    actions = {e["action"]: e for e in json.loads(out.output)}
    assert json.loads(actions["export.programme"]["detail"])["rows"] == 1
    assert actions["export.programme"]["actor"].startswith("cli:")
    assert actions["author.forget"]["actor"].startswith("cli:") and "bob" not in out.output


def test_the_audit_commands_examples_of_actions_are_recorded_ones():
    """``monitor audit --action`` names example prefixes: each must start an action the README
    lists as recorded (``mark`` was one after marks became programme statuses)."""
    import re
    from pathlib import Path

    from click.testing import CliRunner

    from monitor.cli import main

    help_text = " ".join(CliRunner().invoke(main, ["audit", "--help"]).output.split())
    examples = re.search(r"e\.g\. ([a-z., ]+?)\.(\s|$)", help_text).group(1).split(", ")
    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    section = readme.split("**The audit log**", 1)[1].split("### ", 1)[0]
    recorded = set(re.findall(r"`([a-z]+(?:\.[a-z-]+)?)`", section))
    assert {"token.create", "export.programme", "author.forget", "programme.status"} <= recorded
    assert len(examples) >= 3
    for example in examples:
        assert any(action.startswith(example) for action in recorded), example


def test_an_unmatched_referral_keeps_its_code_date_and_value_but_not_the_files_other_columns(seeded):
    from monitor import programme as prog

    data = (b"code,date,value,customer_email,customer_name\n"
            b"nosuchcode,2026-03-01,25,jane@example.org,Jane Roe\n"
            b"nosuchcode,not-a-date,25,joe@example.org,Joe Bloggs\n")
    summary = prog.import_referrals(seeded, {}, data, file_name="shop.csv", actor="maria")
    assert len(summary.problems) == 2
    rows = seeded.programme.unmatched(10)
    assert sorted(r["raw"] for r in rows) == ["nosuchcode,2026-03-01,25", "nosuchcode,not-a-date,25"]
    stored = json.dumps([seeded.query(f"SELECT * FROM {t}") for t in ("referrals", "referral_imports", "audit_log")])
    assert "example.org" not in stored and "Roe" not in stored and "Bloggs" not in stored
    again = prog.import_referrals(seeded, {}, data, file_name="shop.csv", actor="maria")
    assert seeded.programme.unmatched_count() == 2 and again.problems == []  # the same lines add nothing


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_a_refused_form_leads_back_to_the_page_that_has_it(tmp_path):
    from tests.web_support import client, hidden, login, make_app, make_db

    settings, store = make_db(tmp_path)
    alice = int(store.query("SELECT id FROM authors WHERE handle = 'alice'")[0]["id"])
    store.programme.set_status(alice, "Acme", "do_not_contact", "maria")
    async with client(make_app(settings, store)) as c:
        await login(c)
        csrf = hidden((await c.get(f"/authors/{alice}")).text, "csrf")
        r = await c.post(f"/authors/{alice}/programme/rewards", data={"brand": "Acme", "what": "mug", "value": "5",
                                                                     "csrf": csrf})
        assert r.status_code == 409 and "do not contact" in r.text
        assert f'href="/authors/{alice}#programme">Back to the page' in r.text
        r = await c.post("/tokens", data={"scope": "read", "expires": "90d", "csrf": "forged"})
        assert r.status_code == 403 and 'href="/tokens">Back to the page' in r.text
        r = await c.get("/authors/999999")
        assert r.status_code == 404 and 'href="/">Back to the overview' in r.text


def test_two_people_changing_a_programme_status_at_once_are_both_in_the_audit_log(seeded):
    from monitor.store.programme import ProgrammeConflictError

    alice = int(seeded.query("SELECT id FROM authors WHERE handle = 'alice'")[0]["id"])
    seeded.programme.set_status(alice, "Acme", "contacted", "maria", expected="identified")
    with pytest.raises(ProgrammeConflictError, match="changed to contacted meanwhile"):
        seeded.programme.set_status(alice, "Acme", "declined", "meg", note="said no", expected="identified")
    assert seeded.programme.member(alice, "Acme")["status"] == "contacted"  # nothing of meg's applied
    log = seeded.audit.list(action="programme")
    assert [(e["actor"], e["action"]) for e in log][:2] == [("meg", "programme.conflict"),
                                                            ("maria", "programme.status")]
    detail = json.loads(log[0]["detail"])
    assert detail["to"] == "declined" and detail["expected"] == "identified" and "said no" not in log[0]["detail"]


def test_a_crm_row_of_an_unflagged_person_does_not_call_them_a_detractor():
    from monitor import crm

    row = {"person_id": 7, "brand": "Acme", "source": "reddit", "handle": "mild", "flag": None,
           "advocate_score": 0.0, "detractor_score": 27.4, "mentions": 3, "reach": 10, "last_at": "2026-11-26T10:00:00"}
    (lead,), _, _ = crm.rows([row], "detractor", "salesforce-lead", {})
    assert lead["Description"].startswith("not flagged for Acme on reddit (@mild), detractor score 27")
    assert lead["Monitor_Flag__c"] == ""
    (flagged,), _, _ = crm.rows([{**row, "flag": "detractor"}], "detractor", "salesforce-lead", {})
    assert flagged["Description"].startswith("detractor of Acme on reddit (@mild)")


def test_inbox_show_prints_an_items_history_without_none_or_terminal_escapes(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    seed(store)
    item = _alice_item(store)
    desk.change(store, item, "dismiss", "maria", reason="spam \x1b[31mred\x1b[0m")
    store.close()
    out = _cli(tmp_path, "inbox", "show", str(item))
    assert out.exit_code == 0, out.output
    assert "entered - -> new" in out.output and "None" not in out.output
    assert "\x1b" not in out.output and "dismiss new -> dismissed" in out.output


def test_retention_that_deletes_an_author_deletes_the_flags_announced_for_them(seeded, tmp_path):
    alice = int(seeded.query("SELECT id FROM authors WHERE handle = 'alice'")[0]["id"])
    with seeded.transaction():
        assert seeded.handoff.announced("Acme", alice, "advocate", NOW)
    settings = settings_for(tmp_path, brands=[{"name": "Acme", "terms": {"include": ["acme"]}, "retention": "1d"}])
    governance.run_retention(seeded, settings)
    assert not seeded.query("SELECT 1 FROM authors WHERE id = ?", [alice])  # no mention, mark or link left
    assert not seeded.query("SELECT 1 FROM handoff_flags WHERE person_id = ?", [alice])


@pytest.mark.anyio
async def test_the_token_lists_say_when_a_token_does_not_work_as_its_scope_says(tmp_path):
    from monitor import tokens
    from monitor.web.security import hash_password
    from tests.web_support import PASSWORD, client, login, make_app, make_db

    settings, store = make_db(tmp_path)
    for name in ("ana", "ben"):
        store.accounts.add_user(name, hash_password(PASSWORD, n=2**12), role="member")
    tokens.create(store, "ana", "read-write", name="crm-sync")
    tokens.create(store, "ben", "read-write", name="bot")
    store.accounts.set_role("ana", "viewer", actor="maria")
    store.accounts.disable_user("ben", actor="maria")
    states = {t["name"]: tokens.state(t, NOW) for t in store.handoff.tokens()}
    assert states == {"crm-sync": "active, reads only (ana is a viewer)", "bot": "inactive: user disabled"}
    async with client(make_app(settings, store)) as c:
        await login(c)  # maria, an admin: every user's tokens
        page = (await c.get("/tokens")).text
    assert "inactive: user disabled" in page and "reads only (ana is a viewer)" in page
    store.close()
    listed = _cli(tmp_path, "tokens", "list").output
    assert "inactive: user disabled" in listed and "reads only (ana is a viewer)" in listed
