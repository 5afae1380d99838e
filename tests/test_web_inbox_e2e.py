"""The response desk end to end in a real headless browser (Debian's chromium through
Playwright, as tests/test_web_e2e.py): a community manager logs in, sees a detractor in the
inbox, assigns it, opens the reply draft, marks it responded and sees the response time on
the overview; the pages fit a 390 px phone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor import inbox as desk
from monitor.config import InboxSettings
from tests.test_web_e2e import _NO_BROWSER, CHROMIUM, FLAGS
from tests.web_data import NOW
from tests.web_support import PASSWORD, make_db, served

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_NO_BROWSER, reason=f"{CHROMIUM} not installed (apt-get install chromium)")]
from playwright import sync_api  # noqa: E402

PHONE = {"width": 390, "height": 844}


class Clock:
    now = NOW - timedelta(minutes=45)

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from monitor.store import Store
    from monitor.web.app import create_app

    clock = Clock()
    settings, store = make_db(tmp_path_factory.mktemp("inbox-e2e"))
    store.now = clock
    from monitor.web.security import hash_password

    store.accounts.add_user("vic", hash_password(PASSWORD, n=2**12), role="viewer")
    bob = store.query("SELECT id FROM mentions WHERE text LIKE 'bob says detractor%' ORDER BY id")[0]["id"]
    item = desk.route_to_inbox(store, InboxSettings(), bob, "critical", rule="detractor-with-reach", now=clock.now)
    app = create_app(settings, Store(settings.database_path, readonly=True), store, now=clock)
    with served(app) as url:
        yield {"url": url, "store": store, "item": item, "clock": clock}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def logged_in(browser, server, user="maria", **ctx):
    page = browser.new_context(**{"viewport": {"width": 1360, "height": 900}, **ctx}).new_page()
    page.goto(server["url"] + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/overview**")
    return page


def test_a_community_manager_works_the_inbox(browser, server):
    page = logged_in(browser, server)
    assert "No inbox item answered" in page.inner_text("#response-speed")
    page.click("nav >> text=Inbox")
    page.wait_for_url("**/inbox**")
    row = page.locator(f"#i{server['item']}")
    assert "bob says detractor" in row.inner_text() and "critical" in row.inner_text().lower()
    row.locator("a.item").click()
    page.wait_for_url(f"**/inbox/{server['item']}")
    page.select_option("#assign-form select[name=assignee]", "maria")
    page.click("#assign-form button")
    page.wait_for_load_state()
    assert page.inner_text("#item-state-name") == "assigned" and page.inner_text("#item-assignee") == "maria"
    draft = page.input_value("#draft")
    assert draft.startswith("Hi bob, thank you for telling us") and "Acme" in draft
    page.fill("#draft", draft + " Sorry again.")
    page.select_option("#reply select[name=template]", "question")  # another template: the page reloads
    page.wait_for_function("document.querySelector('#draft').value.startsWith('Hi bob, thanks for asking')")
    server["clock"].now = NOW  # 45 minutes after the item entered
    page.click("button[data-action=respond]")
    page.wait_for_load_state()
    assert page.inner_text("#item-state-name") == "responded"
    assert "45 min after it entered the inbox" in page.inner_text("#response-time")
    history = page.inner_text("#history")
    assert "maria assign" in history and "maria respond" in history
    page.click("nav >> text=Overview")
    page.wait_for_url("**/overview**")
    assert page.inner_text("#median-response") == "45 min"
    assert "100% within SLA" in page.inner_text("#response-speed")


def test_the_inbox_fits_a_phone(browser, server):
    page = logged_in(browser, server, viewport=PHONE)
    for path in ("/inbox?state=all", f"/inbox/{server['item']}", "/overview"):
        page.goto(server["url"] + path)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"], path


def test_a_viewer_sees_no_actions_and_the_admin_changes_roles_and_reads_the_audit_log(browser, server):
    viewer = logged_in(browser, server, user="vic")
    assert viewer.locator("nav >> text=Audit").count() == 0 and viewer.locator("nav >> text=Users").count() == 0
    viewer.goto(server["url"] + f"/inbox/{server['item']}")
    assert viewer.locator("#assign-form").count() == 0 and viewer.locator("button[data-action]").count() == 0
    assert "needs the member role" in viewer.inner_text("body")
    viewer.context.close()
    page = logged_in(browser, server)
    page.click("nav >> text=Users")
    page.wait_for_url("**/admin/users")
    page.select_option("tr[data-user=vic] select[name=role]", "member")
    page.click("tr[data-user=vic] form.role-form button")
    page.wait_for_url("**/admin/users?**")
    assert "vic: viewer → member" in page.inner_text(".notice")
    page.click("nav >> text=Audit")
    page.wait_for_url("**/audit")
    page.fill("#audit-filters input[name=action]", "user.role")
    page.click("#audit-filters button")
    page.wait_for_url("**/audit?**")
    rows = page.inner_text("#audit tbody")
    assert "maria" in rows and "user.role" in rows and "viewer" in rows and "member" in rows
    assert server["store"].accounts.list_users()[1]["role"] == "member"
