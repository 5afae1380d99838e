"""The response desk's pages in-process (httpx's ASGI transport) on a real SQLite file: the
inbox, an item, changes with CSRF and versions, bulk actions, drafts, the overview's speed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from monitor import inbox as desk
from monitor.config import InboxSettings
from monitor.web.security import hash_password
from tests.web_data import NOW, add
from tests.web_support import PASSWORD, hidden, login, make_app, make_db
from tests.web_support import client as web_client

pytestmark = pytest.mark.anyio
XSS = "<script>window.__xss(1)</script><img src=x onerror=alert(1)>"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def setup(tmp_path):
    settings, store = make_db(tmp_path)
    store.accounts.add_user("ben", hash_password(PASSWORD, n=2**12))
    bob = store.query("SELECT id FROM mentions WHERE text LIKE 'bob says detractor%' ORDER BY id")[0]["id"]
    item = desk.route_to_inbox(store, InboxSettings(), bob, "critical", rule="detractor-with-reach",
                               now=NOW - timedelta(hours=2))
    return settings, store, item


@pytest.fixture
async def client(setup):
    settings, store, _ = setup
    async with web_client(make_app(settings, store)) as c:
        yield c


async def test_the_inbox_needs_a_login_and_lists_the_overdue_detractor(client, setup):
    assert (await client.get("/inbox")).status_code == 303
    await login(client)
    r = await client.get("/inbox")
    assert r.status_code == 200 and "bob says detractor" in r.text and "overdue 1 h 00 min" in r.text
    assert 'class="prio critical"' in r.text and 'value="1:1"' in r.text
    assert 'href="/inbox"' in r.text  # the nav
    r = await client.get("/inbox?state=closed")
    assert "bob says detractor" not in r.text


async def test_an_item_is_assigned_responded_and_a_stale_form_is_refused(client, setup):
    _, store, item = setup
    await login(client)
    page = await client.get(f"/inbox/{item}")
    assert page.status_code == 200
    csrf = hidden(page.text, "csrf")
    assert 'id="reply-on-platform"' not in page.text  # demo mentions have no link
    assert "Hi bob, thank you for telling us" in page.text
    r = await client.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "assign", "assignee": "ben",
                                                          "version": "1"})
    assert r.status_code == 303
    # a second person with the page loaded at version 1
    r = await client.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "assign", "assignee": "maria",
                                                          "version": "1"})
    assert r.status_code == 409 and "changed by maria" in r.text and "assigned to ben" in r.text
    assert store.inbox.get(item)["assignee"] == "ben"
    r = await client.post(f"/inbox/{item}/change", data={"csrf": "forged", "action": "respond", "version": "2"})
    assert r.status_code == 403
    r = await client.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "respond", "version": "2"})
    assert r.status_code == 303
    page = await client.get(f"/inbox/{item}")
    assert "First response" in page.text and "2 h 00 min after it entered the inbox" in page.text
    r = await client.post(f"/inbox/{item}/change", data={"csrf": csrf, "action": "dismiss", "reason": "",
                                                          "version": "3"})
    assert r.status_code == 400 and "needs a reason" in r.text
    assert (await client.post("/inbox/999/change", data={"csrf": csrf, "action": "close"})).status_code == 404
    overview = await client.get("/overview?brand=Acme")
    assert 'id="median-response"' in overview.text and "0%</b> within SLA of 1 decided" in overview.text


async def test_notes_and_mentions_are_escaped(client, setup):
    _, store, item = setup
    ids = add(store, [{"id": 77, "handle": XSS, "advocacy": "detractor", "text": f"acme {XSS}", "title": XSS,
                       "url": "javascript:alert(1)"}])
    xss_item = desk.route_to_inbox(store, InboxSettings(), ids[0], "high", by="maria")
    await login(client)
    page = await client.get(f"/inbox/{xss_item}")
    csrf = hidden(page.text, "csrf")
    await client.post(f"/inbox/{xss_item}/notes", data={"csrf": csrf, "text": XSS})
    for path in ("/inbox", f"/inbox/{xss_item}"):
        html = (await client.get(path)).text
        assert "<script>window.__xss" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
        assert "javascript:" not in html
    assert "&lt;script&gt;" in (await client.get(f"/inbox/{xss_item}")).text


async def test_bulk_actions_say_each_outcome(client, setup):
    _, store, item = setup
    other = desk.route_to_inbox(store, InboxSettings(), store.inbox.get(item)["mention_id"] + 1, "low")
    await login(client)
    csrf = hidden((await client.get("/inbox")).text, "csrf")
    r = await client.post("/inbox/bulk", data={"csrf": csrf, "action": "assign", "assignee": "ben",
                                               "item": [f"{item}:1", f"{other}:1"], "back": "/inbox?state=open"})
    assert r.status_code == 303 and r.headers["location"].startswith("/inbox?state=open&done=2+item")
    r = await client.post("/inbox/bulk", data={"csrf": csrf, "action": "close", "item": [f"{item}:1", f"{other}:2"],
                                               "back": "https://evil.example/"})
    location = r.headers["location"]
    assert location.startswith("/inbox?done=1+item") and "changed+by+maria" in location
    assert store.inbox.get(other)["state"] == "closed" and store.inbox.get(item)["state"] == "assigned"


async def test_any_mention_goes_to_the_inbox_by_hand(client, setup):
    _, store, _ = setup
    await login(client)
    page = await client.get("/mentions?q=carol")
    assert 'action="/inbox/add"' in page.text
    mention = int(re.search(r'name="mention_id" value="(\d+)"', page.text).group(1))
    r = await client.post("/inbox/add", data={"csrf": hidden(page.text, "csrf"), "mention_id": str(mention),
                                              "priority": "high"})
    item = store.inbox.item_for_mention(mention)
    assert r.status_code == 303 and r.headers["location"] == f"/inbox/{item}"
    assert store.inbox.get(item)["entered_by"] == "maria" and store.inbox.get(item)["priority"] == "high"
    again = await client.post("/inbox/add", data={"csrf": hidden(page.text, "csrf"), "mention_id": str(mention)})
    assert again.headers["location"] == f"/inbox/{item}"
