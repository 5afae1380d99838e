"""The Topics page in-process, through httpx's ASGI transport, on a real SQLite file with
synthetic sentence vectors."""

from __future__ import annotations

import json
import re

import pytest

from tests.topics_data import add_themes
from tests.web_support import client as web_client
from tests.web_support import login, make_app, make_db

pytestmark = pytest.mark.anyio

HOSTILE = ' <script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def anyio_backend():
    return "asyncio"


def seeder(store):
    add_themes(store, {"battery": 40, "support": 30, "shipping": 20}, extra=HOSTILE)


@pytest.fixture
async def client(tmp_path):
    settings, store = make_db(tmp_path, seeder=seeder)
    async with web_client(make_app(settings, store)) as c:
        yield c


def theme_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="theme-(\d+)">', html)


async def test_topics_page_needs_login(client):
    r = await client.get("/topics?brand=Acme")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_topics_page_shows_each_theme_escaped_with_a_chart_and_stable_ids(client):
    await login(client)
    r = await client.get("/topics?brand=Acme")
    assert r.status_code == 200
    html = r.text
    assert "Topics · Acme" in html and 'href="/topics?brand=Acme"' in html  # the nav keeps the brand
    for word in ("battery", "support", "shipping"):
        assert word in html
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    # nothing stored yet: the page finds the themes but stores nothing, and says how to store them
    assert theme_ids(html) == [] and html.count('<tr id="theme-new-') == 3
    assert "monitor topics --brand Acme" in html and 'id="topics-unstored"' in html
    series = json.loads(re.search(r'<script type="application/json" id="topics-data">(.*?)</script>', html,
                                  re.S).group(1))
    assert all(len(t["counts"]) == len(series["weeks"]) for t in series["themes"])
    assert sum(sum(t["counts"]) for t in series["themes"]) == 90
    # each example leads to the mention on the Mentions page (brand and its exact time)
    show = re.findall(r'<a class="small example" href="(/mentions\?[^"]+)"', html)
    assert len(show) == 9 and all("brand=Acme" in h and "since=" in h for h in show)
    listed = await client.get(show[0].replace("&amp;", "&"))
    assert listed.status_code == 200 and listed.text.count('class="mention') >= 1


async def test_stored_themes_keep_their_ids_on_the_page(tmp_path):
    from monitor import topics
    from tests.topics_data import NOW

    settings, store = make_db(tmp_path, seeder=seeder)
    stored = topics.store_themes(store, ["Acme", "Globex"], None, NOW)  # the daemon's job, `monitor topics`
    assert stored == 3
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        html = (await c.get("/topics?brand=Acme")).text
        ids = theme_ids(html)
        assert len(ids) == 3 and "0" not in ids and 'id="topics-unstored"' not in html
        assert sorted(int(i) for i in ids) == sorted(t["id"] for t in store.themes.stored("Acme", "vec-fake@1"))
        series = json.loads(re.search(r'<script type="application/json" id="topics-data">(.*?)</script>', html,
                                      re.S).group(1))
        assert [t["id"] for t in series["themes"]] == [int(i) for i in ids]
        again = await c.get("/topics?brand=Acme&days=31")  # another view (not the cached one): the same ids
        assert sorted(theme_ids(again.text)) == sorted(ids)


def database_content(path) -> list[str]:
    """Every row of every table, read through a connection of its own (WAL included)."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


async def test_the_insight_pages_never_write_on_get(tmp_path):
    """GET /topics, /compare and /report read only: the themes are stored by `monitor topics`
    and the daemon's themes job, never as a side effect of looking at a page."""
    settings, store = make_db(tmp_path, seeder=seeder)
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        before = database_content(settings.database_path)
        for path in ("/topics?brand=Acme", "/topics?brand=Acme&stance=detractor&days=90", "/compare?days=30",
                     "/report?brand=Acme", "/report?brand=Acme&week=2026-W45"):
            r = await c.get(path)
            assert r.status_code == 200, path
            if "detractor" not in path:
                assert "battery" in r.text, path  # the themes were found (and shown) all the same
        assert database_content(settings.database_path) == before
        assert store.themes.stored("Acme", "vec-fake@1") == []


async def test_topics_page_not_enough_data_and_no_brand(client):
    await login(client)
    r = await client.get("/topics?brand=Globex")
    assert r.status_code == 200 and "not enough data: 0 mentions" in r.text and "chart-topics" not in r.text
    r = await client.get("/topics?brand=")
    assert r.status_code == 200 and "choose one" in r.text
    r = await client.get("/topics?brand=Nobody&days=99999&stance=bogus")
    assert r.status_code == 200 and "choose one" in r.text
    r = await client.get("/topics?brand=Acme&stance=detractor&days=90")
    assert r.status_code == 200 and "no distinct themes" in r.text and "detractors&#39; mentions" in r.text
