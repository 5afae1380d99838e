"""The outbox sender: delivers pending deliveries with retries and back-off; every
failure stays visible, and after ``max_attempts`` a delivery becomes dead-lettered."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from monitor.errors import DeliveryError
from monitor.records import Alert
from monitor.store import Store, parse_iso

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


def alert_from_row(row: dict) -> Alert:
    return Alert(
        id=row["id"], rule=row["rule"], key=row["key"], severity=row["severity"], title=row["title"], body=row["body"],
        brand=row["brand"], mention_ids=tuple(json.loads(row["mention_ids"] or "[]")),
        created_at=parse_iso(row["created_at"]), data=json.loads(row["data"] or "{}"),
    )


def deliver_due(store: Store, channels: dict, *, max_attempts: int = MAX_ATTEMPTS, limit: int = 100) -> dict[str, int]:
    counts = {"sent": 0, "retry": 0, "dead": 0}
    for row in store.due_deliveries(limit):
        channel = channels.get(row["channel"])
        alert = alert_from_row(row)
        try:
            if channel is None:
                raise DeliveryError(f"channel {row['channel']!r} is not configured", permanent=True)
            channel.send(alert)
        except DeliveryError as exc:
            attempts = row["attempts"] + 1
            if exc.permanent or attempts >= max_attempts:
                store.mark_failed(row["delivery_id"], str(exc), None)
                counts["dead"] += 1
                logger.error("alert %s to %s dead-lettered after %d attempt(s): %s", alert.key, row["channel"], attempts, exc)
            else:
                delay = exc.retry_after if exc.retry_after is not None else min(3600, 5 * 2 ** (attempts - 1))
                store.mark_failed(row["delivery_id"], str(exc), store.now() + timedelta(seconds=delay))
                counts["retry"] += 1
                logger.warning("alert %s to %s failed (attempt %d), retrying in %ss: %s", alert.key, row["channel"],
                               attempts, delay, exc)
        except Exception as exc:  # a channel bug must not stop the other deliveries
            store.mark_failed(row["delivery_id"], f"{type(exc).__name__}: {exc}", store.now() + timedelta(minutes=5))
            counts["retry"] += 1
            logger.exception("alert %s to %s: unexpected error", alert.key, row["channel"])
        else:
            store.mark_delivered(row["delivery_id"])
            counts["sent"] += 1
    return counts
