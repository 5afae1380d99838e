"""The web app in-process, through httpx's ASGI transport, on a real SQLite file."""

from __future__ import annotations

import csv
import io

import pytest

from monitor.store import Store
from tests.web_support import client as web_client
from tests.web_support import hidden, login, make_app, make_db

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app(tmp_path):
    settings, store = make_db(tmp_path)
    return make_app(settings, store)


@pytest.fixture
async def client(app):
    async with web_client(app) as c:
        yield c


async def test_pages_need_login(client):
    for path in ("/overview", "/advocates", "/detractors", "/mentions", "/authors/1", "/export/advocates.csv"):
        r = await client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    r = await client.get("/api/advocates")
    assert r.status_code == 401


async def test_login_sets_a_strict_session_cookie(client):
    r = await login(client)
    assert r.status_code == 303 and r.headers["location"] == "/advocates"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert (await client.get("/advocates")).status_code == 200


async def test_wrong_password_and_missing_csrf_are_refused(client):
    assert (await login(client, password="wrong password")).status_code == 401
    r = await client.post("/login", data={"username": "maria", "password": "x", "csrf": "forged"})
    assert r.status_code == 403
    assert (await client.get("/advocates")).status_code == 303


async def test_secure_cookie_flag_follows_config(tmp_path):
    from tests.web_support import settings_for

    settings, store = make_db(tmp_path)
    secure = settings_for(settings.database_path, secure_cookies=True)
    import httpx

    app = make_app(secure, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://127.0.0.1") as c:
        r = await login(c)
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"]


async def test_healthz_needs_no_login_and_names_no_versions(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}


async def test_security_headers_and_host_allow_list(client):
    r = await client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in r.text  # no inline script on any page
    bad = await client.get("/login", headers={"host": "evil.example"})
    assert bad.status_code == 400


async def test_advocates_list_ranks_and_explains(client):
    await login(client)
    r = await client.get("/api/advocates", params={"brand": "Acme"})
    rows = r.json()
    assert rows[0]["handle"] == "alice" and rows[0]["flag"] == "advocate"
    reasons = {c["name"]: c for c in rows[0]["reasons"]}
    assert reasons["stance"]["fact"] == "5 of 6 classified"
    assert round(sum(c["points"] for c in rows[0]["reasons"]), 0) == round(rows[0]["score"], 0)
    carol = next(x for x in rows if x["handle"] == "carol")
    assert carol["flips"] == 1 and carol["last_flip"] == "promoter->detractor" and carol["flag"] is None
    html = (await client.get("/advocates", params={"brand": "Acme", "flag": "advocate"})).text
    assert "alice" in html and "bob" not in html


async def test_detractors_and_star_ratings(client):
    await login(client)
    assert {r["handle"] for r in (await client.get("/api/detractors", params={"flag": "detractor"})).json()} == {"bob"}
    rows = (await client.get("/api/detractors")).json()
    rita = next(r for r in rows if r["handle"] == "rita")  # her text reads as promoter, her 2 stars as detractor
    reasons = {c["name"]: c for c in rita["reasons"]}
    assert rita["flag"] is None and reasons["stance"]["fact"] == "1 of 1 classified (1 from stars)"
    author = (await client.get(f"/api/authors/{next(r['person_id'] for r in rows if r['handle'] == 'rita')}")).json()
    assert author["timeline"][0]["basis"] == "stars" and author["timeline"][0]["stance"] == "detractor"


async def test_filters_and_sorting(client):
    await login(client)
    by_reach = (await client.get("/api/detractors", params={"sort": "reach", "brand": "Acme"})).json()
    assert [r["handle"] for r in by_reach] == ["bob", "carol", "rita"]  # 2,000 reach, then unknown reach
    advocates = (await client.get("/api/advocates", params={"brand": "Acme"})).json()
    assert "bob" not in {r["handle"] for r in advocates}  # no promoter mention: not on the list
    assert [r["handle"] for r in (await client.get("/api/advocates", params={"q": "zed"})).json()] == ["zed"]
    assert {r["brand"] for r in (await client.get("/api/advocates", params={"brand": "Globex"})).json()} == {"Globex"}
    by_source = (await client.get("/api/advocates", params={"source": "appstore"})).json()
    assert {r["source"] for r in by_source} == {"appstore"}


async def test_overview_shows_index_apart_by_basis(client):
    await login(client)
    o = (await client.get("/api/overview", params={"brand": "Acme"})).json()
    assert set(o["index"]) == {"text:relationship", "text:transactional", "stars:transactional"}
    stars = o["index"]["stars:transactional"]["total"]
    assert (stars["promoters"], stars["detractors"]) == (1, 1)
    assert sum(o["series"]["mentions"]) == 15  # Acme only: 2 of the 17 are Globex
    html = (await client.get("/overview", params={"brand": "Acme"})).text
    assert "star ratings" in html and "text model" in html


async def test_mark_contacted_needs_csrf_and_is_stored(client, app):
    await login(client)
    page = await client.get("/authors/1", params={"brand": "Acme"})
    token = hidden(page.text, "csrf")
    forged = await client.post("/authors/1/marks", data={"brand": "Acme", "mark": "contacted", "on": "1", "csrf": "x"})
    assert forged.status_code == 403
    r = await client.post("/authors/1/marks", data={"brand": "Acme", "mark": "contacted", "on": "1", "csrf": token})
    assert r.status_code == 303
    rows = (await client.get("/api/advocates", params={"mark": "contacted"})).json()
    assert [x["handle"] for x in rows] == ["alice"] and rows[0]["marks"] == ["contacted"]
    await client.post("/authors/1/marks", data={"brand": "Acme", "mark": "contacted", "on": "0", "csrf": token})
    assert (await client.get("/api/advocates", params={"mark": "contacted"})).json() == []


async def test_correction_changes_figures_and_exports_as_eval_data(client, app):
    await login(client)
    token = hidden((await client.get("/mentions")).text, "csrf")
    dave = next(m for m in (await client.get("/api/mentions", params={"q": "dave"})).json())
    r = await client.post(f"/mentions/{dave['id']}/correct",
                          data={"field": "advocacy", "label": "promoter", "csrf": token, "next": "/mentions"})
    assert r.status_code == 303
    after = (await client.get("/api/mentions", params={"q": "dave"})).json()[0]
    assert after["advocacy"] == "promoter" and after["corrected"]
    rows = (await client.get("/api/advocates", params={"q": "dave"})).json()
    assert rows[0]["promoters"] == 1
    export = await client.get("/export/corrections.csv", params={"field": "advocacy"})
    data = list(csv.DictReader(io.StringIO(export.text)))
    assert data[0]["label"] == "promoter" and data[0]["model_label"] == "none" and "dave" in data[0]["text"]
    bad = await client.post(f"/mentions/{dave['id']}/correct",
                            data={"field": "advocacy", "label": "<b>", "csrf": token})
    assert bad.status_code == 400


async def test_csv_exports_neutralise_formulas(tmp_path):
    from tests.web_data import add

    def seeder(store: Store):
        add(store, [{"id": 1, "handle": "=HYPERLINK(\"http://x\")", "text": "=cmd|' /C calc'!A0 acme",
                     "advocacy": "promoter"}])

    settings, store = make_db(tmp_path, seeder)
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        adv = (await c.get("/export/advocates.csv")).text
        men = (await c.get("/export/mentions.csv")).text
    assert "'=HYPERLINK" in adv and "\n=" not in adv and ",=" not in adv
    assert "'=cmd" in men


async def test_openapi_describes_the_api(client):
    spec = (await client.get("/api/openapi.json")).json()
    assert {"/api/advocates", "/api/detractors", "/api/overview", "/api/mentions", "/api/authors/{person_id}",
            "/api/corrections"} <= set(spec["paths"])


async def test_logout_ends_the_session(client):
    await login(client)
    token = hidden((await client.get("/advocates")).text, "csrf")
    await client.post("/logout", data={"csrf": token})
    assert (await client.get("/advocates")).status_code == 303


async def test_javascript_urls_are_not_links(tmp_path):
    from tests.web_data import add

    def seeder(store: Store):
        add(store, [{"id": 1, "handle": "x", "text": "acme <script>alert(1)</script>", "advocacy": "promoter",
                     "url": "javascript:alert(1)"},
                    {"id": 2, "handle": "y", "text": "acme fine", "advocacy": "promoter", "url": "https://ok.example/a"}])

    settings, store = make_db(tmp_path, seeder)
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        html = (await c.get("/mentions")).text
    assert "javascript:" not in html and "<script>alert" not in html and "&lt;script&gt;" in html
    assert 'href="https://ok.example/a"' in html


async def test_next_parameter_cannot_redirect_off_site(client):
    page = await client.get("/login")
    r = await client.post("/login", data={"username": "maria", "password": "correct horse battery",
                                          "csrf": hidden(page.text, "csrf"), "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_templates_autoescape_and_never_mark_safe():
    from pathlib import Path

    from monitor.web.app import templates_env

    env = templates_env()
    assert env.autoescape is True
    html = env.from_string("{{ x }}").render(x="<script>alert(1)</script>")
    assert html == "&lt;script&gt;alert(1)&lt;/script&gt;"
    for t in (Path(__file__).parent.parent / "monitor" / "web" / "templates").glob("*.html"):
        text = t.read_text()
        assert "|safe" not in text.replace(" ", "") and "Markup" not in text, t.name
        assert "<script>" not in text and " on" + "click=" not in text, t.name  # no inline script or handlers


def test_safe_href_allows_only_http_links():
    from monitor.web.security import safe_href

    assert safe_href("https://example.com/a?b=1") == "https://example.com/a?b=1"
    assert safe_href("http://example.com") == "http://example.com"
    for bad in ("javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "//evil.example", "/relative",
                "vbscript:x", "java\nscript:x", "https://", None, 42, "https://a.example/\\x", "x" * 3000):
        assert safe_href(bad) is None, bad


def test_server_thread_for_monitor_run(tmp_path):
    """`monitor run` with web.enabled serves from a thread sharing the daemon's writer store."""
    import socket
    import time

    import httpx

    from monitor.web import start_in_thread
    from tests.web_support import settings_for

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings, store = make_db(tmp_path)
    settings = settings_for(settings.database_path, enabled=True, port=port)
    server, thread = start_in_thread(settings, store)
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{port}/login")
        assert r.status_code == 200 and "content-security-policy" in r.headers
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


# ------------------------------------------------------- brand to open on, corrections, alerts


def brand_app(tmp_path, names: list[str], seeder=None):
    """The app with these configured brands (the first one empty, as in the shipped config)."""
    from monitor.config import Settings
    from tests.web_data import seed

    settings, store = make_db(tmp_path, seeder or seed)
    settings = Settings.model_validate({"database": str(settings.database_path), "advocates": {"index_min_sample": 2},
                                        "brands": [{"name": n, "terms": {"include": [n.lower()]}} for n in names]})
    return make_app(settings, store)


def acme_only(store: Store) -> None:
    from tests.web_data import add

    add(store, [{"id": i, "handle": f"u{i}", "text": f"acme #{i}", "advocacy": "promoter", "days_ago": i}
                for i in range(1, 4)])


def h1(html: str) -> str:
    import re

    return re.search(r"<h1>(.*?)</h1>", html).group(1)


async def test_page_opens_on_the_brand_with_data(tmp_path):
    async with web_client(brand_app(tmp_path, ["SQLite", "Acme", "Globex"], acme_only)) as c:
        await login(c)
        r = await c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/overview?brand=Acme"
        assert h1((await c.get("/overview")).text) == "Acme"


async def test_page_opens_on_all_brands_when_several_have_data(tmp_path):
    async with web_client(brand_app(tmp_path, ["SQLite", "Acme", "Globex"])) as c:
        await login(c)
        assert (await c.get("/")).headers["location"] == "/overview"
        assert h1((await c.get("/overview")).text) == "All brands"


async def test_the_last_brand_chosen_is_remembered(tmp_path):
    async with web_client(brand_app(tmp_path, ["SQLite", "Acme", "Café Nord"], acme_only)) as c:
        await login(c)
        r = await c.get("/overview", params={"brand": "Café Nord"})
        assert "monitor_brand=" in r.headers["set-cookie"] and "httponly" in r.headers["set-cookie"].lower()
        assert (await c.get("/")).headers["location"] == "/overview?brand=Caf%C3%A9+Nord"
        assert h1((await c.get("/overview")).text) == "Café Nord"
        await c.get("/overview", params={"brand": ""})  # all brands
        assert (await c.get("/")).headers["location"] == "/overview"
        assert h1((await c.get("/overview")).text) == "All brands"
        await c.get("/mentions", params={"brand": "SQLite", "q": "x"})  # chosen on another page counts too
        assert (await c.get("/")).headers["location"] == "/overview?brand=SQLite"
        await c.get("/overview", params={"brand": "Gone"})  # a brand nobody configured is not remembered
        assert (await c.get("/")).headers["location"] == "/overview?brand=SQLite"
        c.cookies.set("monitor_brand", "Removed")  # a brand since removed from the config: back to the default
        assert (await c.get("/")).headers["location"] == "/overview?brand=Acme"


async def _mention_id(client, q: str) -> int:
    return (await client.get("/api/mentions", params={"q": q})).json()[0]["id"]


async def test_correction_without_a_chosen_label_is_refused(client):
    await login(client)
    token = hidden((await client.get("/mentions")).text, "csrf")
    erin = await _mention_id(client, "erin")  # unclassified
    for field, words in (("advocacy", "Choose the stance"), ("sentiment", "Choose the sentiment")):
        for data in ({"field": field}, {"field": field, "label": ""}):
            r = await client.post(f"/mentions/{erin}/correct", data={**data, "csrf": token})
            assert r.status_code == 400 and words in r.text and "nothing was recorded" in r.text
    r = await client.post(f"/mentions/{erin}/correct", data={"field": "stars", "label": "5", "csrf": token})
    assert r.status_code == 400
    assert (await client.get("/api/corrections")).json() == []
    r = await client.post(f"/mentions/{erin}/correct", data={"field": "advocacy", "label": "passive", "csrf": token})
    assert r.status_code == 303
    saved = (await client.get("/api/corrections")).json()
    assert [(x["field"], x["label"]) for x in saved] == [("advocacy", "none")]


async def test_correction_form_starts_on_no_label_in_the_words_of_the_badges(client):
    import re

    await login(client)
    html = (await client.get("/mentions")).text
    selects = re.findall(r'<select name="label"[^>]*>(.*?)</select>', html, re.S)
    assert len(selects) == 2 * html.count('<tr id="m')  # a stance and a sentiment form per mention
    for body in selects:
        assert body.count("selected") == 1 and '<option value="" selected disabled>choose…</option>' in body
    stance = [s for s in selects if "promoter" in s][0]
    assert re.findall(r'<option value="(\w+)">(\w+)</option>', stance) == [
        ("promoter", "promoter"), ("none", "passive"), ("detractor", "detractor")]
    dave = (await client.get("/mentions", params={"q": "dave"})).text  # model: none, p=0.9
    assert "text model: passive, p=0.90" in dave and "sentiment: neutral, p=0.90" in dave


async def test_sentiment_is_corrected_apart_from_the_stance(client):
    await login(client)
    token = hidden((await client.get("/mentions")).text, "csrf")
    rita = await _mention_id(client, "rita")  # 2 stars: the stance is detractor, from the stars
    r = await client.post(f"/mentions/{rita}/correct", data={"field": "sentiment", "label": "negative", "csrf": token})
    assert r.status_code == 303
    row = (await client.get("/api/mentions", params={"q": "rita"})).json()[0]
    assert row["sentiment"] == "negative" and row["sentiment_corrected"] and not row["corrected"]
    html = (await client.get("/mentions", params={"q": "rita"})).text
    assert "★ stars" in html and "sentiment: negative" in html  # the stance basis stays the stars
    page = (await client.get("/corrections")).text
    assert "Sentiment CSV" in page and '<td data-label="Label">sentiment</td>' in page
    data = list(csv.DictReader(io.StringIO((await client.get("/export/corrections.csv",
                                                              params={"field": "sentiment"})).text)))
    assert [(d["label"], d["model_label"]) for d in data] == [("negative", "positive")]


async def test_recent_alerts_link_to_their_mentions(client, app):
    from monitor.records import Alert
    from tests.web_data import NOW

    await login(client)
    bob = await _mention_id(client, "bob says detractor")
    writer = app.state.writer_source
    writer.alerts.insert([Alert("detractors", "k1", "critical", "bob warns people off", "avoid it", brand="Acme",
                                created_at=NOW, mention_ids=(bob,)),
                          Alert("health", "k2", "warning", "source down", "no mentions", created_at=NOW)], {})
    ids = {r["title"]: r["id"] for r in writer.query("SELECT id, title FROM alerts")}
    html = (await client.get("/overview", params={"brand": ""})).text
    assert f'<a href="/alerts/{ids["bob warns people off"]}">bob warns people off</a>' in html
    page = await client.get(f"/alerts/{ids['bob warns people off']}")
    assert page.status_code == 200 and "bob says detractor" in page.text and "avoid it" in page.text
    assert f'action="/mentions/{bob}/correct"' in page.text
    empty = await client.get(f"/alerts/{ids['source down']}")
    assert empty.status_code == 200 and "no longer listed" not in empty.text and "0 mention(s)" in empty.text
    assert (await client.get("/alerts/999")).status_code == 404
    for bad in ("0", str(2**70), "x"):
        assert (await client.get(f"/alerts/{bad}")).status_code in (404, 422), bad
