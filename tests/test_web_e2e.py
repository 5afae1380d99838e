"""End to end in a real headless browser: Debian's chromium driven by Playwright
(executable_path, no browser download). The server runs on 127.0.0.1, started here."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import advocates
from monitor.records import Alert
from tests.web_data import NOW, add, seed
from tests.web_support import PASSWORD, make_db, served

CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
XSS = json.loads((Path(__file__).parent / "fixtures" / "web" / "xss.json").read_text())
SHOTS = os.environ.get("MONITOR_SCREENSHOTS")  # a folder: save a PNG of each page there

# In CI (CI=true) a missing browser is a failure, not a skip: .ci/run installs it.
_NO_BROWSER = not shutil.which(CHROMIUM) and not os.environ.get("CI")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_NO_BROWSER, reason=f"{CHROMIUM} not installed (apt-get install chromium)")]
from playwright import sync_api  # noqa: E402


def seed_with_xss(store):
    seed(store)
    items, n = [], 1000
    for i, p in enumerate(XSS["payloads"]):
        n += 1
        items.append({"id": n, "handle": f"h{i}{p}", "display_name": p, "title": p, "text": f"acme {p}",
                      "advocacy": ("promoter", "detractor", "none")[i % 3], "days_ago": 1 + i % 20,
                      "url": XSS["urls"][i % len(XSS["urls"])], "reach": 100 * i})
    add(store, items)
    add(store, [{"id": 2000, "handle": "tess", "text": "It's okay... gets the job done. acme", "kind": "review",
                 "rating": 3, "source": "appstore", "advocacy": "promoter", "days_ago": 2}])
    bob = store.query("SELECT id FROM mentions WHERE text LIKE 'bob says detractor%' ORDER BY id LIMIT 1")[0]["id"]
    store.alerts.insert([Alert("detractors", "bob-1", "critical", "bob warns people off Acme", "bob: avoid",
                               brand="Acme", created_at=NOW + timedelta(minutes=1), mention_ids=(bob,))], {})
    store.alerts.insert([Alert("xss-rule", f"k{i}", "warning", p, p, brand="Acme", created_at=NOW)
                         for i, p in enumerate(XSS["payloads"][:10])], {})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from monitor.store import Store
    from monitor.web.app import create_app

    tmp = tmp_path_factory.mktemp("e2e")
    settings, store = make_db(tmp, seed_with_xss)
    advocates.refresh(store, settings.advocates, full=True, now=NOW)
    app = create_app(settings, Store(settings.database_path, readonly=True), store, now=lambda: NOW)
    with served(app) as url:
        yield {"url": url, "store": store, "tmp": tmp}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def new_page(browser, server, **ctx):
    context = browser.new_context(**{"accept_downloads": True, "viewport": {"width": 1360, "height": 900}, **ctx})
    page = context.new_page()
    fired: list[str] = []
    page.add_init_script("window.__xss = function (n) { (window.__fired = window.__fired || []).push(n); };")
    page.on("dialog", lambda d: (fired.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: fired.append(f"pageerror: {e}") if "__xss" in str(e) else None)
    page.goto(server["url"] + "/login")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/overview**")
    return page, fired


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_marketing_workflow(browser, server):
    page, fired = new_page(browser, server)
    assert page.locator("canvas#chart-mentions").count() == 1
    page.wait_for_function("document.querySelector('#chart-mentions').width > 0")
    shot(page, "overview")
    page.click("nav >> text=Advocates")
    page.select_option("#author-filters select[name=brand]", "Acme")
    page.select_option("#author-filters select[name=flag]", "advocate")
    page.click("#author-filters button[type=submit]")
    page.wait_for_url("**flag=advocate**")
    handles = page.locator("#authors-table a.author").all_inner_texts()
    assert handles and handles[0] == "alice" and "bob" not in handles
    shot(page, "advocates")
    page.click("#authors-table a.author >> text=alice")
    page.wait_for_url("**/authors/**")
    assert "Advocate score" in page.inner_text("main")
    page.click("button[data-mark=contacted]")
    page.wait_for_load_state()
    assert "✓" in page.inner_text("button[data-mark=contacted]")
    shot(page, "author")
    page.goto(server["url"] + "/advocates?mark=contacted")
    assert page.locator("#authors-table a.author").all_inner_texts() == ["alice"]
    with page.expect_download() as dl:
        page.click("text=Export CSV")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [r["handle"] for r in rows] == ["alice"] and rows[0]["marks"] == "contacted"
    page.goto(server["url"] + "/detractors")
    shot(page, "detractors")
    page.goto(server["url"] + "/mentions?q=carol")
    shot(page, "mentions")
    assert fired == []


def test_stored_xss_never_executes(browser, server):
    # CSP bypassed on purpose: escaping alone must keep every payload inert
    page, fired = new_page(browser, server, bypass_csp=True)
    urls = ["/overview?brand=Acme", "/overview", "/advocates", "/advocates?page=2", "/detractors", "/mentions",
            "/mentions?page=2", "/corrections", "/advocates?q=%3Cscript"]
    ids = [r["id"] for r in server["store"].query("SELECT id FROM authors WHERE handle LIKE 'h%'")]
    urls += [f"/authors/{i}" for i in ids]
    for url in urls:
        page.goto(server["url"] + url)
        page.wait_for_load_state("load")
        page.wait_for_timeout(30)
        assert page.evaluate("window.__fired || []") == [], url
        for a in page.locator("a[href]").all():
            href = (a.get_attribute("href") or "").strip().lower()
            assert not href.startswith(("javascript:", "data:", "vbscript:")), (url, href)
    assert fired == []
    assert len(ids) == len(XSS["payloads"])
    # rendered as text: the payload shows literally
    page.goto(server["url"] + f"/authors/{ids[0]}")
    assert XSS["payloads"][0] in page.inner_text("main")
    shot(page, "xss-author")


def test_csp_blocks_inline_script_even_if_injected(browser, server):
    page, _ = new_page(browser, server)
    page.goto(server["url"] + "/mentions")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = '__xss("csp")';
                              document.body.appendChild(s); }""")
    page.wait_for_timeout(50)
    assert page.evaluate("window.__fired || []") == []


