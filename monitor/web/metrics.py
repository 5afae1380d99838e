"""``/metrics``: operational counts in the Prometheus text format (prometheus-client), for a
scraper. No text of any mention, no handle, no version: counts, and each configured source's
health. Served without login, as ``/healthz`` is (a scraper has no session), and only with
``web.metrics: true``; otherwise 404."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.health import BROKEN_STATES, assess

router = APIRouter()

STATES = ("ok", "degraded", "failing", "auth", "api_changed", "silent", "never-run")


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def families(request: Request) -> list[Metric]:
    settings = request.app.state.settings
    reader = request.app.state.reader
    counts = reader.governance.metrics(request.app.state.views.model())
    out: list[Metric] = [
        CounterMetricFamily("monitor_mentions_collected", "New mentions stored by source runs, in all.",
                            value=counts["collected"]),
        GaugeMetricFamily("monitor_mentions_stored", "Mentions in the database.", value=counts["mentions"]),
        GaugeMetricFamily("monitor_classifications_stored", "Classifications in the database (all models).",
                          value=counts["classifications"]),
        GaugeMetricFamily("monitor_classify_backlog", "Mentions the current model has not classified yet.",
                          value=counts["backlog"]),
    ]
    deliveries = GaugeMetricFamily("monitor_alert_deliveries", "Alert deliveries by status (failing: pending "
                                   "after at least one failed attempt; dead: given up).", labels=["status"])
    for status in ("pending", "failing", "dead", "sent"):
        deliveries.add_metric([status], counts[f"deliveries_{status}"])
    out.append(deliveries)
    workers = reader.workers.live()  # several workers on one database (monitor.workers)
    out.append(GaugeMetricFamily("monitor_workers_alive", "Workers (daemons) whose heartbeat is fresh.",
                                 value=len(workers)))
    claimed = GaugeMetricFamily("monitor_work_claimed", "Work claimed by live workers: mentions being classified, "
                                "deliveries being sent.", labels=["kind"])
    claimed.add_metric(["mentions"], sum(w["claimed_mentions"] for w in workers))
    claimed.add_metric(["deliveries"], sum(w["claimed_deliveries"] for w in workers))
    out.append(claimed)
    healthy = GaugeMetricFamily("monitor_source_healthy", "1 when the source's latest runs are healthy, 0 when it "
                                "is failing, rejected, changed or silent.", labels=["source"])
    state = GaugeMetricFamily("monitor_source_state", "1 for the source's present health state.",
                              labels=["source", "state"])
    last_ok = GaugeMetricFamily("monitor_source_last_success_timestamp_seconds",
                                "When the source's latest successful run ended.", labels=["source"])
    from monitor.store import parse_iso

    for brand, ss in settings.source_jobs():
        key = f"{brand.name}:{ss.name or ss.type}"
        health = assess(reader, key, settings.health)
        healthy.add_metric([key], 0 if health.state in BROKEN_STATES else 1)
        for s in STATES:
            state.add_metric([key, s], 1 if health.state == s else 0)
        if health.last_success:
            last_ok.add_metric([key], parse_iso(health.last_success).timestamp())
    return [*out, healthy, state, last_ok]


@router.get("/metrics")
def metrics(request: Request) -> Response:
    if not request.app.state.settings.web.metrics:
        raise HTTPException(404, "Not Found")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(request)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
