"""The outbox against a real local receiver: retries with back-off and jitter, Retry-After,
dead letters, every attempt recorded, quiet hours, idempotent receivers, secrets."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from alert_fakes import free_port

from monitor.alerts.channels import EmailChannel, WebhookChannel, build_channels
from monitor.alerts.outbox import RetryPolicy, deliver_due
from monitor.cli_common import collect_secrets, setup_logging
from monitor.config import QuietHours, Settings
from monitor.records import Alert

POLICY = RetryPolicy(max_attempts=4, base=timedelta(seconds=10), cap=timedelta(minutes=5), jitter=0.2,
                     rng=lambda: 0.5)  # jitter factor exactly 1.0


def queue(store, n=1, severity="warning", channels=("hook",)):
    alerts = [Alert(rule="r", key=f"r:mention:{i}", severity=severity, title=f"t{i}", body=f"b{i}",
                    created_at=store.now()) for i in range(n)]
    return store.alerts.insert(alerts, {"r": list(channels)})


def delivery(store):
    return store.query("SELECT * FROM deliveries ORDER BY id")[0]


def attempts(store):
    return store.query("SELECT attempt, outcome, error, retry_at FROM delivery_attempts ORDER BY id")


def test_retries_with_backoff_until_sent(store, clock, receiver):
    queue(store)
    channels = {"hook": WebhookChannel("hook", receiver.url)}
    receiver.plan = ["500", "500"]
    assert deliver_due(store, channels, policy=POLICY)["retry"] == 1
    d = delivery(store)
    assert d["status"] == "pending" and d["attempts"] == 1
    assert d["next_attempt_at"] == (clock() + timedelta(seconds=10)).isoformat()
    assert deliver_due(store, channels, policy=POLICY) == {"sent": 0, "retry": 0, "dead": 0, "postponed": 0}  # not due
    clock.advance(seconds=10)
    deliver_due(store, channels, policy=POLICY)
    assert delivery(store)["next_attempt_at"] == (clock() + timedelta(seconds=20)).isoformat()  # doubled
    clock.advance(seconds=20)
    assert deliver_due(store, channels, policy=POLICY)["sent"] == 1
    assert [(a["attempt"], a["outcome"]) for a in attempts(store)] == [(1, "retry"), (2, "retry"), (3, "sent")]
    assert attempts(store)[0]["error"] == "webhook answered HTTP 500"
    assert len(receiver.delivered) == 1


def test_backoff_is_capped_and_jittered():
    p = RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=1), jitter=0.2, rng=lambda: 0.0)
    assert p.delay(1) == timedelta(seconds=4)  # 5s * 0.8
    assert RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=1), rng=lambda: 1.0).delay(10) == \
        timedelta(seconds=72)  # capped at 60s, * 1.2
    assert p.delay(3, retry_after=120) == timedelta(seconds=120)


def test_429_retry_after_is_honoured(store, clock, receiver):
    queue(store)
    receiver.plan = ["429:90"]
    deliver_due(store, {"hook": WebhookChannel("hook", receiver.url)}, policy=POLICY)
    assert delivery(store)["next_attempt_at"] == (clock() + timedelta(seconds=90)).isoformat()


def test_client_error_is_dead_lettered_at_once(store, receiver):
    queue(store)
    receiver.default = "400"
    assert deliver_due(store, {"hook": WebhookChannel("hook", receiver.url)}, policy=POLICY)["dead"] == 1
    assert delivery(store)["status"] == "dead" and len(receiver.requests) == 1
    assert store.alerts.delivery_counts()["dead"] == 1


def test_dead_after_max_attempts_and_still_visible(store, clock, receiver):
    queue(store)
    receiver.default = "503"
    channels = {"hook": WebhookChannel("hook", receiver.url)}
    for _ in range(6):
        deliver_due(store, channels, policy=POLICY)
        clock.advance(minutes=10)
    assert len(receiver.requests) == 4
    d = delivery(store)
    assert d["status"] == "dead" and d["attempts"] == 4 and d["last_error"] == "webhook answered HTTP 503"
    assert [a["outcome"] for a in attempts(store)] == ["retry", "retry", "retry", "dead"]


def test_unknown_channel_is_dead_not_lost(store):
    queue(store, channels=("gone",))
    assert deliver_due(store, {}, policy=POLICY)["dead"] == 1
    assert "not configured" in delivery(store)["last_error"]


def test_quiet_hours_postpone_without_an_attempt(store, clock, receiver):
    queue(store, n=1, severity="warning")
    queue(store, n=0)
    store.alerts.insert([Alert(rule="c", key="c:1", severity="critical", title="t", body="b", created_at=clock())],
                        {"c": ["hook"]})
    ch = WebhookChannel("hook", receiver.url, quiet_hours=QuietHours(start="11:00", end="13:00"))
    assert deliver_due(store, {"hook": ch}, policy=POLICY) == {"sent": 1, "retry": 0, "dead": 0, "postponed": 1}
    held = delivery(store)
    assert held["attempts"] == 0 and held["next_attempt_at"] == "2026-11-02T13:00:00+00:00"
    clock.advance(hours=1)
    assert deliver_due(store, {"hook": ch}, policy=POLICY)["sent"] == 1


def test_ambiguous_timeout_then_retry_is_no_duplicate_at_an_idempotent_receiver(store, clock, receiver):
    queue(store, n=3)
    receiver.plan = ["hang", "ok", "500"]
    receiver.hang_s = 1.0
    channels = {"hook": WebhookChannel("hook", receiver.url, timeout=0.3)}
    for _ in range(5):
        deliver_due(store, channels, policy=POLICY)
        clock.advance(minutes=10)
    assert {d["status"] for d in store.query("SELECT status FROM deliveries")} == {"sent"}
    assert len(receiver.requests) == 5  # raw: one ambiguous timeout and one 500 were retried
    assert len(receiver.delivered) == 3  # distinct, by Idempotency-Key: nothing shown twice


def test_interrupted_attempt_is_marked_and_retried(store, receiver):
    (alert_id,) = queue(store)
    db = store.alerts
    db.start_attempt(delivery(store)["id"], 1)  # a process died here, mid-send
    assert db.mark_interrupted() == 1
    assert deliver_due(store, {"hook": WebhookChannel("hook", receiver.url)}, policy=POLICY)["sent"] == 1
    assert [a["outcome"] for a in attempts(store)] == ["interrupted", "sent"]


CANARIES = {"HOOK_URL": None, "SMTP_PASSWORD": "canary-smtp-pw-5f1c", "APPRISE_URL": None}


@pytest.fixture
def debug_capture():
    """Everything every logger says at DEBUG, through the CLI's handler (with its redaction)."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for name in ("httpx", "httpcore", "apprise", "urllib3", "monitor", "prawcore", "apscheduler.executors",
                 "filelock"):  # the levels the test and setup_logging set: later tests see the defaults
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_secrets_never_in_logs_errors_or_database(store, clock, receiver, smtp, debug_capture, monkeypatch, tmp_path):
    hook = f"http://127.0.0.1:{receiver.port}/hooks/canary-hook-token-9d2e?key=canary-query-7a1b"
    dead_port = free_port()
    apprise_url = f"json://canary-user:canary-apprise-pw-3e8a@127.0.0.1:{dead_port}/x"
    env = {"HOOK_URL": hook, "SMTP_PASSWORD": "canary-smtp-pw-5f1c", "APPRISE_URL": apprise_url}
    settings = Settings.model_validate({
        "database": str(tmp_path / "x.db"), "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
        "alerts": {"channels": {
            "hook": {"type": "webhook", "url": _secret(env["HOOK_URL"])},
            "mail": {"type": "email", "host": "127.0.0.1", "port": dead_port, "security": "none",
                     "username": "monitor", "password": _secret(env["SMTP_PASSWORD"]), "sender": "m@example.org",
                     "to": ["t@example.org"]},
            "apprise": {"type": "apprise", "url": _secret(env["APPRISE_URL"])}}}})
    setup_logging("DEBUG", collect_secrets(settings))
    handler = logging.getLogger().handlers[0]
    handler.setStream(debug_capture)
    for name in ("httpx", "httpcore", "apprise", "urllib3", "monitor"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # every logger at DEBUG, the tamed ones too
    plain = io.StringIO()  # our own loggers without the redaction filter: they must not need it
    own = logging.StreamHandler(plain)
    logging.getLogger("monitor").addHandler(own)
    try:
        channels = build_channels(settings)
        queue(store, n=2, channels=("hook", "mail", "apprise"))
        receiver.plan = ["500"]
        for _ in range(3):
            deliver_due(store, channels, policy=POLICY)
            clock.advance(minutes=10)
    finally:
        logging.getLogger("monitor").removeHandler(own)
    logs = debug_capture.getvalue()
    assert "alert r:mention:0 to hook failed" in logs and "to mail failed" in logs  # the test can see failures
    dump = "\n".join(str(r) for t in ("deliveries", "delivery_attempts", "alerts")
                     for r in store.query(f"SELECT * FROM {t}"))  # noqa: S608
    for canary in ("canary-hook-token-9d2e", "canary-query-7a1b", "canary-smtp-pw-5f1c", "canary-apprise-pw-3e8a"):
        assert canary not in logs
        assert canary not in plain.getvalue()
        assert canary not in dump
    assert len(receiver.delivered) == 2


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def test_email_channel_login_failure_is_retryable_and_quiet(smtp):
    ch = EmailChannel("mail", host="127.0.0.1", port=smtp.port, security="none", sender="m@example.org",
                      to=["t@example.org"], username="u", password="canary-pw-1234")
    from monitor.errors import DeliveryError

    with pytest.raises(DeliveryError) as info:
        ch.send(Alert(rule="r", key="k", severity="info", title="t", body="b", created_at=datetime.now(UTC)))
    assert "canary" not in str(info.value)
