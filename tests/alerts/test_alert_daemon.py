"""The daemon's alert jobs, run directly (no scheduler thread): classify -> alert -> deliver,
and the evaluate job releasing groups on an injected clock."""

from __future__ import annotations

from alert_fakes import KeywordClassifier, add_mentions, mention

from monitor.alerts.channels import WebhookChannel
from monitor.config import Settings
from monitor.daemon import Daemon


def make(store, receiver, rules):
    settings = Settings.model_validate({
        "database": str(store.path), "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
        "alerts": {"channels": {"hook": {"type": "console"}}, "rules": [{"channels": ["hook"], **r} for r in rules]}})
    return Daemon(settings, store, sources=[], classifier_factory=KeywordClassifier,
                  channels={"hook": WebhookChannel("hook", receiver.url)})


def test_classify_job_delivers_at_once(store, receiver):
    daemon = make(store, receiver, [{"name": "neg", "when": {"sentiment": "negative"}}])
    add_mentions(store, [mention(1, "I hate acme"), mention(2, "love acme")])
    daemon.classify_job()
    assert daemon.outbox.join(5)  # delivery runs on the outbox's workers, outside classification
    (body,) = receiver.json_bodies()
    assert body["rule"] == "neg" and body["data"]["mentions"][0]["sentiment"] == "negative"
    assert {j.id for j in (daemon.schedule(), daemon.scheduler.get_jobs())[1]} == {"classify", "deliver", "evaluate",
                                                                                     "themes"}


def test_evaluate_job_releases_a_group_when_its_wait_is_over(store, clock, receiver):
    daemon = make(store, receiver, [{"name": "burst", "when": {"sentiment": "negative"}, "group": {"wait": "5m"}}])
    add_mentions(store, [mention(i, f"I hate acme {i}", author=f"u{i}") for i in range(4)])
    daemon.classify_job()
    daemon.evaluate_job()
    assert daemon.outbox.join(5)
    assert receiver.requests == []
    clock.advance(minutes=5)
    daemon.evaluate_job()
    assert daemon.outbox.join(5)
    (body,) = receiver.json_bodies()
    assert body["data"]["kind"] == "group" and body["data"]["count"] == 4
