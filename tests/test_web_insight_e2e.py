"""The insight pages end to end in a real headless browser (Debian's chromium through
Playwright, as tests/test_web_e2e.py): the Topics page (a brand's themes with their stored
ids, the chart drawn, each example reachable), the Compare page (a brand against a
``competitor: true`` brand, the figures those of monitor.share), the Report page (its
sections, the week chosen, print) and the e-mail version of the report, sent through the
e-mail channel to a local SMTP server and opened in the browser: hostile mentions and
author names stay text. No page logs a console error or throws."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from monitor import advocates, report, share, topics
from monitor.config import Settings
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store
from monitor.web.security import hash_password
from tests.test_web_e2e import _NO_BROWSER, CHROMIUM, FLAGS, XSS
from tests.topics_data import MODEL, NOW, add_themes, classification
from tests.web_support import PASSWORD, served

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_NO_BROWSER, reason=f"{CHROMIUM} not installed (apt-get install chromium)")]
from playwright import sync_api  # noqa: E402

WEEK = "2026-W46"  # the last whole week before NOW (Friday 2026-11-20)
MONDAY = report.parse_week(WEEK)
PAYLOADS = XSS["payloads"][:12]  # each calls __xss(n) if it ever runs
HOSTILE_NAME = "<img src=x onerror=__xss(101)>\u202eevil"


def settings_for(db) -> Settings:
    return Settings.model_validate({
        "database": str(db),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                   {"name": "Globex", "terms": {"include": ["globex"]}, "competitor": True}],
        "advocates": {"index_min_sample": 5},
    })


def seed(store: Store) -> None:
    """Acme: three themes over the last 20 days (every text carrying a payload); Globex (a
    competitor): one; in WEEK, hostile detractor mentions by an author with a hostile name."""
    add_themes(store, {"battery": 40, "support": 30, "shipping": 20}, extra=" <svg onload=__xss(100)>")
    add_themes(store, {"support": 30}, brand="Globex", start_id=1000)
    author = Author("demo", HOSTILE_NAME, display_name=HOSTILE_NAME, reach=5000)
    when = datetime(2026, 11, 15, 12, tzinfo=UTC)
    mentions = [Mention("demo", f"h{i}", "Acme", f"Acme {p} avoid", when - timedelta(hours=i),
                        url="javascript:__xss(102)", author=author) for i, p in enumerate(PAYLOADS)]
    ids = store.save_batch("demo", "q", FetchResult(mentions, None))
    store.save_classifications([(i, classification("negative", "detractor", None)) for i in ids])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from monitor.web.app import create_app

    tmp = tmp_path_factory.mktemp("insight-e2e")
    settings = settings_for(tmp / "monitor.db")
    store = Store(settings.database_path, now=lambda: NOW)
    seed(store)
    store.accounts.add_user("maria", hash_password(PASSWORD, n=2**12))
    advocates.refresh(store, settings.advocates, now=NOW)
    topics.store_themes(store, ["Acme", "Globex"], None, NOW)  # what the daemon's themes job does
    app = create_app(settings, Store(settings.database_path, readonly=True), store, now=lambda: NOW)
    with served(app) as url:
        yield {"url": url, "store": store, "settings": settings}
    store.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def watched(page) -> list[str]:
    """What went wrong on the page: console errors, uncaught exceptions, dialogs, payloads run."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.expose_function("__xss", lambda n: problems.append(f"payload {n} ran"))
    return problems


def logged_in(browser, server, viewport: dict | None = None):
    page = browser.new_context(viewport=viewport or {"width": 1360, "height": 900}).new_page()
    problems = watched(page)
    page.goto(server["url"] + "/login")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/overview**")
    return page, problems


def test_topics_page_shows_the_themes_chart_and_examples(browser, server):
    page, problems = logged_in(browser, server)
    page.click("nav >> text=Topics")
    page.wait_for_url("**/topics**")
    page.select_option("#topic-filters select[name=brand]", "Acme")  # the form submits itself
    page.wait_for_url("**brand=Acme**")
    rows = page.locator("#topics tbody tr")
    assert rows.count() == 3
    text = page.inner_text("#topics")
    for word in ("battery", "support", "shipping"):
        assert word in text
    assert "<svg onload=__xss(100)>" in text  # the scraped payload is shown as text
    stored = {t["id"] for t in server["store"].themes.stored("Acme", MODEL)}
    ids = {int(rows.nth(i).get_attribute("id").removeprefix("theme-")) for i in range(3)}
    assert ids == stored and page.locator("#topics-unstored").count() == 0
    # the chart: a Chart on the canvas, one stacked series per theme, every mention counted
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-topics'))")
    chart = page.evaluate("""() => { const c = Chart.getChart(document.getElementById('chart-topics'));
        return {labels: c.data.datasets.map(d => d.label), total: c.data.datasets.reduce(
            (s, d) => s + d.data.reduce((a, b) => a + b, 0), 0), width: c.canvas.width}; }""")
    assert len(chart["labels"]) == 3 and chart["total"] == 90 and chart["width"] > 0
    # an example: its source link opens outside, its "show" link finds it on the Mentions page
    first = rows.nth(0)
    example = first.locator("ul.examples li").first
    assert first.locator("ul.examples li").count() == 3
    outside = example.locator("a[target=_blank]")
    assert outside.get_attribute("href").startswith("https://x.test/")
    assert outside.get_attribute("rel") == "noopener noreferrer nofollow"
    words = example.inner_text().split(",")[0]  # "Acme battery drains overnight" or the like
    example.locator("a.example").click()
    page.wait_for_url("**/mentions?**")
    assert "brand=Acme" in page.url and words in page.inner_text("main")
    # "why detractors complain": the same page for one stance
    page.go_back()
    page.select_option("#topic-filters select[name=stance]", "detractor")
    page.wait_for_url("**stance=detractor**")
    assert "no distinct themes" in page.inner_text("#topics-note") and page.locator("canvas").count() == 0
    assert problems == []


