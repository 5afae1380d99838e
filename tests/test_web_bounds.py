"""The web app at its edges: ids and pages beyond SQLite's integers answer 404/422 (never
500), the Host allow-list understands bracketed IPv6 hosts, /healthz tells no versions."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest

from monitor.store import Store
from monitor.web.app import create_app
from tests.web_data import NOW
from tests.web_support import client as web_client
from tests.web_support import hidden, login, make_app, make_db, settings_for

pytestmark = pytest.mark.anyio

HUGE = [2**63, 2**64, 10**30, -(2**63) - 1, 0]
ABSENT = [2**63 - 1, 999_999]  # numbers SQLite holds, but no row has


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def client(tmp_path):
    settings, store = make_db(tmp_path)
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        yield c


@pytest.mark.parametrize("n", HUGE + ABSENT)
async def test_ids_beyond_sqlite_integers_are_refused_not_500(client, n):
    token = hidden((await client.get("/mentions")).text, "csrf")
    for path in (f"/authors/{n}", f"/api/authors/{n}"):
        r = await client.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
    posts = {f"/authors/{n}/marks": {"mark": "contacted", "brand": "Acme", "on": "1"},
             f"/authors/{n}/links": {"source": "demo", "handle": "bob"},
             f"/authors/{n}/unlink": {"author_id": "1"},
             "/authors/1/unlink": {"author_id": str(n)},
             f"/mentions/{n}/correct": {"field": "advocacy", "label": "promoter"}}
    for path, data in posts.items():
        r = await client.post(path, data={**data, "csrf": token})
        # unlinking an author that is in no link changes nothing: back to the page
        ok = (400, 404, 422, 303) if n in ABSENT and path.endswith("/unlink") else (400, 404, 422)
        assert r.status_code in ok, (path, r.status_code)


@pytest.mark.parametrize("path", ["/api/advocates", "/api/detractors", "/api/mentions"])
@pytest.mark.parametrize("page", [2**63, 10**30, 10**7])
async def test_api_pages_have_an_upper_bound(client, path, page):
    r = await client.get(path, params={"page": page})
    assert r.status_code == 422
    assert (await client.get(path, params={"page": 1000})).status_code == 200


async def test_html_pages_clamp_the_page(client):
    for path in ("/advocates", "/detractors", "/mentions"):
        assert (await client.get(path, params={"page": 2**64})).status_code == 200


def host_app(tmp_path, hosts):
    settings, store = make_db(tmp_path)
    s = settings_for(settings.database_path, allowed_hosts=hosts)
    return create_app(s, Store(settings.database_path, readonly=True, now=lambda: NOW), store, now=lambda: NOW)


@pytest.mark.parametrize(("host", "status"), [
    ("[::1]:8470", 200), ("[::1]", 200), ("[0:0:0:0:0:0:0:1]:80", 200), ("127.0.0.1:8470", 200),
    ("LOCALHOST:8470", 200), ("monitor.example.com", 200), ("[::2]:8470", 400), ("evil.example", 400),
    ("[::1", 400), ("[::1]x", 400), ("[::1]:port", 400), ("127.0.0.1:80:80", 400), ("", 400),
    ("monitor.example.com.evil.example", 400), ("[fe80::1%25eth0]:80", 400), ("localhost:99999999", 400),
])
async def test_allowed_hosts_match_bracketed_ipv6(tmp_path, host, status):
    app = host_app(tmp_path, ["127.0.0.1", "localhost", "::1", "monitor.example.com"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        r = await c.get("/healthz", headers={"host": host})
    assert r.status_code == status, (host, r.text)


async def test_allowed_hosts_accept_bracketed_entries_and_wildcards(tmp_path):
    app = host_app(tmp_path, ["[::1]", "*.example.com"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        got = {h: (await c.get("/healthz", headers={"host": h})).status_code
               for h in ("[::1]:1", "a.example.com", "example.com", "a.example.com.evil", "127.0.0.1")}
    assert got == {"[::1]:1": 200, "a.example.com": 200, "example.com": 400, "a.example.com.evil": 400,
                   "127.0.0.1": 400}


async def test_healthz_tells_no_versions(tmp_path):
    settings, store = make_db(tmp_path)
    async with web_client(make_app(settings, store)) as c:
        r = await c.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert sqlite3.sqlite_version not in r.text and not re.search(r"\d+\.\d+", r.text)
