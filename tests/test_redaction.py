"""Secrets: stripped on load (a token read from a file ends in a newline), and one
redaction, by every secret's value and its parts, for logs (tracebacks too), stored errors
and alerts."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import pytest

from monitor.cli_common import RedactingFilter, setup_logging
from monitor.config import load_settings
from monitor.errors import ConfigError, SourceError
from monitor.http_client import HttpClient, HttpPolicy
from monitor.records import Alert
from monitor.redaction import MASK, Redactor, secret_parts
from tests.fakes.sources import FakeResolver, FixtureServer, Reply

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts"
SLACK_PIECES = ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"]
JSON_URL = "json://hookuser:hookpass-77@{host}/secret-path-42?token=tok-9f8e1&format=text"
JSON_PIECES = ["hookuser", "hookpass-77", "secret-path-42", "tok-9f8e1"]


def _config(tmp_path, token_ref="${MASTO_TOKEN}"):
    path = tmp_path / "config.yaml"
    path.write_text(f"""
database: {tmp_path / 'm.db'}
brands:
  - name: Acme
    terms: {{include: [acme]}}
    sources:
      - {{type: mastodon, instance: "https://mastodon.example", search: true, token: "{token_ref}"}}
""")
    return path


@pytest.mark.parametrize("raw", ["masto-token-5a7c\n", "  masto-token-5a7c \r\n", "\tmasto-token-5a7c"])
def test_secrets_read_with_blanks_around_them_are_stripped(tmp_path, raw):
    settings = load_settings(_config(tmp_path), env={"MASTO_TOKEN": raw})
    assert settings.brands[0].sources[0].token.get_secret_value() == "masto-token-5a7c"


def test_a_blank_secret_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(_config(tmp_path), env={"MASTO_TOKEN": " \n"})
    assert any("environment variable MASTO_TOKEN is blank" in p for p in info.value.problems), info.value.problems


def test_a_header_http_refuses_is_not_quoted_in_the_error():
    """h11 quotes a bad header value whole (the Mastodon token, in the attack run); the
    error that is logged, stored and alerted names the problem, not the value."""
    http = HttpClient(HttpPolicy(resolve=FakeResolver(), allow_networks=("127.0.0.1/32",), retries=0))
    with FixtureServer() as server:
        server.routes["/x"] = Reply(body=b"{}")
        with pytest.raises(SourceError) as info:
            http.get_bytes(f"{server.url}/x", headers={"Authorization": "Bearer leaky-token-31d\n"})
    assert "leaky-token-31d" not in str(info.value) and "not valid HTTP" in str(info.value)


def test_url_secrets_are_hidden_whole_and_by_their_parts():
    json_url = JSON_URL.format(host="receiver.example:8080")
    hook = "https://hooks.slack.com/services/T0AAA1111/B0BBB2222/Xx9secretXx9secretXx9"
    redact = Redactor([SLACK, json_url, hook])
    text = (f"loaded {json_url}; POST https://hooks.slack.com/services/{'/'.join(SLACK_PIECES)}; "
            "json user hookuser pass hookpass-77 path /secret-path-42 token=tok-9f8e1; "
            f"hook {hook} and its token Xx9secretXx9secretXx9 alone; b'Bearer {SLACK_PIECES[2]}\\n'")
    out = redact(text)
    for piece in [*SLACK_PIECES, *JSON_PIECES, "Xx9secretXx9secretXx9", "T0AAA1111", "B0BBB2222"]:
        assert piece not in out, piece
    # what is not secret stays readable: hosts of http(s) URLs, common path words
    assert "hooks.slack.com/services/" in out and "receiver.example" not in secret_parts(json_url)
    assert "json user *** pass *** path /***" in out and MASK == "***"


def test_the_log_filter_redacts_messages_tracebacks_and_stacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor([SLACK])))
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"upstream quoted {SLACK_PIECES[2]}")
        except RuntimeError:
            log.exception("posting to %s failed", f"https://hooks.slack.com/services/{SLACK_PIECES[1]}")
        log.warning("stack of %s", SLACK_PIECES[0], stack_info=True)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    out = stream.getvalue()
    assert "RuntimeError: upstream quoted ***" in out and "Stack (most recent call last)" in out
    for piece in SLACK_PIECES:
        assert piece not in out


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for name in ("apprise", "httpx", "httpcore", "urllib3", "prawcore", "apscheduler.executors", "filelock"):
        logging.getLogger(name).setLevel(logging.NOTSET)  # as setup_logging and the test left them


def test_apprise_debug_logs_leak_no_piece_of_its_url(root_logging):
    """At DEBUG Apprise logs the user and path of a json:// URL (and each Slack token) on
    their own: whole-URL redaction missed them."""
    from monitor.alerts.channels import AppriseChannel

    with FixtureServer() as server:
        server.routes["/secret-path-42"] = Reply(body=b"")
        url = JSON_URL.format(host=server.url.removeprefix("http://"))
        stream = io.StringIO()
        setup_logging("DEBUG", [url])
        logging.getLogger().handlers[0].setStream(stream)
        for name in ("apprise", "urllib3"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        AppriseChannel("apprise", url).send(Alert(rule="r", key="k", severity="info", title="t", body="b",
                                                  created_at=datetime.now(UTC)))
        assert [s.path for s in server.seen] == ["/secret-path-42"]
    logs = stream.getvalue()
    assert "JSON POST URL" in logs  # Apprise did log its URL at DEBUG
    for piece in JSON_PIECES[:3]:  # Apprise drops the unknown token= itself
        assert piece not in logs, piece


def test_errors_and_alerts_are_stored_redacted(tmp_path):
    """source_runs.error fed `monitor status` and the source-health alert sent to every
    channel; delivery errors and alert texts are stored through the same redaction."""
    from monitor.store import Store

    store = Store(tmp_path / "m.db")
    try:
        store.redact = Redactor([SLACK, "masto-token-5a7c"])
        store.record_run("Acme:mastodon", datetime.now(UTC), fetched=0, new=0, skipped=0,
                         error="LocalProtocolError: Illegal header value b'Bearer masto-token-5a7c\\n'")
        (alert_id,) = store.alerts.insert([Alert(
            rule="source-health", key="h:1", severity="critical", title=f"broken: {SLACK_PIECES[0]}",
            body=f"last error: Bearer masto-token-5a7c at /{SLACK_PIECES[1]}", created_at=datetime.now(UTC),
            data={"error": f"token {SLACK_PIECES[2]}", "count": 12345})], {"source-health": ["hook"]})
        (delivery,) = store.query("SELECT id FROM deliveries")
        attempt = store.alerts.start_attempt(delivery["id"], 1)
        store.alerts.finish_attempt(attempt, "retry", f"HTTP 500 from {SLACK}", None)
        store.alerts.mark_failed(delivery["id"], f"POST /services/{SLACK_PIECES[1]}/{SLACK_PIECES[2]} failed", None)
        dump = "\n".join(str(r) for t in ("source_runs", "alerts", "deliveries", "delivery_attempts")
                         for r in store.query(f"SELECT * FROM {t}"))  # noqa: S608
        assert store.query("SELECT data FROM alerts")[0]["data"] == '{"error": "token ***", "count": 12345}'
    finally:
        store.close()
    assert "masto-token-5a7c" not in dump and "Bearer ***" in dump
    for piece in SLACK_PIECES:
        assert piece not in dump, piece
    assert alert_id


def test_the_cli_hands_its_redaction_to_the_store(tmp_path, monkeypatch, root_logging):
    from monitor.cli_common import App

    monkeypatch.setenv("MONITOR_TEST_TOKEN", "masto-token-77e1\n")
    store = App(str(_config(tmp_path, token_ref="${MONITOR_TEST_TOKEN}"))).store()
    try:
        assert store.redact("Bearer masto-token-77e1") == "Bearer ***"
    finally:
        store.close()
