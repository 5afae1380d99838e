"""The command line behaves the same way everywhere: -c/--config before or after any
command, brands in any case, sources by key, name or type, unclassified mentions never
counted as neutral, failures in the exit code, tables with headers, hints on an empty
database, usage errors that show what to type."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import pipeline
from monitor.classify.labels import empty_result
from monitor.cli import main
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store
from tests.web_data import seed

from .conftest import ROOT, KeywordClassifier, write_config
from .fakes.sources import FixtureServer, Reply

CONFIG = """\
database: monitor.db
brands:
  - name: Acme
    terms: {include: [acme]}
    sources:
      - type: demo
      - {type: hackernews, name: hn}
  - name: BigCo
    terms: {include: [bigco]}
    sources:
      - type: demo
advocates:
  index_min_sample: 2
  recency_half_life: 3650d
"""


def invoke(*args: str, **kw):
    return CliRunner().invoke(main, list(args), **kw)


def json_rows(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def cfg(tmp_path) -> str:
    """Mentions of Acme and BigCo from their demo sources (several platforms) and Acme's HN
    source; one German mention the model did not judge (unsupported language)."""
    path = write_config(tmp_path / "config.yaml", CONFIG)
    store = Store(tmp_path / "monitor.db")
    now = datetime.now(UTC)
    rows = [  # key, platform, id, text, hours ago
        ("Acme:demo", "reddit", "r1", "I recommend acme", 1),
        ("Acme:demo", "hackernews", "h1", "acme is terrible, avoid", 2),
        ("Acme:demo", "mastodon", "m1", "Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich.", 3),
        ("Acme:hn", "hackernews", "h2", "acme release notes", 4),
        ("BigCo:demo", "reddit", "r2", "bigco is terrible, avoid", 5),
    ]
    for key, platform, nid, text, hours in rows:
        brand = key.split(":")[0]
        m = Mention(source=platform, native_id=nid, brand=brand, text=text, created_at=now - timedelta(hours=hours),
                    author=Author(platform, f"user_{nid}"))
        store.save_batch(key, brand.lower(), FetchResult([m], None))
    pipeline.classify_pending(store, KeywordClassifier())
    german = store.query("SELECT id FROM mentions WHERE native_id = 'm1'")[0]["id"]
    store.save_classifications([(german, empty_result("keyword-fake@1", "unsupported_language", lang="de"))])
    store.close()
    return str(path)


def texts(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["text"] for r in json_rows(result)]


# ------------------------------------------------------------------------- -c/--config


@pytest.mark.parametrize("command", [
    ["check"],
    ["mentions", "--format", "json"],
    ["status", "--format", "json"],
    ["advocates", "--format", "json"],
    ["advocates", "index", "--format", "json"],
    ["users", "list"],
    ["cursor", "show", "Acme:hn"],
    ["alerts", "status"],
])
def test_config_is_accepted_before_and_after_the_command(cfg, tmp_path, command):
    before = invoke("-c", cfg, *command)
    assert before.exit_code == 0, before.output
    after = invoke(*command, "-c", cfg)
    assert after.exit_code == 0, after.output
    assert after.stdout == before.stdout
    # a sub-command's --config wins over the group's
    other = write_config(tmp_path / "other.yaml", "database: other.db\nbrands:\n  - name: Zed\n"
                                                  "    terms: {include: [zed]}\n")
    assert invoke("-c", str(other), *command[:1], "--config", cfg, *command[1:]).stdout == before.stdout


def test_config_after_the_command_is_the_one_read(cfg, tmp_path):
    result = invoke("check", "-c", cfg, catch_exceptions=False)
    assert f"{cfg}: OK: 2 brand(s), 3 source job(s)" in result.output
    missing = invoke("mentions", "-c", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "nope.yaml" in missing.output


# ---------------------------------------------------------------------- --brand, --source


def test_brand_filters_ignore_case(cfg):
    assert texts(invoke("mentions", "-c", cfg, "--format", "json", "--brand", "bigco")) == ["bigco is terrible, avoid"]
    assert len(texts(invoke("mentions", "-c", cfg, "--format", "json", "--brand", "ACME"))) == 4
    r = invoke("advocates", "-c", cfg, "--format", "json", "--detractors", "--brand", "bigco")
    assert r.exit_code == 0 and {row["brand"] for row in json_rows(r)} == {"BigCo"}
    r = invoke("advocates", "index", "-c", cfg, "--format", "json", "--brand", "acme")
    assert r.exit_code == 0 and json_rows(r) and {row["brand"] for row in json_rows(r)} == {"Acme"}
    r = invoke("preview", "-c", cfg, "acme")
    assert r.exit_code == 0 and "Acme: include ['acme']" in r.output


@pytest.mark.parametrize("command", [["mentions"], ["advocates"], ["advocates", "index"]])
def test_an_unknown_brand_is_a_usage_error_listing_the_brands(cfg, command):
    r = invoke(*command, "-c", cfg, "--brand", "Globex")
    assert r.exit_code == 2
    assert "no brand 'Globex'" in r.output and "Acme, BigCo" in r.output


@pytest.mark.parametrize(("value", "expected"), [
    ("demo", {"I recommend acme", "acme is terrible, avoid", "bigco is terrible, avoid",
              "Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich."}),  # every brand's source named demo
    ("DEMO", {"I recommend acme", "acme is terrible, avoid", "bigco is terrible, avoid",
              "Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich."}),
    ("Acme:demo", {"I recommend acme", "acme is terrible, avoid",
                   "Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich."}),
    ("acme:DEMO", {"I recommend acme", "acme is terrible, avoid",
                   "Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich."}),
    ("hn", {"acme release notes"}),  # a source's name
    ("reddit", {"I recommend acme", "bigco is terrible, avoid"}),  # a platform
    ("Hackernews", {"acme is terrible, avoid", "acme release notes"}),
])
def test_source_filters_take_a_key_a_name_or_a_type(cfg, value, expected):
    assert set(texts(invoke("mentions", "-c", cfg, "--format", "json", "--source", value))) == expected


def test_source_and_brand_together(cfg):
    assert texts(invoke("mentions", "-c", cfg, "--format", "json", "--source", "demo", "--brand", "bigco")) == [
        "bigco is terrible, avoid"]
    r = invoke("mentions", "-c", cfg, "--source", "hn", "--brand", "BigCo")
    assert r.exit_code == 2 and "no source 'hn' for brand BigCo" in r.output


def test_an_unknown_source_is_a_usage_error_listing_the_sources(cfg):
    r = invoke("mentions", "-c", cfg, "--source", "twitter")
    assert r.exit_code == 2
    assert "no source 'twitter'" in r.output
    for known in ("Acme:demo", "Acme:hn", "BigCo:demo", "hackernews", "reddit"):
        assert known in r.output


def test_an_ambiguous_source_is_a_usage_error_listing_the_matches(cfg):
    # an author belongs to one platform: the demo source's authors come from several
    r = invoke("advocates", "-c", cfg, "--source", "Acme:demo")
    assert r.exit_code == 2
    assert "several platforms (hackernews, mastodon, reddit)" in r.output
    r = invoke("advocates", "-c", cfg, "--source", "HN", "--detractors", "--format", "json")
    assert r.exit_code == 0 and {row["source"] for row in json_rows(r)} == {"hackernews"}
    # preview reads one source's terms
    two = write_config(Path(cfg).parent / "two.yaml", CONFIG.replace(
        "      - {type: hackernews, name: hn}",
        "      - {type: hackernews, name: hn}\n      - {type: hackernews, name: hn2, terms: {include: [acme2]}}"))
    r = invoke("preview", "-c", str(two), "acme", "--source", "hackernews")
    assert r.exit_code == 2 and "matches several of Acme's sources (Acme:hn, Acme:hn2)" in r.output


# ---------------------------------------------------------------------- unclassified


def test_an_unclassified_mention_matches_no_sentiment(cfg):
    neutral = texts(invoke("mentions", "-c", cfg, "--format", "json", "--sentiment", "neutral"))
    assert neutral == ["acme release notes"]
    assert "Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich." not in texts(
        invoke("mentions", "-c", cfg, "--format", "json", "--advocacy", "none"))
    r = invoke("mentions", "-c", cfg, "--format", "json", "--sentiment", "unclassified")
    rows = json_rows(r)
    assert [x["text"] for x in rows] == ["Acme-Dienst ist heute wieder ausgefallen. Sehr ärgerlich."]
    assert rows[0]["sentiment"] is None and rows[0]["advocacy"] is None
    assert rows[0]["status"] == "unsupported_language"
    table = invoke("mentions", "-c", cfg, "--sentiment", "unclassified").output
    assert "unclassified (de)" in table and "neutral" not in table


# ---------------------------------------------------------------------- tables and hints


def test_mentions_on_an_empty_database_prints_a_hint(tmp_path):
    cfg = write_config(tmp_path / "config.yaml", CONFIG)
    r = invoke("mentions", "-c", str(cfg))
    assert r.exit_code == 0
    assert "No mentions in" in r.output and "monitor collect --once" in r.output and "monitor demo" in r.output
    assert "┏" not in r.output  # no empty table
    assert invoke("mentions", "-c", str(cfg), "--format", "json").stdout == ""  # machine formats stay clean


def test_the_advocacy_index_table_has_headers(cfg):
    assert invoke("advocates", "refresh", "-c", cfg).exit_code == 0
    r = invoke("advocates", "index", "-c", cfg)
    assert r.exit_code == 0, r.output
    header = next(line for line in r.output.splitlines() if "brand" in line)
    for col in ("brand", "week", "signal", "basis", "index", "n", "pro/pas/det"):
        assert re.search(rf"\b{re.escape(col)}\b", header), col
    by_source = invoke("advocates", "index", "-c", cfg, "--by", "source").output
    assert re.search(r"brand\s+\S\s+source\s", by_source)


# ---------------------------------------------------------------------- errors and exit codes


def seeded(tmp_path) -> str:
    (tmp_path / "config.yaml").write_text(
        "database: m.db\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n")
    seed(Store(tmp_path / "m.db"))
    return str(tmp_path / "config.yaml")


@pytest.mark.parametrize("args", [["alice", "demo:dave"], ["demo:alice", "dave"], ["demo:", "demo:dave"],
                                  [":alice", "demo:dave"]])
def test_link_without_source_handle_is_a_usage_error_with_an_example(tmp_path, args):
    cfg = seeded(tmp_path)
    r = invoke("advocates", "link", "-c", cfg, *args)
    assert r.exit_code == 2
    assert "is not SOURCE:HANDLE" in r.output and "e.g. monitor advocates link hackernews:alice" in r.output
    assert "no author ''" not in r.output


def test_users_add_replace_keeps_a_disabled_user_disabled_and_enable_lets_them_in(tmp_path):
    cfg = seeded(tmp_path)
    r = invoke("users", "add", "-c", cfg, "maria", "--password-stdin", input="a long enough password\n")
    assert r.exit_code == 0
    assert invoke("users", "disable", "-c", cfg, "maria").exit_code == 0
    r = invoke("users", "add", "-c", cfg, "maria", "--replace", "--password-stdin", input="a new long password\n")
    assert r.exit_code == 0 and "still disabled" in r.output and "monitor users enable maria" in r.output
    assert Store(tmp_path / "m.db").accounts.get_user("maria") is None  # cannot log in
    assert "disabled" in invoke("users", "list", "-c", cfg).output
    r = invoke("users", "enable", "-c", cfg, "maria")
    assert r.exit_code == 0 and "enabled" in r.output
    assert Store(tmp_path / "m.db").accounts.get_user("maria") is not None
    assert "disabled" not in invoke("users", "list", "-c", cfg).output
    assert invoke("users", "enable", "-c", cfg, "nobody").exit_code == 1
    r = invoke("users", "add", "-c", cfg, "maria", "--replace", "--password-stdin", input="yet another password\n")
    assert "user 'maria' updated" in r.output and "disabled" not in r.output


@pytest.fixture
def refusing_server():
    """An Algolia stand-in that refuses every request (HTTP 400: no retries)."""
    server = FixtureServer()
    server.routes["/api/v1/*"] = Reply(400, b'{"message": "refused", "status": 400}')
    with server:
        yield server


def test_backfill_exits_non_zero_with_a_summary_when_every_request_failed(tmp_path, refusing_server):
    cfg = write_config(tmp_path / "config.yaml", f"""\
        database: monitor.db
        http: {{allow_networks: [127.0.0.1/32], per_host_interval: 0.01}}
        brands:
          - name: Acme
            terms: {{include: [acme]}}
            sources:
              - {{type: hackernews, base_url: "{refusing_server.url}/api/v1", fetch_karma: false}}
        """)
    r = invoke("backfill", "-c", str(cfg), "hackernews", "--since", "3d")
    assert r.exit_code == 1, r.output
    assert "backfill: 1 source(s), fetched 0, new 0; failed: Acme:hackernews" in r.output
    assert refusing_server.seen  # it did try


# ---------------------------------------------------------------------- the daemon's first minute


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_text(path: Path, needle: str, proc: subprocess.Popen, limit: float = 120.0) -> str:
    """Poll the log until it shows ``needle`` (a deadline for a hung test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {needle!r}:\n{text[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {needle!r}")


def start(tmp_path: Path, cfg: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    err = tmp_path / f"{args[0]}.err"
    with err.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(cfg), *args], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=fh)
    return proc, err


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("did not stop") from None


@pytest.mark.slow
def test_the_daemons_first_minute_says_what_matters(tmp_path):
    port = closed_port()
    cfg = write_config(tmp_path / "config.yaml", f"""\
        database: monitor.db
        http: {{allow_networks: [127.0.0.1/32], per_host_interval: 0.01}}
        brands:
          - name: Acme
            terms: {{include: [acme]}}
            sources:
              - {{type: hackernews, base_url: "http://127.0.0.1:{port}/api/v1", every: 10m}}
        """)
    proc, err = start(tmp_path, cfg, "collect")
    try:
        log = wait_for_text(err, "monitor demo", proc)
    finally:
        assert stop(proc) == 0
    log = err.read_text(errors="replace")
    assert "apscheduler" not in log  # "Added job", "Scheduler started" ...: at DEBUG only
    next_try = re.search(r"WARNING monitor\.daemon: Acme:hackernews: run failed; next try at (\d\d):(\d\d) "
                         r"\(in (9m \d+s|10m)\)", log)
    assert next_try, log
    assert re.search(r"WARNING monitor\.daemon: no source could be reached on the first run .*`monitor demo`", log)
    assert "stopped cleanly" in log

    debug = write_config(tmp_path / "debug.yaml", cfg.read_text() + "log_level: DEBUG\n")
    proc, err = start(tmp_path, debug, "collect")
    try:
        wait_for_text(err, "monitor demo", proc)
    finally:
        stop(proc)
    assert "apscheduler" in err.read_text(errors="replace")


@pytest.mark.slow
def test_serve_logs_its_url_at_info_and_a_line_when_it_stops(tmp_path):
    port = closed_port()
    cfg = write_config(tmp_path / "config.yaml", f"""\
        database: monitor.db
        brands:
          - name: Acme
            terms: {{include: [acme]}}
        web: {{port: {port}}}
        """)
    proc, err = start(tmp_path, cfg, "serve")
    try:
        wait_for_text(err, f"web page on http://127.0.0.1:{port}", proc)
    finally:
        assert stop(proc, signal.SIGINT) == 0
    log = err.read_text(errors="replace")
    assert f"INFO monitor.web: web page on http://127.0.0.1:{port}\n" in log
    assert f"INFO monitor.web: web page on http://127.0.0.1:{port} stopped" in log
    assert "WARNING" not in log
