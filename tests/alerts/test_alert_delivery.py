"""Delivery under slow receivers: every channel works its own queue (a silent receiver
holds only its own channel), a send is given up at the channel's deadline, a stop request
ends delivery at once, classification never waits for delivery, and a retry never comes
before the Retry-After the receiver asked for."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from alert_fakes import Clock, KeywordClassifier, Receiver, add_mentions, mention

from monitor.alerts.channels import WebhookChannel
from monitor.alerts.outbox import RetryPolicy, deliver_due
from monitor.config import Settings
from monitor.daemon import Daemon
from monitor.records import Alert
from monitor.store import Store

POLICY = RetryPolicy(max_attempts=4, base=timedelta(seconds=10), cap=timedelta(minutes=5), rng=lambda: 0.5)


def queue(store, n=1, channels=("hook",)):
    alerts = [Alert(rule="r", key=f"r:mention:{i}", severity="warning", title=f"t{i}", body=f"b{i}",
                    created_at=store.now()) for i in range(n)]
    return store.alerts.insert(alerts, {"r": list(channels)})


def in_thread(fn, *args, **kw) -> threading.Thread:
    worker = threading.Thread(target=fn, args=args, kwargs=kw, daemon=True)
    worker.start()
    return worker


def wait_for(condition, limit=3.0) -> bool:
    """Poll until the condition holds (a deadline for a hung test, not a timing assertion)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


class Blocking:
    """A channel whose send blocks until ``release`` is set (or 5 s pass)."""

    def __init__(self, name="hook", deadline=30.0):
        self.name, self.deadline = name, deadline
        self.entered, self.release = threading.Event(), threading.Event()

    def send(self, alert):
        self.entered.set()
        self.release.wait(5)


def test_a_silent_receiver_holds_only_its_own_channel(store):
    silent, healthy = Receiver(), Receiver()
    silent.default, silent.hang_s = "hang", 8.0
    try:
        queue(store, n=2, channels=("silent", "healthy"))
        channels = {"silent": WebhookChannel("silent", silent.url, timeout=6),
                    "healthy": WebhookChannel("healthy", healthy.url, timeout=6)}
        worker = in_thread(deliver_due, store, channels, policy=POLICY)
        assert wait_for(lambda: len(healthy.delivered) == 2), "the healthy channel waited behind the silent one"
        assert len(silent.requests) == 1 and worker.is_alive()  # the silent one still holds its first alert
    finally:
        silent.close()
        healthy.close()
    worker.join(10)
    keys = [b["alert_key"] for b in healthy.json_bodies()]
    assert keys == ["r:mention:0", "r:mention:1"]  # its own queue, in order


def test_a_send_is_given_up_at_the_channels_deadline(store):
    channel = Blocking(deadline=0.3)
    queue(store)
    try:
        counts = deliver_due(store, {"hook": channel}, policy=POLICY)
    finally:
        channel.release.set()
    assert counts["retry"] == 1 and counts["sent"] == 0
    (row,) = store.query("SELECT status, attempts, last_error FROM deliveries")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "channel hook: no answer within 0.3s (the send was left)"


def test_stop_ends_delivery_at_once_and_keeps_the_delivery_pending(store):
    channel, stop = Blocking(), threading.Event()
    queue(store, n=3)
    try:
        worker = in_thread(deliver_due, store, {"hook": channel}, policy=POLICY, stop=stop)
        assert channel.entered.wait(2)
        stop.set()
        worker.join(2)
        assert not worker.is_alive(), "delivery went on after the stop request"
    finally:
        channel.release.set()
    rows = store.query("SELECT status, attempts FROM deliveries ORDER BY id")
    assert rows == [{"status": "pending", "attempts": 0}] * 3  # the next start sends them
    assert [a["outcome"] for a in store.query("SELECT outcome FROM delivery_attempts")] == ["interrupted"]


def test_a_retry_never_comes_before_retry_after(tmp_path, receiver):
    clock = Clock(datetime(2026, 11, 2, 12, 0, 0, 300_000, tzinfo=UTC))  # mid-second, as a real clock is
    store = Store(tmp_path / "m.db", now=clock)
    try:
        queue(store)
        channels = {"hook": WebhookChannel("hook", receiver.url)}
        receiver.plan = ["429:7"]
        assert deliver_due(store, channels, policy=POLICY)["retry"] == 1
        clock.advance(seconds=6.9)  # 12:00:07.2: still before the 7 s the receiver asked for
        assert deliver_due(store, channels, policy=POLICY)["sent"] == 0
        clock.advance(seconds=0.8)
        assert deliver_due(store, channels, policy=POLICY)["sent"] == 1
        (row,) = store.query("SELECT retry_at FROM delivery_attempts WHERE outcome = 'retry'")
        assert row["retry_at"] == "2026-11-02T12:00:08+00:00"
    finally:
        store.close()


# ----------------------------------------------------------------------------- the daemon


def daemon_with(store, receiver, **alerts):
    settings = Settings.model_validate({
        "database": str(store.path), "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
        "classify_every": "1h",
        "alerts": {"channels": {"hook": {"type": "console"}}, "deliver_every": "1h", "evaluate_every": "1h",
                   "rules": [{"name": "neg", "when": {"sentiment": "negative"}, "channels": ["hook"]}], **alerts}})
    return Daemon(settings, store, sources=[], classifier_factory=KeywordClassifier,
                  channels={"hook": WebhookChannel("hook", receiver.url, timeout=6)})


def test_classification_goes_on_while_a_receiver_is_silent(store, receiver):
    """Delivery ran under the classification lock: 174 mentions sat unclassified for 117 s."""
    receiver.default, receiver.hang_s = "hang", 8.0
    daemon = daemon_with(store, receiver)
    add_mentions(store, [mention(1, "I hate acme")])
    first = in_thread(daemon.classify_job)
    assert wait_for(lambda: len(receiver.requests) == 1)  # the receiver holds the first alert
    add_mentions(store, [mention(2, "I hate acme too", author="bob")])
    daemon.classify_job()
    assert store.query("SELECT count(*) AS n FROM classifications")[0]["n"] == 2
    daemon.stop()
    first.join(2)
    assert not first.is_alive()


def test_sigterm_with_a_silent_receiver_stops_the_daemon_promptly(store, receiver):
    """SIGTERM with a receiver that never answers took 122 s to over 240 s."""
    receiver.default, receiver.hang_s = "hang", 8.0
    daemon = daemon_with(store, receiver)
    add_mentions(store, [mention(i, f"I hate acme {i}", author=f"u{i}") for i in range(3)])
    running = in_thread(daemon.run, install_signals=False)
    assert wait_for(lambda: len(receiver.requests) == 1, limit=10)
    daemon.stop()
    running.join(3)
    assert not running.is_alive(), "the daemon waited for the silent receiver"
    outcomes = [r["outcome"] for r in store.query("SELECT outcome FROM delivery_attempts")]
    assert outcomes == ["interrupted"]
