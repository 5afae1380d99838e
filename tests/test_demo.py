"""The demo: sample mentions with enough weeks and mentions for the advocacy index, several
sources, recurring authors and no repeated texts; its database in the user's data folder;
``monitor demo --serve``, the data, a user and the web page in one command."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from monitor.cli_demo import demo_database
from monitor.collect.demo import load_samples
from monitor.config import user_data_dir

from .conftest import ROOT

WEEK = 168  # hours


def posts_hours() -> list[float]:
    return sorted(s["hours_ago"] for s in load_samples() if s.get("kind") != "review")


def test_samples_are_complete_and_unique():
    samples = load_samples()
    assert len(samples) >= 350
    for s in samples:
        assert s["source"] and s["author"] and s["text"].strip() and s["hours_ago"] >= 0, s
        if s.get("kind") == "review":
            assert s["rating"] in {1, 2, 3, 4, 5}, s
        if s.get("reach") is not None:
            assert s["reach_kind"] in {"karma", "followers"}, s
    texts = Counter(" ".join(s["text"].lower().split()) for s in samples)
    assert texts.most_common(1)[0][1] == 1, texts.most_common(3)


def test_every_week_of_the_samples_holds_enough_posts_for_the_index():
    """The index needs 30 classified mentions a week: every 7-day span of the samples (where
    the calendar weeks fall depends on the day the demo runs) holds at least 35 posts."""
    hours = posts_hours()
    assert hours[-1] >= 8 * WEEK  # about nine weeks
    spans = [sum(1 for h in hours if start <= h < start + WEEK) for start in range(0, int(hours[-1]) - WEEK + 1)]
    assert min(spans) >= 35


def test_samples_mix_sources_stars_and_recurring_authors():
    samples = load_samples()
    sources = Counter(s["source"] for s in samples)
    assert set(sources) >= {"hackernews", "reddit", "appstore", "mastodon", "bluesky", "google_news"}
    assert set(Counter(s["rating"] for s in samples if s.get("kind") == "review")) == {1, 2, 3, 4, 5}
    authors = Counter((s["source"], s["author"]) for s in samples)
    assert sum(n >= 5 for n in authors.values()) >= 10  # regulars, advocates and detractors over the weeks
    weeks = {a: {int(s["hours_ago"] // WEEK) for s in samples if (s["source"], s["author"]) == a}
             for a, n in authors.items() if n >= 5}
    assert sum(len(w) >= 5 for w in weeks.values()) >= 5  # posting over many weeks, not in one burst
    assert sum("bigco" in s["text"].lower() for s in samples) >= 20  # the competitor the demo also tracks
    assert any("@acme" in s["text"].lower() for s in samples)  # the brand's own handle
    assert sum(not s["text"].isascii() for s in samples) >= 8  # a few posts in other languages
    reach = {}
    for s in samples:  # one author, one reach
        if s.get("reach") is not None:
            assert reach.setdefault((s["source"], s["author"]), s["reach"]) == s["reach"], s


def test_the_demo_database_stays_in_the_users_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert demo_database() == tmp_path / "data" / "monitor" / "demo.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # not absolute: ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "monitor"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert demo_database() == tmp_path / "home" / ".local" / "share" / "monitor" / "demo.db"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_demo_serve_shows_acme_with_its_index_to_the_printed_user(tmp_path):
    """`monitor demo --serve` in an empty folder: data, a user and the page in one command."""
    port, out = free_port(), tmp_path / "demo.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--serve", "--port", str(port),
                                 "--database", str(tmp_path / "demo.db")], cwd=tmp_path, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (found := re.search(r"The web page: (\S+)\nLog in as user '(\w+)', password (\S+)", out.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        url, user, password = found.groups()
        assert url == f"http://127.0.0.1:{port}/overview?brand=Acme"
        with httpx.Client(follow_redirects=True, timeout=10) as web:
            while True:  # the server starts right after the line
                try:
                    page = web.get(url)
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
                    time.sleep(0.2)
            assert page.url.path == "/login"
            csrf = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
            nxt = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
            overview = web.post(f"http://127.0.0.1:{port}/login",
                                data={"username": user, "password": password, "csrf": csrf, "next": nxt})
            # the insight pages on the demo: themes stored by `monitor demo` (ids), share of voice, the report
            topics_page = web.get(f"http://127.0.0.1:{port}/topics?brand=Acme&days=90")
            assert topics_page.status_code == 200 and "chart-topics" in topics_page.text
            assert len(re.findall(r'<tr id="theme-\d+">', topics_page.text)) >= 3
            assert 'id="topics-unstored"' not in topics_page.text
            compare = web.get(f"http://127.0.0.1:{port}/compare?days=90")
            assert compare.status_code == 200 and "chart-compare" in compare.text and "<b>Acme</b>" in compare.text
            printed = web.get(f"http://127.0.0.1:{port}/report?brand=Acme")
            assert printed.status_code == 200 and 'id="report-notable"' in printed.text
        assert overview.status_code == 200 and str(overview.url) == url
        assert "<h1>Acme</h1>" in overview.text
        series = json.loads(re.search(r'id="overview-data">(.*?)</script>', overview.text, re.S).group(1))
        weekly = series["index"]["text:relationship"]
        assert sum(v is not None for v in weekly) >= 8, weekly  # a number for every full week of the samples
        assert sum(series["mentions"]) == 448
        logged = out.read_text()
        assert logged.count(password) == 1  # printed once, never logged
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, out.read_text()[-3000:]
    assert Path(tmp_path / "demo.db").exists() and not (tmp_path / "data").exists()


def test_the_long_form_validation_labels_cover_the_demo_mentions():
    """models/demo_eval/labels.csv: one guideline label per demo mention and brand it names."""
    import csv
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    texts = [json.loads(line)["text"] for line in
             (root / "monitor" / "demo" / "mentions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    with (root / "models" / "demo_eval" / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["label"] for r in rows} == {"promoter", "detractor", "none"}
    keys = [(int(r["line"]), r["brand"]) for r in rows]
    assert len(keys) == len(set(keys))
    expected = {(i, b) for i, t in enumerate(texts)
                for b in ([b for b in ("Acme", "BigCo") if b.lower() in t.lower()] or ["Acme"])}
    assert set(keys) == expected