# ------------------------------------------------------------------ phones (390 px)

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1400, "height": 900}
PHONE_PAGES = ["/overview", "/overview?brand=Acme", "/advocates", "/detractors", "/mentions", "/mentions?q=carol",
               "/corrections", "/authors/1", "/alerts/{alert}", "/authors/999999"]

# Each link, button and field a person can use, scrolled into view: is it inside the screen
# (a table may scroll inside its own box, the page may not), and is it what a tap at its centre
# hits (not covered)? Header links and buttons must lie on the (dark) header.
UNREACHABLE = """() => {
  const width = document.documentElement.clientWidth, bad = [];
  const header = document.querySelector('header.top');
  const sel = 'header a, header button, main a, main button, main select, main input:not([type=hidden]), main summary';
  for (const el of document.querySelectorAll(sel)) {
    if (!el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') continue;
    el.scrollIntoView({block: 'center', inline: 'nearest'});
    const r = el.getClientRects()[0], box = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    const name = el.tagName + ' ' + (el.innerText || el.name || '').trim().slice(0, 30);
    const left = box.left + window.scrollX, right = box.right + window.scrollX;  // on the page, not its scroll
    if (left < -0.5 || right > width + 0.5) {
      bad.push(name + ': outside the screen, ' + left + '..' + right);
    } else if (!hit || !el.contains(hit)) {
      bad.push(name + ': covered by ' + (hit ? hit.tagName : 'nothing'));
    } else if (header && header.contains(el)) {
      const h = header.getBoundingClientRect();
      const inside = box.top >= h.top - 0.5 && box.bottom <= h.bottom + 0.5 && box.left >= h.left - 0.5
        && box.right <= h.right + 0.5;
      if (!inside) {
        bad.push(name + ': off the header');
      }
    }
  }
  window.scrollTo(0, 0);
  return bad;
}"""


def _alert_id(server) -> int:
    return server["store"].query("SELECT id FROM alerts WHERE key = 'bob-1'")[0]["id"]


def _screens(tmp_path) -> list[Path]:
    folders = [tmp_path / "screens"] + ([Path(SHOTS)] if SHOTS else [])
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
    return folders


