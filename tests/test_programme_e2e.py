"""The advocate programme in a real headless browser (Debian's chromium through Playwright, the
server on 127.0.0.1): a marketing person sets an advocate's status, records a reward, makes and
copies the referral link, uploads a referral CSV and reads the totals and the chart; hostile
author names never run. No console error, page error or dialog."""

from __future__ import annotations

import re

import pytest

from monitor import advocates
from tests.test_programme import programme_settings
from tests.test_web_e2e import _NO_BROWSER, CHROMIUM, FLAGS, seed_with_xss
from tests.web_data import NOW
from tests.web_support import PASSWORD, make_db, served

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_NO_BROWSER, reason=f"{CHROMIUM} not installed (apt-get install chromium)")]
from playwright import sync_api  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from monitor.store import Store
    from monitor.web.app import create_app

    tmp = tmp_path_factory.mktemp("programme-e2e")
    _, store = make_db(tmp, seed_with_xss)
    settings = programme_settings(tmp / "monitor.db")
    advocates.refresh(store, settings.advocates, full=True, now=NOW)
    app = create_app(settings, Store(settings.database_path, readonly=True), store, now=lambda: NOW)
    with served(app) as url:
        yield {"url": url, "store": store, "tmp": tmp}


def test_an_advocate_goes_through_the_programme(server, tmp_path):
    store = server["store"]
    alice = int(store.query("SELECT id FROM authors WHERE handle = 'alice'")[0]["id"])
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.add_init_script("window.__xss = function (n) { (window.__fired = window.__fired || []).push(n); };")
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.goto(server["url"] + "/login")
        page.fill("input[name=username]", "maria")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/overview**")

        page.goto(f"{server['url']}/authors/{alice}?brand=Acme")
        box = page.locator("#programme-acme")
        assert "not in the programme" in box.inner_text()
        box.locator("form.status-form select[name=status]").select_option("contacted")
        box.locator("form.status-form input[name=note]").fill("DM on Hacker News")
        box.locator("form.status-form button").click()
        page.wait_for_url("**done=**")
        box = page.locator("#programme-acme")
        assert box.locator("span.status").inner_text() == "contacted"
        box.locator("form.reward-form input[name=what]").fill("conference ticket")
        box.locator("form.reward-form input[name=value]").fill("250")
        box.locator("form.reward-form button").click()
        page.wait_for_url("**done=reward**")
        box = page.locator("#programme-acme")
        assert box.locator("span.status").inner_text() == "rewarded"
        assert "250.00 EUR" in box.locator("table.rewards").inner_text()
        link = box.locator("input.reflink").input_value()
        code = store.programme.member(alice, "Acme")["code"]
        assert link == ("https://acme.example/signup?lang=en&utm_source=monitor&utm_medium=advocate"
                        f"&utm_campaign=ambassadors&ref={code}#form")
        box.locator("button[data-copy]").click()
        page.wait_for_function("document.querySelector('#programme-acme button[data-copy]').textContent === 'Copied'")

        csv_file = tmp_path / "referrals.csv"
        csv_file.write_text(f"code,date,value\n{code},2026-11-02,25\n{code},2026-11-10,15.5\nnope,2026-11-02,1\n",
                            encoding="utf-8")
        page.goto(server["url"] + "/programme?brand=Acme")
        page.set_input_files("#referral-import input[type=file]", str(csv_file))
        page.click("#referral-import button")
        page.wait_for_url("**/programme?done=**")
        assert "2 new referral(s), 1 unmatched" in page.inner_text("p.notice")
        page.goto(server["url"] + "/programme?brand=Acme")
        kpi = page.locator('#programme-totals .kpi[data-brand="Acme"]')
        assert kpi.locator(".referrals").inner_text() == "2" and kpi.locator(".referral-value").inner_text() == "40.50"
        page.wait_for_function("document.querySelector('#chart-programme').width > 0")
        assert "unknown code 'nope'" in page.inner_text("table.unmatched")
        row = page.locator("table.programme tbody tr").first
        assert "rewarded" in row.inner_text() and re.search(r"2 · 40\.50 EUR", row.inner_text())
        fired = page.evaluate("window.__fired || []")
        browser.close()
    assert fired == [] and problems == []
