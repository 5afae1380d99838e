"""The advocate programme (issue 12, part 4): status with history, rewards, referral codes and
links, referral CSV imports (bad lines kept, re-imports idempotent), the old marks as the
programme's status, the command line and the pages (CSRF, escaping, roles, totals)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from monitor import programme as prog
from monitor.cli import main
from monitor.config import Settings
from monitor.settings_programme import ProgrammeSettings
from monitor.store import Store
from monitor.store.migrations import migrations
from monitor.store.programme import ProgrammeConflictError, ProgrammeError
from monitor.web.security import hash_password
from tests.conftest import write_config
from tests.pg_support import sqlite_only
from tests.web_support import PASSWORD, hidden, login, make_app, make_db
from tests.web_support import client as web_client

XSS = "<script>window.__xss(1)</script><img src=x onerror=alert(1)>"
ACME = {"url": "https://acme.example/signup?lang=en#form",
        "utm": {"source": "monitor", "medium": "advocate", "campaign": "ambassadors"}, "currency": "EUR"}


def programme_settings(db) -> Settings:
    return Settings.model_validate({
        "database": str(db),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}, "programme": ACME},
                   {"name": "Globex", "terms": {"include": ["globex"]}}],
        "advocates": {"index_min_sample": 2}})


def author(store: Store, handle: str) -> int:
    return int(store.query("SELECT id FROM authors WHERE handle = ?", [handle])[0]["id"])


@pytest.fixture
def seeded(tmp_path):
    _, store = make_db(tmp_path)
    return programme_settings(tmp_path / "monitor.db"), store


# ------------------------------------------------------------------------ config and link


def test_the_referral_link_keeps_the_urls_query_and_adds_utm_and_code():
    p = ProgrammeSettings.model_validate(ACME)
    link = prog.referral_link(p, "abc23456")
    parts = urlsplit(link)
    assert parts.netloc == "acme.example" and parts.path == "/signup" and parts.fragment == "form"
    assert parse_qs(parts.query) == {"lang": ["en"], "utm_source": ["monitor"], "utm_medium": ["advocate"],
                                     "utm_campaign": ["ambassadors"], "ref": ["abc23456"]}
    p2 = ProgrammeSettings.model_validate({"url": "https://a.example/?utm_source=old&x=1 2".replace(" ", "%20"),
                                           "code_param": "utm_content"})
    q = parse_qs(urlsplit(prog.referral_link(p2, "c&d")).query)
    assert q == {"x": ["1 2"], "utm_source": ["monitor"], "utm_medium": ["advocate"], "utm_content": ["c&d"]}


@pytest.mark.parametrize("programme, path", [
    ({"url": "ftp://acme.example/"}, "brands.0.programme.url"),
    ({"url": "https://acme.example/", "currency": "euro"}, "brands.0.programme.currency"),
    ({"url": "https://acme.example/", "utm": {"source": ""}}, "brands.0.programme.utm.source"),
    ({"url": "https://acme.example/", "colour": "red"}, "brands.0.programme.colour"),
    ({"url": "https://acme.example/", "code_param": "a b"}, "brands.0.programme.code_param"),
])
def test_a_bad_programme_setting_names_its_key_path(tmp_path, programme, path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        Settings.model_validate({"brands": [{"name": "Acme", "terms": {"include": ["acme"]}, "programme": programme}]})
    assert path in ".".join(str(x) for x in err.value.errors()[0]["loc"])


# ------------------------------------------------------------------------ store


def test_status_history_codes_and_do_not_contact(seeded):
    _, store = seeded
    alice = author(store, "alice")
    m = store.programme.set_status(alice, "Acme", "contacted", "maria", "emailed")
    assert m["status"] == "contacted" and re.fullmatch(r"[2-9a-z]{8}", m["code"])
    store.programme.set_status(alice, "Acme", "joined", "ben")
    again = store.programme.ensure(alice, "Acme", "maria")
    assert again["code"] == m["code"]  # stable once made
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in store.programme.events(alice, "Acme")] == [
        ("contacted", "joined", "ben"), ("identified", "contacted", "maria"), (None, "identified", "maria")]
    with pytest.raises(ProgrammeConflictError):  # someone else changed it since the page was shown
        store.programme.set_status(alice, "Acme", "rewarded", "maria", expected="contacted")
    store.programme.set_status(alice, "Acme", "do_not_contact", "maria", "asked us to stop")
    for refused in (lambda: store.programme.set_status(alice, "Acme", "contacted", "ben"),
                    lambda: store.programme.add_reward(alice, "Acme", "t-shirt", 20, "ben")):
        with pytest.raises(ProgrammeError, match="do not contact"):
            refused()
    assert store.programme.member(alice, "Acme")["status"] == "do_not_contact"
    store.programme.set_status(alice, "Acme", "identified", "maria", "lifted after a call")
    store.programme.set_status(alice, "Acme", "contacted", "ben")
    codes = {store.programme.ensure(author(store, h), "Acme", "x")["code"] for h in ("bob", "carol", "dave")}
    assert len(codes | {m["code"]}) == 4
    audit = [(r["action"], json.loads(r["detail"])) for r in store.query(
        "SELECT action, detail FROM audit_log WHERE action LIKE 'programme.%' ORDER BY id")]
    assert ("programme.status", {"brand": "Acme", "from": "joined", "to": "do_not_contact"}) in audit
    assert not any("asked us" in json.dumps(d) for _, d in audit)  # notes may name the person: not in the log


def test_a_reward_is_logged_and_makes_the_status_rewarded(seeded):
    _, store = seeded
    bob = author(store, "bob")
    rid = store.programme.add_reward(bob, "Acme", "conference ticket", 250.5, "maria", currency="EUR",
                                     at=datetime(2026, 11, 1, tzinfo=UTC), note="for the talk")
    (r,) = store.programme.rewards(bob, "Acme")
    assert r["id"] == rid and r["value"] == 250.5 and r["currency"] == "EUR" and r["recorded_by"] == "maria"
    assert r["rewarded_at"].startswith("2026-11-01")
    assert store.programme.member(bob, "Acme")["status"] == "rewarded"
    for bad in (-1.0, float("nan")):
        with pytest.raises(ProgrammeError):
            store.programme.add_reward(bob, "Acme", "x", bad, "maria")
    with pytest.raises(ProgrammeError):
        store.programme.add_reward(bob, "Acme", "  ", 5, "maria")
    with pytest.raises(ProgrammeError, match="no person"):
        store.programme.add_reward(999_999, "Acme", "x", 5, "maria")
    assert store.query("SELECT count(*) AS n FROM audit_log WHERE action = 'programme.reward'")[0]["n"] == 1


def test_the_old_marks_are_the_programmes_status(seeded):
    _, store = seeded
    alice = author(store, "alice")
    store.accounts.set_mark(alice, "Acme", "contacted", "maria")
    assert store.programme.member(alice, "Acme")["status"] == "contacted"
    store.programme.set_status(alice, "Acme", "joined", "maria")
    store.accounts.set_mark(alice, "Acme", "contacted", "maria")  # joined carries the contacted mark: unchanged
    assert store.programme.member(alice, "Acme")["status"] == "joined"
    assert [m["mark"] for m in store.accounts.marks_of(alice)] == ["contacted"]
    store.accounts.set_mark(alice, "Acme", "do_not_contact", "maria")
    assert [m["mark"] for m in store.accounts.marks_of(alice)] == ["do_not_contact"]
    with pytest.raises(ProgrammeError):
        store.accounts.set_mark(alice, "Acme", "contacted", "maria")
    store.accounts.set_mark(alice, "Acme", "do_not_contact", "maria", on=False)  # lifted: identified, not joined
    assert store.programme.member(alice, "Acme")["status"] == "identified"
    store.accounts.set_mark(alice, "Acme", "rewarded", "maria")
    store.accounts.set_mark(alice, "Acme", "rewarded", "maria", on=False)  # back to the status before
    assert store.programme.member(alice, "Acme")["status"] == "identified"
    store.accounts.set_mark(alice, "Acme", "contacted", "maria")
    rows = store.advocacy.list_authors(brand="Acme", mark="contacted")
    assert [r["handle"] for r in rows] == ["alice"] and rows[0]["marks"] == "contacted"


@sqlite_only  # an upgrade of a SQLite file from before the programme
def test_the_migration_turns_existing_marks_into_statuses(tmp_path):
    """A database from before the programme: its marks become statuses (the strongest wins)
    with the marks as history, and author_marks reads the same afterwards."""
    from sqlite_utils import Database

    db = Database(tmp_path / "old.db")
    migrations.apply(db, stop_before="m130_programme")  # as an older monitor left it
    db.execute("INSERT INTO authors (id, source, handle, first_seen, last_seen) VALUES (1, 'hn', 'a', 't', 't'), "
               "(2, 'hn', 'b', 't', 't')")
    db.execute("INSERT INTO author_marks VALUES (1, 'Acme', 'contacted', 'hi', 'maria', '2026-01-02T00:00:00+00:00'),"
               " (1, 'Acme', 'do_not_contact', NULL, 'ben', '2026-01-03T00:00:00+00:00'),"
               " (2, 'Acme', 'rewarded', NULL, 'maria', '2026-01-04T00:00:00+00:00'),"
               " (2, 'Acme', 'contacted', NULL, 'maria', '2026-01-01T00:00:00+00:00')")
    db.conn.commit()
    db.conn.close()
    store = Store(tmp_path / "old.db")
    assert {(m["person_id"], m["status"], m["changed_by"]) for m in store.programme.listing()} == {
        (1, "do_not_contact", "ben"), (2, "rewarded", "maria")}
    assert len(store.programme.events(1, "Acme")) == 2
    assert {(r["author_id"], r["mark"]) for r in store.query("SELECT * FROM author_marks")} == {
        (1, "do_not_contact"), (2, "contacted"), (2, "rewarded")}


# ------------------------------------------------------------------------ referral CSV


def test_reading_a_messy_referral_file_keeps_every_line():
    data = ("\ufeff Value , CODE,Date,extra\r\n"
            "25.50, ABC23456 ,2026-11-02,x\r\n"
            "\r\n"
            "10,abc23456,2026-11-03T10:00:00Z\r\n"
            "7,,2026-11-03\r\n"
            "5,zzz,03/11/2026\r\n"
            "1e3,zzz,2026-11-03\r\n"
            "\"1,000\",zzz,2026-11-03\r\n"
            "25.5,abc23456,2026-11-02\n").encode()
    lines = prog.read_referrals(data)
    assert [ln.line for ln in lines] == [2, 4, 5, 6, 7, 8, 9]
    good = [ln for ln in lines if not ln.problem]
    assert [(ln.code, ln.value, ln.referred_at.isoformat()) for ln in good] == [
        ("abc23456", 25.5, "2026-11-02T00:00:00+00:00"), ("abc23456", 10.0, "2026-11-03T10:00:00+00:00"),
        ("abc23456", 25.5, "2026-11-02T00:00:00+00:00")]
    assert good[0].key != good[2].key  # the same referral twice in a file is two referrals
    problems = {ln.line: ln.problem for ln in lines if ln.problem}
    assert problems[5] == "no code" and "date '03/11/2026'" in problems[6]
    assert "value '1e3'" in problems[7] and "value '1,000'" in problems[8]


@pytest.mark.parametrize("data, message", [
    (b"code;date;value\nabc;2026-01-01;1\n", "header"),
    (b"", "empty"),
    (b"\xff\xfecode", "UTF-8"),
    (b"date,value\n2026-01-01,1\n", "missing: code"),
])
def test_an_unreadable_referral_file_is_refused_whole(data, message):
    with pytest.raises(prog.ReferralFileError, match=message):
        prog.read_referrals(data)


def test_importing_referrals_matches_codes_keeps_the_rest_and_counts_once(seeded):
    settings, store = seeded
    alice, bob = author(store, "alice"), author(store, "bob")
    a = store.programme.ensure(alice, "Acme", "maria")["code"]
    b = store.programme.ensure(bob, "Acme", "maria")["code"]
    data = (f"code,date,value\n{a},2026-11-02,25\n{a},2026-11-09,30.5\n{b.upper()},2026-11-10,5\n"
            "nosuchcode,2026-11-10,99\n{a},yesterday,1\n").replace("{a}", a).encode()
    programmes = prog.programmes_of(settings.brands)
    first = prog.import_referrals(store, programmes, data, file_name="ref.csv", actor="maria")
    assert (first.rows, first.matched, first.unmatched, first.already) == (5, 3, 2, 0)
    assert [ln for ln, _ in first.problems] == [5, 6] and "unknown code 'nosuchcode'" in first.problems[0][1]
    again = prog.import_referrals(store, programmes, data, file_name="ref.csv", actor="maria")
    assert (again.matched, again.unmatched, again.already) == (0, 0, 5) and again.same_file_at
    longer = data + f"{a},2026-11-16,4\n".encode()  # a later, cumulative export
    third = prog.import_referrals(store, programmes, longer, file_name="ref2.csv", actor="maria")
    assert (third.matched, third.already) == (1, 5)
    (t,) = store.programme.totals("Acme")
    assert (t["referrals"], t["referral_value"]) == (4, 64.5)
    assert [(r["value"], r["currency"]) for r in store.programme.referrals(alice, "Acme")] == [
        (4.0, "EUR"), (30.5, "EUR"), (25.0, "EUR")]
    assert store.programme.unmatched_count() == 2
    assert {u["problem"].split(" ")[0] for u in store.programme.unmatched()} == {"unknown", "date"}
    assert store.query("SELECT count(*) AS n FROM audit_log WHERE action = 'programme.import'")[0]["n"] == 3
    carol = author(store, "carol")  # a code that exists only later: its lines are matched on the next import
    store.programme.ensure(carol, "Acme", "maria")
    store.execute("UPDATE programme_members SET code = 'nosuchcode' WHERE person_id = ?", [carol])
    fourth = prog.import_referrals(store, programmes, data, file_name="ref.csv", actor="maria")
    assert (fourth.matched, fourth.rematched, fourth.already) == (0, 1, 4)
    assert [r["value"] for r in store.programme.referrals(carol, "Acme")] == [99.0]
    assert store.programme.unmatched_count() == 1
    weekly = store.programme.referrals_by_week("Acme")
    assert [(w, n) for _, w, n, _ in weekly] == [("2026-11-02", 1), ("2026-11-09", 3), ("2026-11-16", 1)]


# ------------------------------------------------------------------------ command line

CONFIG = """\
database: monitor.db
brands:
  - name: Acme
    terms: {include: [acme]}
    programme:
      url: https://acme.example/signup
      utm: {source: monitor, medium: advocate, campaign: ambassadors}
      currency: EUR
  - name: Globex
    terms: {include: [globex]}
