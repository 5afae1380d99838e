"""Reddit drift: a /comments listing whose comments carry no ``permalink``, and markdown text
that the HTML cleaner used to eat (everything in ``<...>``)."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

from monitor.collect.reddit import RedditSource, markdown_text
from tests.fakes.sources import FixtureServer, Reply, fixture_bytes, fixture_json
from tests.test_source_contract import CASES, NOW, Harness

PRAW_CONFIG = ("Printing vars(reddit) gives {'_core': ..., 'config': <praw.Config object at 0x7f3a2c1e5d90>, "
               "'_objector': <praw.objector.Objector object at 0x7f3a2c1e6a10>} and Acme's token is missing")


def _harness(server, tmp_path, **settings):
    case = CASES["reddit"]
    case = type(case)(**{**case.__dict__, "settings": {**case.settings, **settings}})
    return Harness(case, server, tmp_path)


def _source(listing: dict) -> RedditSource:
    source = RedditSource.__new__(RedditSource)
    source.brand, source.key, source.now = "Acme", "Acme:reddit", (lambda: NOW)
    source.settings = SimpleNamespace(subreddits=["devops"], time_filter="week", fetch_karma=False)
    source._get = lambda path, params: listing
    return source


def test_comments_without_permalink_are_all_stored_with_a_derived_url(tmp_path):
    with FixtureServer() as server:
        server.routes["/r/devops/comments"] = Reply(body=fixture_bytes("reddit/comments_no_permalink.json"))
        h = _harness(server, tmp_path, subreddits=["devops"], search=False, watch=["comments"])
        stats = h.collect()
        assert stats.ok, stats.errors
        assert stats.skipped == 0
        rows = h.store.query("SELECT native_id, url FROM mentions ORDER BY id")
    assert [(r["native_id"], r["url"]) for r in rows] == [
        ("t1_lz0a1b2", "https://www.reddit.com/r/devops/comments/1gx5zzz/_/lz0a1b2/"),
        ("t1_lz0a1b1", "https://www.reddit.com/r/devops/comments/1gx5zzz/_/lz0a1b1/"),
    ]


def test_a_comment_whose_url_cannot_be_derived_is_kept_without_one():
    listing = fixture_json("reddit/comments_no_permalink.json")
    children = listing["data"]["children"]
    del children[0]["data"]["link_id"]
    broken = copy.deepcopy(children[1])
    broken["data"].update(name="t1_lz0a1b0", id="lz0a1b0", link_id="not-a-fullname")
    children.append(broken)
    result = _source(listing).fetch("comments", None)
    assert result.skipped == 0
    assert [(m.native_id, m.url) for m in result.mentions] == [
        ("t1_lz0a1b2", None),
        ("t1_lz0a1b1", "https://www.reddit.com/r/devops/comments/1gx5zzz/_/lz0a1b1/"),
        ("t1_lz0a1b0", None),
    ]


def test_angle_brackets_in_reddit_text_survive_as_typed(tmp_path):
    with FixtureServer() as server:
        h = _harness(server, tmp_path)
        data = h.main_json()
        data["data"]["children"][0]["data"]["selftext"] = PRAW_CONFIG
        h.replace_main_body(json.dumps(data).encode())
        stats = h.collect()
        assert stats.ok, stats.errors
        texts = [r["text"] for r in h.stored()]
    assert PRAW_CONFIG in texts
    assert "'config': <praw.Config object at 0x7f3a2c1e5d90>," in PRAW_CONFIG


def test_a_long_code_block_keeps_its_length():
    lines = ["```python"]
    for i in range(200):  # ~9,000 characters of code full of <...>, indentation kept
        lines.append(f"    if cfg[{i}] is not None:  # <praw.Config object at 0x7f{i:08x}>")
        lines.append(f"        out.append('<div class=\"row\">' + str(cfg[{i}]) + '</div>')")
    lines.append("```")
    block = "\n".join(lines)
    assert len(block) > 9_000
    text = f"Acme's client breaks here:\n\n{block}\n\nAny idea?"
    assert markdown_text(text) == text
    # whitespace normalisation, the only change: blanks at line ends, runs of 3+ newlines, CRLF
    assert markdown_text(text.replace("\n", "  \r\n")) == text
    indented = "Acme:\n\n" + "\n".join("    " + line for line in lines[1:-1])
    assert markdown_text(indented) == indented


def test_markdown_text_drops_html_but_not_other_angle_brackets():
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>Acme <b>rocks</b> &amp; rolls'
    assert markdown_text(payload) == "Acme rocks & rolls"
    assert markdown_text("Use `Vec<String>` or Vec<T>; see <https://acme.example.com>") == (
        "Use `Vec<String>` or Vec<T>; see <https://acme.example.com>")
    assert markdown_text("&lt;script&gt;alert(1)&lt;/script&gt; Acme") == "Acme"
    assert markdown_text("a &lt; b and <your-token> here") == "a < b and <your-token> here"
    assert markdown_text("[deleted]") == "[deleted]" and markdown_text(None) == ""