def test_compare_page_sets_a_brand_against_its_competitor(browser, server):
    page, problems = logged_in(browser, server)
    page.click("nav >> text=Compare")
    page.wait_for_url("**/compare**")
    store, settings = server["store"], server["settings"]
    expected = share.share_of_voice(store, ["Acme", "Globex"], settings.advocates, since=NOW - timedelta(days=30),
                                    until=NOW, rivals=share.competitors(settings.brands))
    acme, globex = expected.brands
    assert not acme.competitor and globex.competitor and acme.share and globex.share
    rows = page.locator("#compare tbody tr")
    assert rows.count() == 2
    for i, b in enumerate((acme, globex)):
        row = rows.nth(i)
        assert row.locator("td[data-label=Brand] b").inner_text() == b.brand
        assert ("competitor" in row.locator("td[data-label=Brand]").inner_text()) == b.competitor
        assert row.locator("td[data-label=Mentions]").inner_text() == f"{b.mentions:,}"
        assert row.locator("td[data-label=Share]").inner_text() == f"{round(100 * b.share)}%"
        assert row.locator("td[data-label='Advocacy index'] strong").inner_text() == f"{b.index['value']:+.0f}"
    assert acme.mentions == 102 and globex.mentions == 30  # 90 + the 12 hostile ones; Globex's 30
    assert "battery" in rows.nth(0).locator("td[data-label='Top themes']").inner_text()
    # the weekly chart: each brand's share of each week, in percent, as monitor.share has it
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-compare'))")
    chart = page.evaluate("""() => { const c = Chart.getChart(document.getElementById('chart-compare'));
        return {weeks: c.data.labels, sets: c.data.datasets.map(d => [d.label, d.data])}; }""")
    shares = expected.weekly_shares()
    assert chart["weeks"] == list(expected.weeks)
    assert chart["sets"] == [[b.brand + (" (competitor)" if b.competitor else ""),
                              [None if v is None else round(v * 1000) / 10 for v in shares[b.brand]]]
                             for b in expected.brands]
    rows.nth(0).locator("a >> text=all themes").click()
    page.wait_for_url("**/topics?brand=Acme**")
    assert page.locator("#topics tbody tr").count() == 3
    assert problems == []


def test_report_page_renders_its_sections_and_prints_clean(browser, server):
    page, problems = logged_in(browser, server)
    page.click("nav >> text=Report")
    page.wait_for_url("**/report**")
    page.select_option("#report-filters select[name=brand]", "Acme")
    page.fill("#report-filters input[name=week]", WEEK)
    page.click("#report-filters button")
    page.wait_for_url(f"**week={WEEK}**")
    built = report.build(server["store"], server["settings"], "Acme", MONDAY)
    assert page.inner_text("#report h1") == "Weekly report · Acme"
    for part in ("figures", "themes", "advocates", "detractors", "notable"):
        assert page.locator(f"#report-{part} h2").count() == 1, part
    assert page.inner_text("#report-volume") == f"{built.mentions:,}" and built.mentions > 12
    assert built.voice is not None and page.inner_text("#report-share").startswith(f"{built.voice.share * 100:.0f}%")
    assert "battery" in page.inner_text("#report-themes")
    notable = page.inner_text("#report-notable")
    assert "<img src=x onerror=__xss(101)>evil" in notable  # the name as text, without its bidi override
    assert any(p in notable for p in PAYLOADS)
    assert page.locator("#report-notable a[href^='javascript']").count() == 0
    assert "<img src=x onerror=__xss(101)>" in page.inner_text("#report-detractors")
    page.emulate_media(media="print")
    assert not page.locator("#report-filters").is_visible() and not page.locator("nav").first.is_visible()
    assert page.locator("#report-notable").is_visible()
    assert problems == []


def test_the_emailed_report_keeps_hostile_text_inert(browser, server):
    from monitor.alerts.channels import EmailChannel
    from tests.alerts.alert_fakes import SmtpReceiver

    built = report.build(server["store"], server["settings"], "Acme", MONDAY)
    smtp = SmtpReceiver()
    try:
        EmailChannel("mail", host="127.0.0.1", port=smtp.port, security="none", sender="monitor@example.org",
                     to=["team@example.org"]).send(report.alert_of(built, NOW))
    finally:
        smtp.close()
    msg = email.message_from_bytes(smtp.messages[0]["data"], policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    page = browser.new_context().new_page()
    problems = watched(page)  # an e-mail has no CSP: escaping alone must keep the payloads inert
    page.set_content(html)
    page.wait_for_load_state("load")
    assert page.inner_text("h1") == "Weekly report · Acme"
    text = page.inner_text("body")
    assert "<img src=x onerror=__xss(101)>evil" in text and any(p in text for p in PAYLOADS)
    assert "Top themes" in text and "battery" in text and "Notable mentions" in text
    assert page.locator("img, svg, iframe, script:not([type]), a[href^='javascript']").count() == 0
    assert problems == []


def test_the_insight_pages_fit_a_phone(browser, server):
    page, problems = logged_in(browser, server, {"width": 390, "height": 844})
    for path in ("/topics?brand=Acme", "/compare", f"/report?brand=Acme&week={WEEK}"):
        page.goto(server["url"] + path)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, path
    assert problems == []