"""


def test_the_command_line_runs_the_programme(tmp_path):
    cfg = write_config(tmp_path / "config.yaml", CONFIG)
    make_db(tmp_path)[1].close()
    store = Store(tmp_path / "monitor.db")
    alice, bob = author(store, "alice"), author(store, "bob")

    def run(*args):
        return CliRunner().invoke(main, ["-c", str(cfg), "programme", *args])

    r = run("status", str(alice), "contacted", "--brand", "acme", "--note", "dm on HN")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"person {alice} for Acme: not in the programme -> contacted"
    r = run("link", str(alice), "--brand", "Acme")
    code = store.programme.member(alice, "Acme")["code"]
    assert r.exit_code == 0 and r.output.strip() == (
        f"https://acme.example/signup?utm_source=monitor&utm_medium=advocate&utm_campaign=ambassadors&ref={code}")
    r = run("link", str(alice), "--brand", "Globex")
    assert r.exit_code != 0 and "no programme section" in r.output
    r = run("reward", str(alice), "--brand", "Acme", "--what", "t-shirt", "--value", "25", "--at", "2026-11-01")
    assert r.exit_code == 0 and "25.00 EUR" in r.output
    run("status", str(bob), "do_not_contact", "--brand", "Acme")
    r = run("reward", str(bob), "--brand", "Acme", "--what", "x", "--value", "1")
    assert r.exit_code != 0 and "do not contact" in r.output
    r = run("link", str(bob), "--brand", "Acme")
    assert r.exit_code != 0 and "do not contact" in r.output
    r = run("status", str(bob), "bogus", "--brand", "Acme")
    assert r.exit_code == 2
    (tmp_path / "ref.csv").write_text(f"code,date,value\n{code},2026-11-02,40\nzzz,2026-11-02,1\n{code},bad,1\n",
                                      encoding="utf-8")
    r = run("import-referrals", str(tmp_path / "ref.csv"))
    assert r.exit_code == 0, r.output
    assert "line 3: unmatched: unknown code 'zzz'" in r.stdout and "line 4: unmatched: date 'bad'" in r.stdout
    assert "3 line(s): 1 new referral(s), 2 unmatched, 0 already imported" in r.stdout
    r = run("import-referrals", str(tmp_path / "ref.csv"))
    assert "0 new referral(s), 0 unmatched, 3 already imported (this file was imported before" in r.stdout
    r = run("list", "--format", "json")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["person_id"], x["status"], x["referrals"], x["referral_value"]) for x in rows] == [
        (alice, "rewarded", 1, 40.0), (bob, "do_not_contact", 0, 0.0)]
    r = run("list", "--status", "do_not_contact")
    assert "DO NOT CONTACT" in r.stdout and "Acme: 2 member(s)" in r.stdout
    store.execute("UPDATE authors SET handle = '=HYPERLINK(\"http://x\")' WHERE id = ?", [alice])
    r = run("export")
    assert r.exit_code == 0
    assert "'=HYPERLINK" in r.stdout and r.stdout.splitlines()[0] == ",".join(prog.EXPORT_COLUMNS)
    bob_line = next(x for x in r.stdout.splitlines() if x.startswith(f"{bob},"))
    assert "https://" not in bob_line  # no link for do not contact
    audit = [x["actor"] for x in store.query("SELECT actor FROM audit_log WHERE action LIKE 'programme.%'")]
    assert audit and all(a.startswith("cli:") for a in audit)


# ------------------------------------------------------------------------ web

@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def web(tmp_path):
    _, store = make_db(tmp_path)
    store.accounts.add_user("vera", hash_password(PASSWORD, n=2**12), role="viewer")
    store.execute("UPDATE authors SET display_name = ? WHERE handle = 'alice'", [XSS])
    settings = programme_settings(tmp_path / "monitor.db")
    async with web_client(make_app(settings, store)) as c:
        yield c, store


@pytest.mark.anyio
async def test_the_author_page_changes_status_and_adds_rewards_with_csrf(web):
    c, store = web
    alice = author(store, "alice")
    await login(c)
    page = await c.get(f"/authors/{alice}?brand=Acme")
    assert page.status_code == 200 and "not in the programme" in page.text
    assert XSS not in page.text and "&lt;script&gt;window.__xss(1)" in page.text
    csrf = hidden(page.text, "csrf")
    url = f"/authors/{alice}/programme/status"
    forged = await c.post(url, data={"csrf": "nope", "brand": "Acme", "status": "contacted"})
    assert forged.status_code == 403 and store.programme.member(alice, "Acme") is None
    r = await c.post(url, data={"csrf": csrf, "brand": "Acme", "status": "contacted", "expected": "identified",
                                "note": XSS})
    assert r.status_code == 303 and store.programme.member(alice, "Acme")["status"] == "contacted"
    stale = await c.post(url, data={"csrf": csrf, "brand": "Acme", "status": "joined", "expected": "identified"})
    assert stale.status_code == 409 and "changed to contacted meanwhile" in stale.text
    r = await c.post(f"/authors/{alice}/programme/rewards",
                     data={"csrf": "x", "brand": "Acme", "what": "mug", "value": "12"})
    assert r.status_code == 403 and not store.programme.rewards(alice)
    r = await c.post(f"/authors/{alice}/programme/rewards",
                     data={"csrf": csrf, "brand": "Acme", "what": XSS, "value": "12.5", "at": "2026-11-01"})
    assert r.status_code == 303
    r = await c.post(f"/authors/{alice}/programme/rewards",
                     data={"csrf": csrf, "brand": "Acme", "what": "mug", "value": "twelve"})
    assert r.status_code == 400
    page = await c.get(f"/authors/{alice}?brand=Acme")
    code = store.programme.member(alice, "Acme")["code"]
    assert "rewarded" in page.text and "12.50 EUR" in page.text and f"ref={code}" in page.text
    assert XSS not in page.text and page.text.count("&lt;script&gt;window.__xss(1)") >= 3  # name, note, reward
    assert 'data-copy="reflink-acme"' in page.text
    # do not contact shows clearly and blocks contacting
    await c.post(url, data={"csrf": csrf, "brand": "Acme", "status": "do_not_contact"})
    page = await c.get(f"/authors/{alice}?brand=Acme")
    assert "DO NOT CONTACT" in page.text and f"ref={code}" not in page.text and "Add reward" not in page.text
    r = await c.post(f"/authors/{alice}/marks", data={"csrf": csrf, "brand": "Acme", "mark": "contacted", "on": "1"})
    assert r.status_code == 409 and store.programme.member(alice, "Acme")["status"] == "do_not_contact"
    r = await c.post(f"/authors/{alice}/programme/rewards",
                     data={"csrf": csrf, "brand": "Acme", "what": "mug", "value": "1"})
    assert r.status_code == 409
    r = await c.post(f"/authors/{alice}/programme/status", data={"csrf": csrf, "brand": "Nope", "status": "joined"})
    assert r.status_code == 400


@pytest.mark.anyio
async def test_a_viewer_sees_the_programme_but_cannot_change_it(web):
    c, store = web
    alice = author(store, "alice")
    await login(c, "vera")
    page = await c.get(f"/authors/{alice}?brand=Acme")
    assert page.status_code == 200 and "Save status" not in page.text and "Add reward" not in page.text
    r = await c.post(f"/authors/{alice}/programme/status",
                     data={"csrf": hidden(page.text, "csrf"), "brand": "Acme", "status": "contacted"})
    assert r.status_code == 403 and "member role" in r.text and store.programme.member(alice, "Acme") is None
    page = await c.get("/programme")
    assert page.status_code == 200 and "/export/programme.csv" not in page.text and 'name="file"' not in page.text
    assert (await c.get("/export/programme.csv")).status_code == 403


@pytest.mark.anyio
async def test_the_programme_page_totals_chart_filters_import_and_export(web):
    c, store = web
    alice, bob, zed = author(store, "alice"), author(store, "bob"), author(store, "zed")
    a = store.programme.ensure(alice, "Acme", "maria")["code"]
    store.programme.ensure(zed, "Globex", "maria")
    store.programme.set_status(bob, "Acme", "do_not_contact", "maria")
    store.programme.add_reward(alice, "Acme", "mug", 10, "maria", currency="EUR")
    await login(c)
    page = await c.get("/programme?brand=")
    assert page.status_code == 200 and 'id="chart-programme"' not in page.text  # no referrals yet
    csrf = hidden(page.text, "csrf")
    csv_body = f"code,date,value\n{a},2026-11-02,25\n{a},2026-11-10,15.5\n<b>bad</b>,2026-11-02,1\n"
    forged = await c.post("/programme/import", data={"csrf": "x"}, files={"file": ("r.csv", csv_body.encode())})
    assert forged.status_code == 403 and store.programme.totals("Acme")[0]["referrals"] == 0
    r = await c.post("/programme/import", data={"csrf": csrf}, files={"file": ("r.csv", csv_body.encode())})
    done = parse_qs(urlsplit(r.headers["location"]).query)["done"][0]
    assert r.status_code == 303 and "2 new referral(s), 1 unmatched" in done and "line 4: unknown code" in done
    r = await c.post("/programme/import", data={"csrf": csrf}, files={"file": ("r.csv", b"nothing here\n")})
    assert r.status_code == 400 and "header" in r.text
    page = await c.get("/programme?brand=")
    totals = re.search(r'data-brand="Acme">.*?class="referrals">(\d+)<.*?class="referral-value">([\d.]+)<', page.text,
                       re.S)
    assert totals and totals.groups() == ("2", "40.50")
    assert 'id="chart-programme"' in page.text
    data = json.loads(re.search(r'id="programme-data">(.*?)</script>', page.text).group(1))
    assert data["weeks"] == ["2026-11-02", "2026-11-09"] and data["brands"] == [
        {"brand": "Acme", "counts": [1, 1], "values": [25.0, 15.5]}]
    assert "DO NOT CONTACT" in page.text and "<b>bad</b>" not in page.text and "&lt;b&gt;bad&lt;/b&gt;" in page.text
    page = await c.get("/programme?brand=Acme&status=do_not_contact")
    assert f"/authors/{bob}?" in page.text and f"/authors/{alice}?" not in page.text
    r = await c.get("/export/programme.csv?brand=Acme")
    assert r.status_code == 200 and r.text.splitlines()[0] == ",".join(prog.EXPORT_COLUMNS)
    assert len(r.text.splitlines()) == 3
    assert store.query("SELECT count(*) AS n FROM audit_log WHERE action = 'export.programme'")[0]["n"] == 1


def test_the_stored_referral_rows_keep_what_could_not_be_matched(seeded):
    settings, store = seeded
    prog.import_referrals(store, prog.programmes_of(settings.brands), b"code,date,value\nq,2026-01-01,-5\n",
                          file_name="x.csv", actor="maria")
    (u,) = store.programme.unmatched()
    assert u["raw"] == "q,2026-01-01,-5" and u["line"] == 2 and "value '-5'" in u["problem"]
