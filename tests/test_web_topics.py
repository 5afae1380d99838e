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
    ids = theme_ids(html)
    assert len(ids) == 3 and "0" not in ids
    series = json.loads(re.search(r'<script type="application/json" id="topics-data">(.*?)</script>', html,
                                  re.S).group(1))
    assert [t["id"] for t in series["themes"]] == [int(i) for i in ids]
    assert all(len(t["counts"]) == len(series["weeks"]) for t in series["themes"])
    assert sum(sum(t["counts"]) for t in series["themes"]) == 90
    again = await client.get("/topics?brand=Acme")
    assert theme_ids(again.text) == ids  # the same themes keep their ids


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
