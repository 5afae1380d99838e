"""The weekly report (monitor.report): its figures are those of the modules it reuses, thin
weeks say "not enough data", scraped text is escaped in HTML, text and e-mail, the report is
queued once per brand and week (across restarts), `monitor report` prints and sends it through
a local SMTP server, the daemon schedules it, and /report renders it in-process."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner

from monitor import advocates, report, topics
from monitor.cli import main
from monitor.config import Settings
from monitor.records import Author, FetchResult, Mention
from monitor.share import competitors, share_of_voice
from monitor.store import Store
from monitor.web.app import create_app
from monitor.web.security import hash_password
from tests.alerts.alert_fakes import SmtpReceiver
from tests.topics_data import add_themes, classification
from tests.web_support import PASSWORD, client, login

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # Wednesday of 2026-W48
WEEK = date(2026, 11, 16)  # Monday of 2026-W47, the last whole week before NOW
WEEK_END = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
HOSTILE_TEXT = ('<script>alert("x")</script> =HYPERLINK("http://evil.test","click") '
                "\u202eevil\u202c \x1b[31mred\x1b[0m \u2066iso\u2069")
HOSTILE_NAME = '<img src=x onerror=alert(1)>\u202e=HYPERLINK("http://evil.test")\x07'


def settings(db, **report_settings) -> Settings:
    return Settings.model_validate({
        "database": str(db),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                   {"name": "Globex", "terms": {"include": ["globex"]}, "competitor": True}],
        "advocates": {"index_min_sample": 5},
        "alerts": {"web_base_url": "https://monitor.example.org",
                   "channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": 2525, "security": "none",
                                         "sender": "monitor@example.org", "to": ["team@example.org"]}}},
        "report": {"channels": ["mail"], **report_settings},
    })


def hostile(store: Store, n: int = 4, brand: str = "Acme", start: int = 5000) -> None:
    """Detractor mentions from an author with a hostile name, in the report's week."""
    author = Author("demo", HOSTILE_NAME, reach=5000)
    mentions = [Mention("demo", f"h{start + i}", brand, f"{brand} {HOSTILE_TEXT} {i}", WEEK_END - timedelta(hours=i),
                        url="javascript:alert(1)", author=author) for i in range(n)]
    ids = store.save_batch("demo", "q", FetchResult(mentions, None))
    store.save_classifications([(i, classification("negative", "detractor", None)) for i in ids])


def seed(store: Store) -> None:
    """The week 2026-W47: 90 Acme mentions in three themes, 30 Globex; the week before: a few."""
    add_themes(store, {"battery": 40, "support": 30, "shipping": 20}, now=WEEK_END, days=(0, 6))
    add_themes(store, {"support": 30}, brand="Globex", start_id=1000, now=WEEK_END, days=(0, 6))
    add_themes(store, {"battery": 10, "support": 10}, start_id=2000, now=WEEK_END - timedelta(days=7), days=(0, 6))
    hostile(store)
    fan = Author("demo", "fan", reach=10)
    ids = store.save_batch("demo", "q", FetchResult([
        Mention("demo", f"f{i}", "Acme", f"Acme is great {i}", WEEK_END - timedelta(days=i), author=fan)
        for i in range(3)], None))
    store.save_classifications([(i, classification("positive", "promoter", None)) for i in ids])


@pytest.fixture
def db(tmp_path):
    s = settings(tmp_path / "m.db")
    store = Store(s.database_path, now=lambda: NOW)
    seed(store)
    advocates.refresh(store, s.advocates, now=NOW)
    yield s, store
    store.close()


def test_iso_weeks():
    assert report.parse_week("2026-W47") == WEEK and report.week_name(WEEK) == "2026-W47"
    assert report.last_week(NOW) == WEEK
    assert report.last_week(datetime(2026, 11, 23, 0, 1, tzinfo=UTC)) == WEEK  # Monday just after
    for bad in ("2026-47", "2026-W54", "W47", "2026-W47; drop"):
        with pytest.raises(ValueError):
            report.parse_week(bad)


