"""Why a windowed alert fired (monitor.alerts.explain): what grew against the baseline in
spikes, dips and promoters turned negative, carried by the alert, through the channels
escaped like the rest of an alert, in `monitor alerts backtest`, and the Mentions page's
window filter the explanation links to."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from alert_fakes import KeywordClassifier, add_mentions, mention
from click.testing import CliRunner
from test_alert_rules import settings
from test_alert_windows import _config

from monitor import pipeline
from monitor.alerts import explain
from monitor.alerts.backtest import replay
from monitor.alerts.channels import AppriseChannel, ConsoleChannel, EmailChannel, payload
from monitor.alerts.engine import AlertEngine
from monitor.cli import main
from monitor.records import Alert
from monitor.store import Store

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
HOSTILE_AUTHOR = "mallory\x1b[31m\u202e"
HOSTILE_TEXT = "acme checkout broken again @everyone <script>alert(1)</script> \x1b]8;;evil\x07"
SPIKE = {"name": "spike", "window": {"kind": "volume_spike", "window": "1h", "baseline": "3d", "min_count": 5,
                                      "threshold": 3}}


def spike_history(store, *, now=NOW, hostile=False):
    """One calm 'acme fine' mention every two hours for three days on Hacker News, then, in the
    last hour, eight about a broken checkout, most on Reddit, three by one author."""
    n = 0
    for h in range(1, 72, 2):
        n += 1
        add_mentions(store, [mention(n, f"acme fine today {h}", at=now - timedelta(hours=h + 0.5), author=f"u{h}")])
    for i in range(8):
        n += 1
        author = (HOSTILE_AUTHOR if hostile else "mallory") if i < 3 else f"s{i}"
        text = HOSTILE_TEXT if hostile and i == 7 else f"acme checkout broken, payment fails {i}"
        add_mentions(store, [mention(n, text, at=now - timedelta(minutes=50 - i), author=author, source="reddit")],
                     source_key="Acme:reddit" if i else "Acme:hackernews")
    pipeline.classify_pending(store, KeywordClassifier())


def explanation(store):
    import json

    row = store.query("SELECT body, data FROM alerts ORDER BY id")[-1]
    return row["body"], json.loads(row["data"])["explanation"]


def test_a_spike_names_the_terms_sources_and_authors_that_grew_with_examples_and_a_link(store, clock):
    clock.t = NOW
    spike_history(store)
    engine = AlertEngine.from_settings(settings(SPIKE, web_base_url="https://monitor.example"), store)
    assert engine.tick() == 1
    body, e = explanation(store)
    names = {k: [x["name"] for x in e[k]] for k in ("terms", "sources", "authors")}
    assert {"checkout", "broken"} <= set(names["terms"]) and "fine" not in names["terms"]
    assert "acme" not in names["terms"]  # the brand's own name is not news
    assert names["sources"][0] == "Acme:reddit" and names["authors"] == ["mallory"]
    top = e["terms"][0]
    assert top["count"] == 8 and top["expected"] == 0 and top["lift"] >= 1.5
    assert e["count"] == 8 and e["baseline_count"] > 30 and e["window"][1] == NOW.isoformat()
    assert len(e["examples"]) == 3 and all("checkout" in x["text"] for x in e["examples"])
    assert e["web_url"] == ("https://monitor.example/mentions?brand=Acme&since=2026-11-02T11%3A00%3A00%2B00%3A00"
                            "&until=2026-11-02T12%3A00%3A00%2B00%3A00")
    assert "Why (against the baseline" in body and "terms that grew: " in body and "checkout (8, expected 0)" in body
    assert "authors that grew: mallory (3, expected 0)" in body and e["web_url"] in body


def test_scraped_text_in_an_explanation_is_escaped_by_each_channel(store, clock):
    clock.t = NOW
    spike_history(store, hostile=True)
    AlertEngine.from_settings(settings(SPIKE), store).tick()
    body, e = explanation(store)
    assert "\x1b" not in body and "\u202e" not in body and "\x07" not in body  # control and bidi characters gone
    assert any("@everyone" in x["text"] for x in e["examples"])
    row = store.query("SELECT * FROM alerts")[0]
    alert = Alert(rule="spike", key=row["key"], severity="warning", title=row["title"], body=row["body"],
                  data={"explanation": e})
    _title, chat = AppriseChannel("chat", "json://127.0.0.1:9/hook")._format(alert)
    assert "@everyone" not in chat and "@\u200beveryone" in chat  # no mass ping from a quoted mention
    mail = EmailChannel("mail", host="127.0.0.1", port=25, sender="m@x.test", to=["t@x.test"]).message(alert)
    assert mail.get_content_type() == "text/plain" and "\x1b" not in mail.get_content()
    out = io.StringIO()
    ConsoleChannel(stream=out).send(alert)
    assert "\x1b" not in out.getvalue()
    assert payload(alert)["data"]["explanation"]["examples"]  # the webhook gets it as JSON


def test_a_dip_and_a_turned_promoter_carry_their_explanation(store, clock):
    clock.t = NOW
    for i in range(20):  # half love it over the baseline
        add_mentions(store, [mention(i + 1, "love acme" if i % 2 else "acme ok", at=NOW - timedelta(hours=30 + i),
                                     author=f"u{i}")])
    add_mentions(store, [mention(100, "love acme", at=NOW - timedelta(hours=50), author="bob"),
                         mention(101, "love acme more", at=NOW - timedelta(hours=40), author="bob")])
    for i in range(10):  # today: the app update, and bob turned
        add_mentions(store, [mention(200 + i, f"hate acme update deleted my notes {i}", at=NOW - timedelta(hours=1 + i),
                                     author="bob" if i == 0 else f"t{i}")])
    pipeline.classify_pending(store, KeywordClassifier())
    dip = {"name": "dip", "window": {"kind": "share_dip", "of": "positive", "window": "1d", "baseline": "3d",
                                     "min_count": 10, "drop": 0.3}}
    turned = {"name": "turned", "window": {"kind": "promoter_turned_negative", "window": "1d", "min_past": 2}}
    assert AlertEngine.from_settings(settings(dip, turned), store).tick() == 2
    import json

    found = {r["rule"]: json.loads(r["data"])["explanation"] for r in store.query("SELECT rule, data FROM alerts")}
    for rule in ("dip", "turned"):
        terms = [t["name"] for t in found[rule]["terms"]]
        assert {"update", "deleted", "notes"} <= set(terms), (rule, terms)
    assert found["dip"]["web_url"] is None  # no web_base_url configured: no link


def test_nothing_stands_out_is_said_so():
    e = explain.explain([], [], brand="Acme", since=NOW - timedelta(hours=1), until=NOW,
                        baseline_since=NOW - timedelta(days=1), baseline_until=NOW - timedelta(hours=1), scale=1 / 23)
    assert e["terms"] == e["sources"] == e["authors"] == e["examples"] == [] and e["web_url"] is None
    assert "nothing stands out" in explain.explanation_text(e)


def test_stored_themes_that_grew_are_named(tmp_path):
    from monitor.topics import find_themes
    from tests.topics_data import NOW as T
    from tests.topics_data import add_themes

    store = Store(tmp_path / "m.db", now=lambda: T)
    add_themes(store, {"battery": 5, "support": 40}, days=(2, 9), now=T)
    add_themes(store, {"battery": 30}, days=(0.05, 0.9), now=T, start_id=1000, seed=2)
    report = find_themes(store, "Acme", since=T - timedelta(days=30), until=T, model="vec-fake@1", save_to=store)
    assert len(report.themes) >= 2
    grown = explain.theme_growth(store, "Acme", T - timedelta(days=1), T, T - timedelta(days=8), T - timedelta(days=1),
                                 1 / 7)
    assert len(grown) == 1 and "battery" in grown[0]["name"] and grown[0]["count"] == 30 and grown[0]["id"]
    assert explain.theme_growth(store, "Nobody", T - timedelta(days=1), T, T - timedelta(days=8), T, 1) == []


def test_backtest_shows_why_each_windowed_alert_fired(tmp_path):
    store = Store(tmp_path / "monitor.db")
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    spike_history(store, now=now)
    explained: list = []
    fired = replay(settings(SPIKE), store, now - timedelta(days=1), now + timedelta(hours=1), timedelta(hours=1),
                   explained=explained)
    assert sum(fired["spike"].values()) == len(explained) == 1
    assert explained[0].data["explanation"]["terms"][0]["name"] in ("checkout", "broken")
    store.close()
    cfg = _config(tmp_path, [{**SPIKE, "channels": ["console"]}])
    out = CliRunner().invoke(main, ["-c", cfg, "alerts", "backtest", "--since", "2d", "--step", "30m"])
    assert out.exit_code == 0, out.output
    assert "why they fired" in out.output and "terms that grew: " in out.output and "mallory" in out.output
    out = CliRunner().invoke(main, ["-c", cfg, "alerts", "backtest", "--since", "2d", "--explain", "0"])
    assert out.exit_code == 0 and "why they fired" not in out.output


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_mentions_page_filters_to_an_alert_window(tmp_path):
    from tests.web_data import NOW as W
    from tests.web_support import client, login, make_app, make_db

    settings_, store = make_db(tmp_path)
    async with client(make_app(settings_, store)) as c:
        await login(c)
        everything = (await c.get("/mentions?brand=Acme")).text
        since, until = (W - timedelta(days=3)).isoformat(), W.isoformat()
        r = await c.get("/mentions", params={"brand": "Acme", "since": since, "until": until})
        assert r.status_code == 200 and 'id="mention-window"' in r.text
        rows = re.findall(r'<tr id="m(\d+)">', r.text)
        assert 0 < len(rows) < len(re.findall(r'<tr id="m(\d+)">', everything))
        assert 'name="since" value="' in r.text  # searching again keeps the window
        r = await c.get("/mentions", params={"brand": "Acme", "since": "not a time"})
        assert r.status_code == 200 and 'id="mention-window"' not in r.text
        r = await c.get("/export/mentions.csv", params={"brand": "Acme", "since": W.isoformat()})
        assert r.status_code == 200 and len(r.text.strip().splitlines()) == 1  # only the header: none after W


@pytest.mark.anyio
async def test_the_alert_page_links_to_the_mentions_of_its_window(tmp_path):
    from tests.web_data import NOW as W
    from tests.web_support import client, login, make_app, make_db

    settings_, store = make_db(tmp_path, seeder=lambda s: spike_history(s, now=W))
    assert AlertEngine.from_settings(settings(SPIKE), store, now=lambda: W).tick() == 1
    alert_id = store.query("SELECT id FROM alerts")[0]["id"]
    async with client(make_app(settings_, store)) as c:
        await login(c)
        html = (await c.get(f"/alerts/{alert_id}")).text
        link = re.search(r'<p id="alert-window"><a class="button" href="([^"]+)"', html)
        assert link and "terms that grew: " in html
        r = await c.get(link.group(1).replace("&amp;", "&"))
        assert r.status_code == 200 and 'id="mention-window"' in r.text
        assert len(re.findall(r'<tr id="m(\d+)">', r.text)) == 8  # the spike's eight mentions, no more