def test_every_page_fits_a_phone(browser, server, tmp_path):
    page, fired = new_page(browser, server, viewport=PHONE)
    for url in PHONE_PAGES:
        page.goto(server["url"] + url.format(alert=_alert_id(server)))
        page.wait_for_load_state("load")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"], url
        assert page.evaluate(UNREACHABLE) == [], url
    # the navigation: every page and Log out, on the dark header, tappable
    for name in ("Overview", "Advocates", "Detractors", "Mentions", "Corrections"):
        page.click(f"header nav >> text={name}")
        page.wait_for_load_state("load")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"], name
    # the important parts of a mention are on screen: its text, stance and author
    page.goto(server["url"] + "/mentions?q=carol")
    row = page.locator("table.mentions tbody tr").first
    for part in ("td.text", "td.stance .pill", "td.who a"):
        box = row.locator(part).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], part
    page.click("header >> text=Log out")
    page.wait_for_url("**/login**")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(UNREACHABLE) == []
    assert fired == []


def test_screenshots_at_phone_and_desktop_width(browser, server, tmp_path):
    folders = _screens(tmp_path)
    for size in (PHONE, WIDE):
        page, _ = new_page(browser, server, viewport=size)
        for name, url in (("overview", "/overview?brand=Acme"), ("mentions", "/mentions")):
            page.goto(server["url"] + url)
            page.wait_for_load_state("load")
            if name == "overview":
                page.wait_for_function("document.querySelector('#chart-mentions').width > 0")
            assert page.evaluate("document.scrollingElement.scrollWidth") <= size["width"], (name, size)
            for folder in folders:
                page.screenshot(path=str(folder / f"{name}-{size['width']}.png"), full_page=True)
        page.context.close()
    assert (folders[0] / "mentions-390.png").stat().st_size > 0


def test_correction_form_cannot_save_a_default(browser, server):
    page, _ = new_page(browser, server, viewport=PHONE)
    store = server["store"]
    page.goto(server["url"] + "/mentions")
    # no label is chosen for any mention, whatever the model said or the stars show
    assert set(page.eval_on_selector_all("form.correct select", "els => els.map(e => e.value)")) == {""}
    tess = page.locator("table.mentions tbody tr", has_text="gets the job done")
    assert "★★★" in tess.inner_text() and "text model: promoter" in tess.inner_text()
    # the stance form offers the words of the badges
    options = tess.locator("form[data-field=advocacy] select option").all_inner_texts()
    assert options == ["choose…", "promoter", "passive", "detractor"]
    page.goto(server["url"] + "/mentions?q=erin")
    row = page.locator("table.mentions tbody tr").first
    assert "unclassified" in row.inner_text()
    mention = int(row.get_attribute("id")[1:])
    url = page.url
    row.locator("form[data-field=advocacy] button").click()  # Save without choosing: the browser refuses
    page.wait_for_timeout(200)
    assert page.url == url
    assert row.locator("form[data-field=advocacy] select").evaluate("e => e.validity.valueMissing")
    assert store.query("SELECT 1 FROM corrections WHERE mention_id = ?", [mention]) == []
    row.locator("form[data-field=advocacy] select").select_option(label="passive")
    with page.expect_navigation():
        row.locator("form[data-field=advocacy] button").click()
    saved = store.query("SELECT label FROM corrections WHERE mention_id = ?", [mention])
    assert [r["label"] for r in saved] == ["none"]
    row = page.locator(f"tr#m{mention}")
    assert "passive" in row.locator("td.stance").inner_text() and "corrected" in row.locator("td.stance").inner_text()
    assert row.locator("form[data-field=advocacy] select").evaluate("e => e.value") == ""


def test_alerts_link_to_their_mentions(browser, server):
    page, _ = new_page(browser, server, viewport=PHONE)
    page.goto(server["url"] + "/overview?brand=Acme")
    page.click("ul.alerts >> text=bob warns people off Acme")
    page.wait_for_url("**/alerts/**")
    assert "bob says detractor" in page.inner_text("table.mentions")
    assert page.locator("table.mentions form.correct").count() == 2  # one mention: stance and sentiment