def test_the_figures_are_those_of_share_topics_and_advocates(db):
    s, store = db
    r = report.build(store, s, "Acme", WEEK, model="vec-fake@1")
    start = datetime(2026, 11, 16, tzinfo=UTC)
    sov = share_of_voice(store, ["Acme", "Globex"], s.advocates, since=start, until=start + timedelta(days=7),
                         rivals=competitors(s.brands))
    acme = sov.brands[0]
    assert r.week == "2026-W47" and r.mentions == 97 == acme.mentions and r.voice is not None
    assert (r.voice.share, r.voice.sentiment, r.voice.index) == (acme.share, acme.sentiment, acme.index)
    assert acme.share == pytest.approx(97 / 127)  # only W47: the week before is left out
    assert r.voice.index["value"] is not None and r.voice.index["low"] < r.voice.index["value"]
    assert {"volume", "sentiment", "index", "share", "themes"}.isdisjoint(r.notes)
    labels = [t.label for t in r.themes.themes]
    assert any("battery" in lab for lab in labels) and r.themes.themes[0].previous > 0
    assert r.detractors and r.detractors[0].reasons and all(c["points"] > 0 for c in r.detractors[0].reasons)
    assert r.detractors[0].reasons == tuple(c for c in advocates.reasons(
        store.advocacy.list_authors(kind="detractor", brand="Acme", limit=1)[0], "detractor", s.advocates)
        if c["points"] > 0)
    assert r.notable and (r.notable[0].author or "").startswith("<img src=x")  # the strongest stance, most reach
    assert r.advocates and r.advocates[0].handle == "fan" and "advocate" not in r.notes
    assert r.link == "https://monitor.example.org/report?brand=Acme&week=2026-W47"
    text = report.render_text(r)
    assert "Volume: 97 mention(s)" in text and "Advocacy index: " in text and "battery" in text
    assert f"Share of voice: {acme.share * 100:.0f}%" in text and "Globex 24%" in text


def test_notable_mentions_carry_the_labels_the_figures_count(db):
    """Without ``model``, the notable mentions are read with the labels of the model the
    figures count (advocates.refresh's), not the configured classifier's name, which has
    classified nothing here: the hostile detractors, with the most reach, come first."""
    s, store = db
    r = report.build(store, s, "Acme", WEEK)
    assert r.notable and r.notable[0].advocacy == "detractor" and r.notable[0].sentiment == "negative"
    assert (r.notable[0].author or "").startswith("<img src=x")
    assert r.themes.model == "vec-fake@1" and r.themes.themes


@pytest.mark.parametrize("n", [0, 3])
def test_a_thin_week_says_not_enough_data_and_never_crashes(tmp_path, n):
    s = settings(tmp_path / "m.db")
    store = Store(s.database_path, now=lambda: NOW)
    hostile(store, n=n)
    advocates.refresh(store, s.advocates, now=NOW)
    r = report.build(store, s, "Acme", WEEK)
    assert r.mentions == n
    for part in ("sentiment", "index", "themes"):
        assert r.notes[part].startswith(("not enough data", "no sentence vectors")), (part, r.notes)
    if n == 0:
        assert {"volume", "share", "notable"} <= set(r.notes) and not r.notable
    else:
        assert "volume" not in r.notes and len(r.notable) == 3
    html, text = report.render_html(r), report.render_text(r)
    assert "not enough data" in html and "not enough data" in text
    assert report.summary(r).startswith(f"Weekly report Acme 2026-W47: {n} mention(s)")


def test_scraped_text_is_escaped_in_html_text_and_summary(db):
    s, store = db
    r = report.build(store, s, "Acme", WEEK, model="vec-fake@1")
    html = report.render_html(r)
    for raw in ("<script>alert", "<img src=x", "\u202e", "\u2066", "\x1b", "\x07", 'href="javascript:'):
        assert raw not in html, raw
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "=HYPERLINK(&#34;http://evil.test" in html  # shown as text, never a link or a formula
    for out in (report.render_text(r), report.summary(r)):
        assert not any(ch in out for ch in "\u202e\u2066\x1b\x07")


def test_the_report_is_queued_once_per_brand_and_week_even_across_restarts(tmp_path):
    s = settings(tmp_path / "m.db", day="mon", hour=8, timezone="Europe/Berlin")
    store = Store(s.database_path, now=lambda: NOW)
    seed(store)
    advocates.refresh(store, s.advocates, now=NOW)
    assert report.report_brands(s) == ["Acme"]  # competitors are not reported on by default
    monday_7 = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # 07:30 in Berlin: before the send time
    assert report.send_due(store, s, monday_7) == 1  # W46 was never sent: it is, not W47 yet
    assert store.alerts.exists("report:Acme:2026-W46") and not store.alerts.exists("report:Acme:2026-W47")
    assert report.send_due(store, s, monday_7) == 0
    assert report.send_due(store, s, monday_7 + timedelta(hours=1)) == 1
    assert report.send_due(store, s, NOW) == 0
    store.close()
    again = Store(s.database_path, now=lambda: NOW)  # a restart
    assert report.send_due(again, s, NOW) == 0
    rows = again.alerts.deliveries()
    assert [d["channel"] for d in rows] == ["mail", "mail"]


def test_the_email_channel_sends_the_html_report_escaped(db):
    from monitor.alerts.channels import EmailChannel

    s, store = db
    r = report.build(store, s, "Acme", WEEK, model="vec-fake@1")
    smtp = SmtpReceiver()
    try:
        EmailChannel("mail", host="127.0.0.1", port=smtp.port, security="none", sender="monitor@example.org",
                     to=["team@example.org"]).send(report.alert_of(r, NOW))
    finally:
        smtp.close()
    msg = email.message_from_bytes(smtp.messages[0]["data"], policy=email.policy.default)
    assert msg["Subject"] == "[info] Weekly report Acme 2026-W47"
    plain, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert "Weekly report Acme 2026-W47: 97 mention(s)" in plain and r.link in plain
    assert "<h2>Top themes</h2>" in html and "<script>alert" not in html and "\u202e" not in html
    assert "&lt;script&gt;" in html


