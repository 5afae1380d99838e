"""Source behaviour beyond the contract: cursors and paging, reach, token renewal,
cross-source story linking, `monitor preview`, `monitor backfill` and `monitor cursor`,
cursors that cannot be read, and `collect --once` whatever a run meets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.collect.hackernews import OVERLAP
from monitor.collect.mastodon import snowflake_for
from tests.fakes.sources import FixtureServer, Reply, fixture_bytes, fixture_json
from tests.test_source_contract import CASES, ENV, NOW, Harness, xml_reply


def harness(name, server, tmp_path, **settings):
    case = CASES[name]
    if settings:
        case = type(case)(**{**case.__dict__, "settings": {**case.settings, **settings}})
    return Harness(case, server, tmp_path)


def test_same_story_from_hn_and_reddit_is_linked_not_double_counted(tmp_path):
    with FixtureServer() as server:
        hn = harness("hackernews", server, tmp_path)
        hn.collect()
        (tmp_path / "reddit").mkdir()
        reddit = harness("reddit", server, tmp_path / "reddit")
        reddit.store = hn.store  # one database, two sources
        reddit.collect()
    rows = hn.store.query("SELECT id, source, canonical_url, duplicate_of FROM mentions ORDER BY id")
    story = [r for r in rows if r["source"] == "hackernews" and r["canonical_url"]]
    link_post = [r for r in rows if r["source"] == "reddit" and r["canonical_url"]]
    assert story[0]["canonical_url"] == link_post[0]["canonical_url"] == "https://acme.example.com/blog/series-b"
    assert link_post[0]["duplicate_of"] == story[0]["id"]
    assert sum(1 for r in rows if r["duplicate_of"] is None) == len(rows) - 1


def test_reddit_watches_comments_and_fetches_karma(tmp_path):
    with FixtureServer() as server:
        server.routes["/r/devops/comments"] = Reply(body=fixture_bytes("reddit/comments.json"))
        h = harness("reddit", server, tmp_path, subreddits=["devops"], search=False, watch=["comments"])
        stats = h.collect()
        assert stats.ok, stats.errors
        rows = h.store.query("SELECT m.kind, m.native_id, a.handle, a.reach, a.reach_kind FROM mentions m "
                             "LEFT JOIN authors a ON a.id = m.author_id ORDER BY m.id")
        assert [r["kind"] for r in rows] == ["comment", "comment"]
        assert rows[0]["native_id"] == "t1_lz0a1b2" and rows[0]["reach"] == 9120 and rows[0]["reach_kind"] == "karma"
        assert rows[1]["handle"] is None  # [deleted] authors are not people
        assert any(s.path == "/user/cli_nerd/about" for s in server.seen)
        token_requests = [s for s in server.seen if s.path == "/api/v1/access_token"]
        assert len(token_requests) == 1 and b"grant_type=client_credentials" in token_requests[0].body


def test_reddit_cursor_stops_at_items_already_seen(tmp_path):
    with FixtureServer() as server:
        h = harness("reddit", server, tmp_path)
        h.collect()
        cursor = json.loads(h.store.get_cursor(h.source.key, "search:acme"))
        newest = max(c["data"]["created_utc"] for c in fixture_json("reddit/search.json")["data"]["children"])
        assert cursor == {"after": None, "since": newest, "top": None}
        again = h.collect()
        assert again.fetched == 0  # everything is at or before the cursor


def test_bluesky_renews_an_expired_session_and_carries_on(tmp_path):
    calls = {"search": 0}

    def search(seen):
        calls["search"] += 1
        if calls["search"] == 1:
            return Reply(400, b'{"error": "ExpiredToken", "message": "Token has expired"}')
        assert seen.headers["Authorization"] == "Bearer renewed-access"
        return Reply(body=fixture_bytes("bluesky/search_posts.json"))

    with FixtureServer() as server:
        h = harness("bluesky", server, tmp_path)
        server.routes["/xrpc/app.bsky.feed.searchPosts"] = search
        server.routes["/xrpc/com.atproto.server.refreshSession"] = Reply(
            body=b'{"accessJwt": "renewed-access", "refreshJwt": "renewed-refresh", "did": "did:plc:x", "handle": "h"}')
        stats = h.collect()
        assert stats.ok, stats.errors
        assert stats.new == 3
        login = [s for s in server.seen if s.path.endswith("createSession")]
        assert json.loads(login[0].body) == {"identifier": "monitor.bsky.social", "password": ENV["BSKY_PW"]}
        reach = h.store.query("SELECT reach, reach_kind FROM authors WHERE handle = 'jane.bsky.social'")
        assert reach == [{"reach": 2817, "reach_kind": "followers"}]


def test_mastodon_walks_forward_with_min_id(tmp_path):
    with FixtureServer() as server:
        h = harness("mastodon", server, tmp_path)
        h.collect()
        first = server.seen[0].query["min_id"][0]
        assert int(first) == int(snowflake_for(datetime(2026, 11, 18, 12, 0, tzinfo=UTC)))
        h.collect()
        newest = max(s["id"] for s in fixture_json("mastodon/tag_timeline.json"))
        assert server.seen[-1].query["min_id"] == [newest]  # the newest status stored


def test_appstore_keeps_star_ratings_and_stops_at_the_last_review(tmp_path):
    with FixtureServer() as server:
        h = harness("appstore", server, tmp_path)
        h.collect()
        rows = h.store.query("SELECT native_id, rating, kind, matched_term FROM mentions ORDER BY id")
        assert [r["rating"] for r in rows] == [5, 1, 3]
        assert {r["kind"] for r in rows} == {"review"} and {r["matched_term"] for r in rows} == {"*"}
        assert json.loads(h.store.get_cursor(h.source.key, "1234567890:us")) == {"last_id": 11093456781}
        again = h.collect()  # the same page: its reviews known, read as unchanged (alive, not silent)
        assert again.new == 0 and again.fetched == 3 and again.skipped == 0


def _cli_config(tmp_path, server_url, sources):
    cfg = {"database": str(tmp_path / "monitor.db"),
           "http": {"allow_networks": ["127.0.0.1/32"], "per_host_interval": 0},
           "brands": [{"name": "Acme", "terms": {"include": ["acme"], "exclude": ["pricing"]}, "sources": sources}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_preview_shows_matches_with_their_term(tmp_path):
    with FixtureServer() as server:
        h = harness("hackernews", server, tmp_path)
        h.collect()
    h.store.close()
    path = _cli_config(tmp_path, "", [{"type": "demo"}])
    cfg = yaml.safe_load(path.read_text())
    cfg["brands"].append({"name": "Builds", "terms": {"include": ["CI", '"build caches"']}})
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    result = CliRunner().invoke(main, ["-c", str(path), "preview", "Builds", "--format", "json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    # the third item is a comment whose parent story says "build caches": its own text does not
    assert {x["term"] for x in lines} == {"CI"}
    assert "1 of 3 stored item(s) match" in result.output
    result = CliRunner().invoke(main, ["-c", str(path), "preview", "Acme"])
    assert result.exit_code == 0 and "3 of 3 stored item(s) match" in result.output


def test_backfill_walks_the_cursor_back(tmp_path):
    with FixtureServer() as server:
        server.routes["/api/v1/search_by_date"] = Reply(body=fixture_bytes("hackernews/search_acme.json"))
        path = _cli_config(tmp_path, server.url, [{"type": "hackernews", "base_url": f"{server.url}/api/v1"}])
        result = CliRunner().invoke(main, ["-c", str(path), "backfill", "hackernews", "--since", "2026-10-01"])
        assert result.exit_code == 0, result.output
        assert "Acme:hackernews: fetched 3, new 3" in result.output
        since = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp()) - OVERLAP  # queries reach below for late items
        assert server.seen[0].query["numericFilters"] == [f"created_at_i>{since}"]
        feed = _cli_config(tmp_path, server.url, [{"type": "feed", "urls": [f"{server.url}/feed"]}])
        result = CliRunner().invoke(main, ["-c", str(feed), "backfill", "feed", "--since", "30d"])
        assert result.exit_code == 0 and "cannot go back in time" in result.output


def test_now_is_fixed_for_the_contract():
    assert NOW.tzinfo is UTC


def test_no_secret_reaches_any_log_even_at_debug(tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    for name in ("reddit", "bluesky", "mastodon-search"):
        with FixtureServer() as server:
            (tmp_path / name).mkdir()
            h = harness(name, server, tmp_path / name)
            h.collect()
            server.routes[h.case.main] = Reply(401, b'{"error": "expired"}')
            h.collect()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Acme:reddit" in text  # the logs were captured
    for secret in ENV.values():
        assert secret not in text


def test_collect_once_records_health_and_alerts_on_refused_credentials(tmp_path):
    with FixtureServer() as server:
        server.routes["/api/v1/timelines/tag/acme"] = Reply(
            401, b'{"error": "This API requires an authenticated user"}')
        path = _cli_config(tmp_path, server.url, [{"type": "mastodon", "instance": server.url}])
        result = CliRunner().invoke(main, ["-c", str(path), "collect", "--once"])
        assert result.exit_code == 1 and "credentials refused" in result.output
        status = CliRunner().invoke(main, ["-c", str(path), "status", "--format", "json"])
        row = json.loads(status.output.splitlines()[0])
        assert row["state"] == "auth" and row["consecutive_failures"] == 1
    from monitor.store import Store

    alerts = Store(tmp_path / "monitor.db").query("SELECT rule, title FROM alerts")
    assert alerts == [{"rule": "source-health", "title": "source broken: Acme:mastodon (auth)"}]


def test_bluesky_cursor_trusts_the_server_clock_not_the_post(tmp_path):
    page = fixture_json("bluesky/search_posts.json")
    page["posts"][0]["record"]["createdAt"] = "2099-01-01T00:00:00.000Z"  # a client may claim any date
    page["posts"][0]["indexedAt"] = "2099-01-01T00:00:01.000Z"
    with FixtureServer() as server:
        h = harness("bluesky", server, tmp_path)
        server.routes["/xrpc/app.bsky.feed.searchPosts"] = Reply(body=json.dumps(page).encode())
        h.collect()
        since = json.loads(h.store.get_cursor(h.source.key, "acme"))["since"]
        assert since <= NOW.isoformat()


def test_reddit_search_feed_drops_the_submitted_by_footer(tmp_path):
    with FixtureServer() as server:
        h = harness("feed-reddit_search", server, tmp_path)
        h.collect()
        rows = h.store.query("SELECT source, native_id, text FROM mentions ORDER BY id")
        assert rows[0] == {"source": "reddit", "native_id": "t3_1gx9abc",
                           "text": "Our deploys through Acme have failed since 9am UTC. Status page says all green."}


def test_reddit_token_without_expires_in_gets_a_default_lifetime(tmp_path, caplog):
    """PRAW reads ``payload["expires_in"]``: without it every run failed as an unexpected
    KeyError with a traceback. The answer is mended (an hour) and a warning says so."""
    import logging

    token = {k: v for k, v in fixture_json("reddit/access_token.json").items() if k not in ("expires_in", "scope")}
    with FixtureServer() as server:
        h = harness("reddit", server, tmp_path)
        server.routes["/api/v1/access_token"] = Reply(body=json.dumps(token).encode())
        with caplog.at_level(logging.WARNING):
            stats = h.collect()
        assert stats.ok, stats.errors
        assert stats.new > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("no usable expires_in or scope; assuming a lifetime of 3600 s" in w for w in warnings), warnings
    assert not any(r.exc_info for r in caplog.records)


# ------------------------------------------------------------------------------ cursors that cannot be read

BAD_CURSORS = {
    "not json": "{not json",
    "not an object": "[1, 2]",
    "null": "null",
    "wrong types": '{"since": NaN, "min_id": "-1", "last_id": -5, "page": 0, "newest": 5, "top": "x", "after": 7}',
    "huge": '{"since": 1e400, "min_id": "' + "9" * 40 + '", "last_id": 1e30, "newest": "' + "9" * 100 + '"}',
}


DATED_CURSORS = {"hackernews", "reddit", "bluesky", "mastodon", "mastodon-search", "github"}


def _future_cursor(h, query):
    return h.source.cursor_since(query, NOW + timedelta(days=400))


@pytest.mark.parametrize(("name", "bad"), [(n, b) for n in sorted(CASES) for b in BAD_CURSORS]
                         + [(n, "in the future") for n in sorted(DATED_CURSORS)])
def test_an_unreadable_cursor_is_reported_and_reset_to_the_start(name, bad, tmp_path, caplog):
    with FixtureServer() as server:
        h = harness(name, server, tmp_path)
        queries = h.source.queries()
        cursors = {q: BAD_CURSORS[bad] if bad in BAD_CURSORS else _future_cursor(h, q) for q in queries}
        for q, c in cursors.items():
            h.store.set_cursor(h.source.key, q, c)
        stats = h.collect()
        assert f"{h.source.key}: unreadable cursor" in "; ".join(stats.errors)
        assert "reset to the start of query" in caplog.text
        assert stats.new == h.case.expected  # collected from the start, as on a first run
        run = h.store.recent_runs(h.source.key)[0]
        assert run["ok"] == 0 and "unreadable cursor" in run["error"]  # what `monitor status` shows
        again = h.collect()
        assert again.ok, again.errors  # the stored cursor is sound again
        for q in queries:
            assert h.store.get_cursor(h.source.key, q) != cursors[q]


def test_cursor_show_and_reset(tmp_path):
    with FixtureServer() as server:
        server.routes["/api/v1/search_by_date"] = Reply(body=fixture_bytes("hackernews/search_acme.json"))
        path = _cli_config(tmp_path, server.url, [{"type": "hackernews", "base_url": f"{server.url}/api/v1",
                                                   "fetch_karma": False}])
        assert CliRunner().invoke(main, ["-c", str(path), "collect", "--once"]).exit_code == 0
        shown = CliRunner().invoke(main, ["-c", str(path), "cursor", "show", "hackernews"])
        assert shown.exit_code == 0 and shown.output.startswith("Acme:hackernews 'acme': {")
        result = CliRunner().invoke(main, ["-c", str(path), "cursor", "reset", "Acme:hackernews"])
        assert result.exit_code == 0, result.output
        assert "Acme:hackernews 'acme': cursor reset" in result.output
        from monitor.store import Store

        assert Store(tmp_path / "monitor.db").get_cursor("Acme:hackernews", "acme") is None
        shown = CliRunner().invoke(main, ["-c", str(path), "cursor", "show", "hackernews"])
        assert "(none: starts afresh)" in shown.output
        wrong = CliRunner().invoke(main, ["-c", str(path), "cursor", "reset", "hackernews", "--query", "nope"])
        assert wrong.exit_code == 1 and "has no query 'nope'" in wrong.output


def test_collect_once_with_values_the_store_cannot_hold_prints_a_line_not_a_traceback(tmp_path):
    statuses = fixture_json("mastodon/tag_timeline.json")
    statuses[0]["account"]["followers_count"] = 2**63
    statuses[1]["language"] = "\udc00"
    with FixtureServer() as server:
        server.routes["/api/v1/timelines/tag/acme"] = Reply(body=json.dumps(statuses).encode())
        path = _cli_config(tmp_path, server.url, [{"type": "mastodon", "instance": server.url}])
        result = CliRunner().invoke(main, ["-c", str(path), "collect", "--once"])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Acme:mastodon: fetched 3, new 3, skipped 0" in result.output
    status = CliRunner().invoke(main, ["-c", str(path), "status", "--format", "json"])
    assert json.loads(status.output.splitlines()[0])["state"] == "ok"  # not never-run


def test_collect_once_when_the_run_cannot_be_recorded(tmp_path, monkeypatch):
    import sqlite3

    from monitor.store import Store

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "record_run", broken)
    with FixtureServer() as server:
        server.routes["/api/v1/timelines/tag/acme"] = Reply(body=fixture_bytes("mastodon/tag_timeline.json"))
        path = _cli_config(tmp_path, server.url, [{"type": "mastodon", "instance": server.url}])
        result = CliRunner().invoke(main, ["-c", str(path), "collect", "--once"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Acme:mastodon: failed, the run could not be recorded: OperationalError" in result.output
    assert "Traceback" not in result.output


def _feed_rows(tmp_path, fixture):
    with FixtureServer() as server:
        h = harness("feed-generic", server, tmp_path)
        server.routes["/feed"] = xml_reply(fixture)
        h.collect()
        return h.store.query("SELECT url, canonical_url, title, text FROM mentions ORDER BY id")


def test_news_feed_item_is_stored_as_its_article_not_its_image_caption(tmp_path):
    # HuffPost: feedparser files <media:description> (the caption) under content, ahead of the description
    [row] = _feed_rows(tmp_path, "feeds/huffpost_rss.xml")
    assert row["text"].startswith("Acme is recalling about 40,000 space heaters")
    assert "not aware of any injuries." in row["text"] and "San Francisco" not in row["text"]


def test_feedburner_items_link_to_the_article_not_feedproxy(tmp_path):
    [row] = _feed_rows(tmp_path, "feeds/techcrunch_feedburner.xml")
    assert row["canonical_url"] == "https://techcrunch.com/2026/12/02/acme-raises-40m-series-b"
    assert "feedproxy" not in row["url"]
    assert row["text"].endswith("expand into Europe.")  # content:encoded, longer than the description


def test_a_cross_post_is_the_copy_of_the_older_post_not_the_other_way_round(tmp_path):
    # Reddit lists newest first: the cross-post (an hour later, another subreddit) comes before its original
    page = fixture_json("reddit/search.json")
    original = next(c for c in page["data"]["children"] if c["data"]["name"] == "t3_1gx8def")
    cross = json.loads(json.dumps(original))
    cross["data"].update(name="t3_1gxacro", id="1gxacro", subreddit="startups",
                         created_utc=original["data"]["created_utc"] + 3600,
                         permalink="/r/startups/comments/1gxacro/acme_raises_series_b/",
                         crosspost_parent="t3_1gx8def")
    page["data"]["children"].insert(0, cross)
    with FixtureServer() as server:
        h = harness("reddit", server, tmp_path)
        server.routes["/r/all/search"] = Reply(body=json.dumps(page).encode())
        h.collect()
    rows = {r["native_id"]: r for r in h.store.query("SELECT id, native_id, duplicate_of FROM mentions")}
    assert rows["t3_1gx8def"]["duplicate_of"] is None
    assert rows["t3_1gxacro"]["duplicate_of"] == rows["t3_1gx8def"]["id"]


def test_bluesky_links_are_stored_in_full_not_as_their_shortened_display_text(tmp_path):
    # the app shows a link cut short; the full URI is in the post's link facet, at UTF-8 byte offsets
    shown = "acme.example.com/blog/2026/11/postm..."
    text = f"\U0001f6a8 Acme\u2019s outage postmortem: {shown} \u2014 and the status page: here"
    raw = text.encode()
    facet_at = raw.index(shown.encode())
    here = raw.rindex(b"here")
    page = fixture_json("bluesky/search_posts.json")
    page["posts"][0]["record"].update(text=text, facets=[
        {"$type": "app.bsky.richtext.facet",
         "features": [{"$type": "app.bsky.richtext.facet#link",
                       "uri": "https://acme.example.com/blog/2026/11/postmortem-nov-19-outage"}],
         "index": {"byteEnd": facet_at + len(shown.encode()), "byteStart": facet_at}},
        {"$type": "app.bsky.richtext.facet",
         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://status.acme.example.com/"}],
         "index": {"byteEnd": here + 4, "byteStart": here}},
        {"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://evil.example/"}],
         "index": {"byteEnd": 10_000, "byteStart": 3}},  # outside the text: ignored
    ])
    with FixtureServer() as server:
        h = harness("bluesky", server, tmp_path)
        server.routes["/xrpc/app.bsky.feed.searchPosts"] = Reply(body=json.dumps(page).encode())
        h.collect()
    row = h.store.query("SELECT text, extra FROM mentions WHERE native_id = ?", [page["posts"][0]["uri"]])[0]
    assert row["text"] == ("\U0001f6a8 Acme\u2019s outage postmortem: https://acme.example.com/blog/2026/11/"
                           "postmortem-nov-19-outage \u2014 and the status page: here")
    assert json.loads(row["extra"])["links"] == ["https://acme.example.com/blog/2026/11/postmortem-nov-19-outage",
                                                 "https://status.acme.example.com/"]


def test_a_short_post_a_source_declares_french_is_not_judged_by_the_english_model(tmp_path):
    from monitor import pipeline
    from tests.classify.test_classify_engine import ToyEngine

    timeline = fixture_json("mastodon/tag_timeline.json")
    timeline[0].update(content='<p>Super produit <a href="https://mastodon.social/tags/acme" class="mention hashtag" '
                               'rel="tag">#<span>acme</span></a>, merci !</p>', language="fr")
    with FixtureServer() as server:
        h = harness("mastodon", server, tmp_path)
        server.routes["/api/v1/timelines/tag/acme"] = Reply(body=json.dumps(timeline).encode())
        h.collect()
    pipeline.classify_pending(h.store, ToyEngine())
    rows = h.store.query("SELECT m.native_id, m.lang, c.status FROM mentions m JOIN classifications c "
                         "ON c.mention_id = m.id ORDER BY m.id")
    french = timeline[0]["uri"]
    assert [(r["lang"], r["status"]) for r in rows if r["native_id"] == french] == [("fr", "unsupported_language")]
    assert {r["status"] for r in rows if r["native_id"] != french} == {"ok"}


def test_a_feed_keeps_the_language_it_declares(tmp_path):
    body = fixture_bytes("feeds/huffpost_rss.xml").replace(b"<language>en-us</language>",
                                                           b"<language>fr-FR</language>")
    with FixtureServer() as server:
        h = harness("feed-generic", server, tmp_path)
        server.routes["/feed"] = Reply(body=body, content_type="application/rss+xml")
        h.collect()
    assert [r["lang"] for r in h.store.query("SELECT lang FROM mentions")] == ["fr-FR"]


def test_an_unchanged_feed_is_asked_conditionally_and_304_is_nothing_new_not_silence(tmp_path):
    etag, modified = 'W/"5f1c-1733150000"', "Wed, 02 Dec 2026 16:00:00 GMT"

    def feed(seen):
        asked = {k.lower(): v for k, v in seen.headers.items()}
        if asked.get("if-none-match") == etag and asked.get("if-modified-since") == modified:
            return Reply(304, b"", headers={"ETag": etag})
        return Reply(body=fixture_bytes("feeds/techcrunch_feedburner.xml"), content_type="application/rss+xml",
                     headers={"ETag": etag, "Last-Modified": modified})

    with FixtureServer() as server:
        h = harness("feed-generic", server, tmp_path)
        server.routes["/feed"] = feed
        first = h.collect()
        assert (first.ok, first.fetched, first.new) == (True, 1, 1)
        runs = [h.collect() for _ in range(8)]
        assert all(r.ok and r.fetched == 1 and r.new == 0 and not r.errors for r in runs)
        last = [s for s in server.seen if s.path.startswith("/feed")][-1]
        assert {k.lower(): v for k, v in last.headers.items()}["if-none-match"] == etag
        assert h.health().state == "ok"
    assert len(h.stored()) == 1
