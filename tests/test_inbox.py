"""The response desk: store.inbox (states, conditional changes, audit), routing by rule, SLA
breaches, reply targets and drafts, the speed figures, and `monitor inbox`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from monitor import inbox as desk
from monitor.alerts.engine import AlertEngine
from monitor.alerts.rules import is_question
from monitor.cli import main
from monitor.cli_common import cli_actor
from monitor.config import AlertSettings, InboxSettings, Settings
from monitor.errors import ConfigError
from monitor.store import Store
from monitor.store.inbox import InboxConflictError, InboxError
from monitor.web.security import hash_password
from tests.web_data import NOW, add, seed

HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = Store(tmp_path / "monitor.db", now=clock)
    seed(s)
    for name in ("maria", "ben"):
        s.accounts.add_user(name, hash_password("correct horse battery", n=2**12))
    return s


def bob_mention(store: Store) -> int:
    return int(store.query("SELECT id FROM mentions WHERE text LIKE 'bob says detractor%' ORDER BY id")[0]["id"])


def test_an_item_walks_new_assigned_responded_closed_and_every_step_is_recorded(store, clock):
    item = desk.route_to_inbox(store, InboxSettings(), bob_mention(store), "critical", by="maria")
    assert item and store.inbox.get(item)["due_at"] == (NOW + HOUR).isoformat()
    assert desk.route_to_inbox(store, InboxSettings(), bob_mention(store), "low") is None  # once per mention
    clock.now = NOW + timedelta(minutes=10)
    assert store.inbox.change(item, "assign", "maria", assignee="ben", version=1)["state"] == "assigned"
    clock.now = NOW + timedelta(minutes=40)
    row = store.inbox.change(item, "respond", "ben")
    assert row["state"] == "responded" and row["first_response_at"] == clock.now.isoformat()
    assert row["responded_by"] == "ben"
    assert store.inbox.change(item, "close", "ben")["state"] == "closed"
    events = store.inbox.events(item)
    assert [(e["action"], e["actor"], e["from_state"], e["to_state"]) for e in events] == [
        ("entered", "maria", None, "new"), ("assign", "maria", "new", "assigned"),
        ("respond", "ben", "assigned", "responded"), ("close", "ben", "responded", "closed")]
    assert events[1]["assignee"] == "ben" and events[2]["at"] == (NOW + timedelta(minutes=40)).isoformat()


def test_two_people_assigning_at_once_the_second_is_told_and_nothing_is_overwritten(store):
    item = desk.route_to_inbox(store, InboxSettings(), bob_mention(store), "high")
    seen = store.inbox.get(item)["version"]  # both pages were loaded at this version
    store.inbox.change(item, "assign", "maria", assignee="maria", version=seen)
    with pytest.raises(InboxConflictError, match=r"changed by maria \(assign .*assigned to maria"):
        store.inbox.change(item, "assign", "ben", assignee="ben", version=seen)
    assert store.inbox.get(item)["assignee"] == "maria"
    assert [e["action"] for e in store.inbox.events(item)] == ["entered", "assign"]


def test_closed_items_reopen_dismissal_needs_a_reason_and_wrong_states_are_refused(store):
    item = desk.route_to_inbox(store, InboxSettings(), bob_mention(store), "normal")
    with pytest.raises(InboxError, match="needs a reason"):
        store.inbox.change(item, "dismiss", "maria", reason="  ")
    store.inbox.change(item, "dismiss", "maria", reason="a bot")
    with pytest.raises(InboxError, match="is dismissed: it cannot be closed"):
        store.inbox.change(item, "close", "maria")
    assert store.inbox.change(item, "reopen", "ben")["state"] == "new"
    store.inbox.change(item, "assign", "ben", assignee="ben")
    store.inbox.change(item, "close", "ben")
    row = store.inbox.change(item, "reopen", "maria")
    assert row["state"] == "assigned" and row["assignee"] == "ben" and row["dismiss_reason"] is None
    with pytest.raises(InboxError, match="no enabled user 'nobody'"):
        store.inbox.change(item, "assign", "maria", assignee="nobody")
    with pytest.raises(InboxError, match="no inbox item 999"):
        store.inbox.change(999, "close", "maria")


def test_a_disabled_users_assignments_stay_visible(store):
    item = desk.route_to_inbox(store, InboxSettings(), bob_mention(store), "normal")
    store.inbox.change(item, "assign", "maria", assignee="ben")
    store.accounts.disable_user("ben")
    rows = store.inbox.items(assignee="ben")
    assert [r["id"] for r in rows] == [item] and rows[0]["assignee_disabled"] == 1
    with pytest.raises(InboxError, match="no enabled user 'ben'"):
        store.inbox.change(item, "assign", "maria", assignee="ben")
    assert "ben" not in store.inbox.assignable()


def test_notes_are_kept_and_the_item_goes_with_its_mention(store):
    mention = bob_mention(store)
    item = desk.route_to_inbox(store, InboxSettings(), mention, "normal")
    store.inbox.add_note(item, "maria", "called them <b>twice</b>")
    assert [n["text"] for n in store.inbox.notes(item)] == ["called them <b>twice</b>"]
    with pytest.raises(InboxError, match="empty note"):
        store.inbox.add_note(item, "maria", " ")
    store.governance.delete_mentions([mention], None, "test")
    assert store.inbox.get(item) is None and store.query("SELECT * FROM inbox_events") == []


def rules_settings(**inbox) -> Settings:
    return Settings.model_validate({
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}, {"name": "Globex", "terms": {"include": ["g"]}}],
        "alerts": {"channels": {"console": {"type": "console"}}, "rules": [
            {"name": "detractor-with-reach", "when": {"advocacy": "detractor", "min_reach": 1000},
             "route": ["channels", "inbox"], "priority": "critical", "channels": ["console"]},
            {"name": "questions", "when": {"question": True}, "route": "inbox", "priority": "high"}]},
        "inbox": inbox})


def test_rules_route_matches_to_the_inbox_and_a_breach_alerts_once(store, clock):
    settings = rules_settings()
    engine = AlertEngine.from_settings(settings.alerts, store, inbox=settings.inbox)
    ids = add(store, [{"id": 900, "handle": "bob", "advocacy": "detractor", "days_ago": 0, "reach": 2000,
                       "text": "acme lost my data"},
                      {"id": 901, "handle": "quinn", "advocacy": "none", "days_ago": 0,
                       "text": "How do I export my acme data?"},
                      {"id": 902, "handle": "ria", "advocacy": "none", "days_ago": 0, "text": "acme is fine?"}])
    engine.on_classified(ids)
    rows = {r["mention_id"]: r for r in store.inbox.items(states=("new",))}
    assert set(rows) == {ids[0], ids[1]}
    assert rows[ids[0]]["priority"] == "critical" and rows[ids[0]]["rule"] == "detractor-with-reach"
    assert rows[ids[1]]["priority"] == "high"
    # the inbox-only rule sends no alert; the other still alerts through its channel
    assert [a["rule"] for a in store.query("SELECT rule FROM alerts")] == ["detractor-with-reach"]
    clock.now = NOW + timedelta(minutes=59)
    assert engine.tick() == 0
    clock.now = NOW + timedelta(hours=2)
    assert engine.tick() == 1  # the critical item (1h); the high one has 4h
    assert engine.tick() == 0  # once per item
    alert = store.query("SELECT * FROM alerts WHERE rule = 'sla_breach'")[0]
    assert alert["brand"] == "Acme" and "SLA breached" in alert["title"]
    assert store.query("SELECT channel FROM deliveries WHERE alert_id = ?", [alert["id"]])[0]["channel"] == "console"
    store.inbox.change(rows[ids[1]]["id"], "respond", "maria")
    clock.now = NOW + timedelta(hours=5)
    assert engine.tick() == 0  # answered in time: no breach


def test_a_rule_waiting_for_the_authors_reach_routes_to_the_inbox_when_it_comes(store):
    settings = rules_settings()
    engine = AlertEngine.from_settings(settings.alerts, store, inbox=settings.inbox)
    ids = add(store, [{"id": 950, "handle": "newbie", "advocacy": "detractor", "days_ago": 0, "text": "acme broke"}])
    author = store.query("SELECT author_id FROM mentions WHERE id = ?", [ids[0]])[0]["author_id"]
    with store.transaction():
        store.execute("INSERT INTO reach_lookups (author_id, queued_at, attempts, next_at) VALUES (?, ?, 0, ?)",
                      [author, NOW.isoformat(), NOW.isoformat()])
    engine.on_classified(ids)
    assert store.inbox.item_for_mention(ids[0]) is None  # waits for the reach
    store.reach_found(author, 5000, "followers")
    engine.settle_waits()
    item = store.inbox.get(store.inbox.item_for_mention(ids[0]))
    assert item["priority"] == "critical" and item["rule"] == "detractor-with-reach"


def test_config_errors_name_the_key_path(tmp_path):
    from monitor.config import load_settings

    path = tmp_path / "config.yaml"
    path.write_text("brands:\n  - {name: A, terms: {include: [a]}}\ninbox:\n  templates:\n"
                    "    - {name: x, text: 'Hi {autor}'}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert any(p.endswith("config.yaml: line 5: inbox.templates[0].text: unknown variable {autor} (known: author, "
                          "brand, source, stance, history, earlier_mentions, earlier_promoter, earlier_detractor)")
               for p in err.value.problems)
    path.write_text("brands:\n  - {name: A, terms: {include: [a]}}\nalerts:\n  rules:\n    - {name: r}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "at least one channel" in " ".join(err.value.problems)
    with pytest.raises(ValueError, match="not to 'window' rules"):
        AlertSettings.model_validate({"rules": [{"name": "w", "route": "inbox", "window": {"kind": "volume_spike"}}]})
    with pytest.raises(ValueError, match="no format"):
        InboxSettings.model_validate({"templates": [{"name": "x", "text": "{author!r}"}]})


def test_drafts_use_the_authors_history(store):
    settings = InboxSettings()
    alice = store.query("SELECT id FROM mentions WHERE text LIKE 'alice says promoter%' ORDER BY id DESC")[0]["id"]
    item = store.inbox.get(desk.route_to_inbox(store, settings, alice, "low"))
    draft = desk.draft_for(store, settings, item)
    assert draft.template == "returning-promoter" and draft.text.startswith("Thanks again, alice!")
    assert draft.variables["history"] == "returning promoter"
    bob = store.inbox.get(desk.route_to_inbox(store, settings, bob_mention(store), "low"))
    assert desk.draft_for(store, settings, bob).text.startswith("Hi bob, thank you")
    assert desk.draft_for(store, settings, bob, "question").template == "question"
    assert desk.render("{author}: {brand} {{x}}", {"author": "a", "brand": "B"}) == "a: B {x}"


@pytest.mark.parametrize(("source", "url", "native", "extra", "expected"), [
    ("hackernews", "https://news.ycombinator.com/item?id=41", "41", {}, "https://news.ycombinator.com/item?id=41"),
    ("reddit", "https://www.reddit.com/r/x/comments/abc/t/", "t3_abc", {}, "https://www.reddit.com/r/x/comments/abc/t/"),
    ("bluesky", "https://bsky.app/profile/a.b/post/3k", "at://x", {}, "https://bsky.app/profile/a.b/post/3k"),
    ("mastodon", "https://mastodon.social/@a/1", "1", {}, "https://mastodon.social/@a/1"),
    ("appstore", "https://apps.apple.com/us/app/id123?see-all=reviews", "9", {"app_id": "123"},
     "https://appstoreconnect.apple.com/apps/123/appstore"),
    ("googleplay", "https://play.google.com/store/apps/details?id=com.a", "gp:1", {"app_id": "com.a"},
     "https://play.google.com/console/"),
    ("github", "https://github.com/o/r/issues/7", "7", {}, "https://github.com/o/r/issues/7"),
    ("stackexchange", "https://stackoverflow.com/q/5", "5", {}, "https://stackoverflow.com/q/5"),
    ("feeds", "https://blog.example/post", "x", {}, "https://blog.example/post"),
    ("demo", "javascript:alert(1)", "x", {}, None),
])
def test_reply_on_the_platform_opens_the_right_place(source, url, native, extra, expected):
    assert desk.reply_target(source, url, native, extra).url == expected


def test_questions():
    assert is_question(None, "Great app. How do I export my data?")
    assert is_question("Does acme work offline?", "")
    assert not is_question(None, "acme is fine? lol") and not is_question(None, "no question here")


def test_speed_per_brand_and_week(store, clock):
    settings = InboxSettings()
    a = desk.route_to_inbox(store, settings, bob_mention(store), "critical", now=NOW)
    b = desk.route_to_inbox(store, settings, bob_mention(store) + 1, "critical", now=NOW)
    c = desk.route_to_inbox(store, settings, bob_mention(store) + 2, "low", now=NOW)
    clock.now = NOW + timedelta(minutes=30)
    store.inbox.change(a, "respond", "maria")
    clock.now = NOW + timedelta(hours=3)
    store.inbox.change(b, "respond", "maria")
    weeks = desk.response_stats(store.inbox.response_times(), clock.now)
    assert len(weeks) == 1 and weeks[0].brand == "Acme" and weeks[0].week == "2026-11-16"
    w = weeks[0]
    assert (w.items, w.responded, w.decided) == (3, 2, 2)  # c is still inside its 72h
    assert w.within_sla == 0.5 and w.median_from_entry == timedelta(minutes=105)
    assert c and desk.overall_speed([], clock.now) is None


def test_the_cli(tmp_path, store):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {tmp_path / 'monitor.db'}\nbrands:\n  - {{name: Acme, terms: {{include: [acme]}}}}\n")
    run = CliRunner().invoke
    mention = bob_mention(store)
    r = run(main, ["-c", str(cfg), "inbox", "add", str(mention), "--priority", "critical", "--by", "maria"])
    assert r.exit_code == 0 and "is inbox item #1 (critical)" in r.output
    assert "already inbox item #1" in run(main, ["-c", str(cfg), "inbox", "add", str(mention)]).output
    r = run(main, ["-c", str(cfg), "inbox", "list"])
    assert r.exit_code == 0 and "#1\tcritical\tnew\tunassigned" in r.output
    r = run(main, ["-c", str(cfg), "inbox", "assign", "1", "2", "--to", "ben", "--by", "maria"])
    assert r.exit_code == 1 and "#1: assigned, assigned to ben" in r.output and "no inbox item 2" in r.output
    assert run(main, ["-c", str(cfg), "inbox", "respond", "1"]).exit_code == 0
    r = run(main, ["-c", str(cfg), "inbox", "dismiss", "1", "--reason", "spam"])
    assert r.exit_code == 0 and "#1: dismissed" in r.output
    r = run(main, ["-c", str(cfg), "inbox", "close", "1"])
    assert r.exit_code == 1 and "item 1 is dismissed, assigned to ben: it cannot be closed" in r.output
    assert run(main, ["-c", str(cfg), "inbox", "reopen", "1"]).exit_code == 0
    assert run(main, ["-c", str(cfg), "inbox", "note", "1", "checked"]).exit_code == 0
    assert run(main, ["-c", str(cfg), "inbox", "close", "1"]).exit_code == 0
    rows = [json.loads(x) for x in run(main, ["-c", str(cfg), "inbox", "list", "--state", "all", "--format",
                                              "json"]).output.splitlines()]
    assert [(r["id"], r["state"], r["assignee"]) for r in rows] == [(1, "closed", "ben")]
    r = run(main, ["-c", str(cfg), "inbox", "show", "1"])
    assert r.exit_code == 0 and "reply on:" in r.output and "draft (detractor)" in r.output
    assert "after it entered the inbox" in r.output
    assert f"{cli_actor()}: dismiss responded -> dismissed" in r.output and "note" in r.output  # cli:<os user>