def _config(tmp_path, port: int) -> str:
    (tmp_path / "config.yaml").write_text(
        "database: m.db\nadvocates: {index_min_sample: 5}\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n"
        "  - name: Globex\n    terms: {include: [globex]}\n    competitor: true\n"
        f"alerts:\n  channels:\n    mail: {{type: email, host: 127.0.0.1, port: {port}, security: none, "
        "sender: monitor@example.org, to: team@example.org}\n"
        "report: {enabled: true, channels: [mail]}\n")
    store = Store(tmp_path / "m.db")
    seed(store)
    advocates.refresh(store, settings(tmp_path / "m.db").advocates)
    store.close()
    return str(tmp_path / "config.yaml")


def test_report_command_prints_and_sends_once(tmp_path):
    smtp = SmtpReceiver()
    try:
        cfg = _config(tmp_path, smtp.port)
        run = CliRunner().invoke
        r = run(main, ["-c", cfg, "report", "--brand", "acme", "--week", "2026-W47"], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert "Weekly report: Acme, 2026-W47" in r.output and "Volume: 97 mention(s)" in r.output
        assert "\u202e" not in r.output and "\x1b" not in r.output
        r = run(main, ["-c", cfg, "report", "--week", "2026-W47", "--format", "html"], catch_exceptions=False)
        assert r.output.startswith("<!doctype html>") and "<script>alert" not in r.output
        r = run(main, ["-c", cfg, "report", "--week", "2026-W99"])
        assert r.exit_code == 2 and "ISO week" in r.output
        r = run(main, ["-c", cfg, "report", "--week", "2026-W47", "--send"], catch_exceptions=False)
        assert r.exit_code == 0 and "Acme 2026-W47: queued for mail" in r.output and "delivery: 1 sent" in r.output
        r = run(main, ["-c", cfg, "report", "--week", "2026-W47", "--send"], catch_exceptions=False)
        assert "queued before, not sent again" in r.output
    finally:
        smtp.close()
    assert len(smtp.messages) == 1 and smtp.messages[0]["to"] == ["team@example.org"]


def test_the_daemon_schedules_the_report_weekly_in_its_time_zone(tmp_path):
    from monitor.daemon import Daemon

    s = settings(tmp_path / "m.db", enabled=True, day="fri", hour=17, timezone="America/New_York")
    store = Store(s.database_path, now=lambda: NOW)
    d = Daemon(s, store, sources=[], classifier_factory=lambda: None, channels={}, now=lambda: NOW)
    d.schedule()
    job = d.scheduler.get_job("report")
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert fields["day_of_week"] == "fri" and fields["hour"] == "17" and str(job.trigger.timezone) == \
        "America/New_York"
    assert d.scheduler.get_job("report:catch-up") is not None
    d.report_job()  # Wednesday after W47's Friday-17:00 send time had not come: W46, with nothing in it
    d.report_job()
    assert [a["title"] for a in store.alerts.recent(limit=5)] == ["Weekly report Acme 2026-W46"]
    assert d.outbox is not None and d.outbox.join(timeout=10)  # the delivery it woke is over before the close
    store.close()
    off = settings(tmp_path / "o.db")
    d2 = Daemon(off, Store(off.database_path), sources=[], classifier_factory=lambda: None, channels={})
    d2.schedule()
    assert d2.scheduler.get_job("report") is None


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_report_page_is_printable_and_escaped(db):
    s, store = db
    store.accounts.add_user("maria", hash_password(PASSWORD, n=2**12))
    reader = Store(s.database_path, readonly=True, now=lambda: NOW)
    async with client(create_app(s, reader, store, now=lambda: NOW)) as c:
        assert (await c.get("/report")).status_code == 303  # login first
        await login(c)
        r = await c.get("/report?brand=Acme&week=2026-W47")
        assert r.status_code == 200
        page = r.text
        assert "Weekly report · Acme" in page and 'href="/report?brand=Acme" class="on"' in page
        assert "battery" in page and "<script>alert" not in page and "\u202e" not in page
        assert (await c.get("/report?brand=Acme")).status_code == 200  # the last whole week
        assert (await c.get("/report?brand=Nope")).status_code == 404
        assert (await c.get("/report?brand=Acme&week=bad")).status_code == 400
        thin = await c.get("/report?brand=Globex&week=2026-W30")
        assert thin.status_code == 200 and "not enough data" in thin.text
        css = (await c.get("/static/app.css")).text
        assert "@media print" in css and ".no-print" in css
    reader.close()


def test_clean_label_is_what_the_templates_use():
    assert topics.clean_label("a\u202eb\x1bc") == "abc"
