"""/metrics: Prometheus text format, without login like /healthz, only when turned on, and
never any text of a mention or a handle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Settings
from monitor.records import Alert
from tests.web_data import NOW
from tests.web_support import client, make_app, make_db


def with_sources(settings: Settings, metrics: bool) -> Settings:
    data = settings.model_dump()
    data["brands"][0]["sources"] = [{"type": "demo"}, {"type": "demo", "name": "broken"}]
    data["web"]["metrics"] = metrics
    return Settings.model_validate(data)


@pytest.fixture
def anyio_backend():
    return "asyncio"  # the web app runs on asyncio; older anyio plugins also offer trio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.anyio
async def test_metrics_are_off_by_default(tmp_path):
    settings, store = make_db(tmp_path)
    async with client(make_app(with_sources(settings, False), store)) as c:
        assert (await c.get("/metrics")).status_code == 404


@pytest.mark.anyio
async def test_metrics_count_mentions_backlog_deliveries_and_source_health(tmp_path):
    settings, store = make_db(tmp_path)
    settings = with_sources(settings, True)
    for i in range(3):  # the broken source failed its last runs
        store.record_run("Acme:broken", NOW - timedelta(hours=3 - i), fetched=0, new=0, skipped=0, error="HTTP 500")
    store.record_run("Acme:demo", NOW - timedelta(hours=1), fetched=5, new=4, skipped=0, error=None)
    mid = store.query("SELECT id FROM mentions LIMIT 1")[0]["id"]
    store.alerts.insert([Alert("r", "r:mention:1", "warning", "alice says", "alice: acme rocks", brand="Acme",
                               mention_ids=(mid,))], {"r": ["console", "hook"]})
    delivery = store.query("SELECT id FROM deliveries ORDER BY id LIMIT 1")[0]["id"]
    store.alerts.mark_failed(delivery, "timed out", NOW + timedelta(minutes=5))
    store.workers.register(store.worker, "app1", 4242, "-", timedelta(minutes=5))  # a live worker sending one
    store.workers.claim_deliveries(store.worker, 1, timedelta(minutes=5))
    async with client(make_app(settings, store)) as c:
        answer = await c.get("/metrics")  # no login
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    mentions = store.count_mentions()
    assert got[("monitor_mentions_collected_total", ())] == 4
    assert got[("monitor_mentions_stored", ())] == mentions
    assert got[("monitor_classifications_stored", ())] == store.count("SELECT count(*) FROM classifications")
    assert got[("monitor_classify_backlog", ())] == 1  # erin's mention is unclassified
    assert got[("monitor_alert_deliveries", (("status", "pending"),))] == 2
    assert got[("monitor_alert_deliveries", (("status", "failing"),))] == 1
    assert got[("monitor_workers_alive", ())] == 1
    assert got[("monitor_work_claimed", (("kind", "deliveries"),))] == 1
    assert got[("monitor_work_claimed", (("kind", "mentions"),))] == 0
    assert got[("monitor_source_healthy", (("source", "Acme:demo"),))] == 1
    assert got[("monitor_source_healthy", (("source", "Acme:broken"),))] == 0
    assert got[("monitor_source_state", (("source", "Acme:broken"), ("state", "failing")))] == 1
    assert got[("monitor_source_last_success_timestamp_seconds", (("source", "Acme:demo"),))] == NOW.timestamp()
    assert ("monitor_source_last_success_timestamp_seconds", (("source", "Acme:broken"),)) not in got
    for secret in ("alice", "acme rocks", "timed out", "HTTP 500"):  # counts only: no text, no handle, no error
        assert secret not in answer.text
