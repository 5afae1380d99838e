"""The outbox sender: delivers pending deliveries with retries, exponential back-off and
jitter; every attempt is recorded (committed before the send, finished after), failures
stay visible, and after ``max_attempts`` a delivery is dead-lettered. Deliveries live in
SQLite, so a restart (even after kill -9) resumes them: at-least-once, with a stable
idempotency key per alert for receivers to drop repeats."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.alerts.channels import Channel
from monitor.config import SEVERITY_RANK
from monitor.errors import DeliveryError
from monitor.records import Alert
from monitor.store import AlertStore, Store, parse_iso
from monitor.store.rows import AlertRow, DueDelivery

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_RETRY_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = MAX_ATTEMPTS
    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2  # the delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    @classmethod
    def from_settings(cls, alerts) -> RetryPolicy:
        return cls(max_attempts=alerts.max_attempts, base=alerts.backoff_base, cap=alerts.backoff_max)

    def delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """Wait before attempt ``attempts + 1``: Retry-After when the receiver gave one,
        else min(cap, base * 2**(attempts-1)) with jitter."""
        if retry_after is not None:
            return min(timedelta(seconds=max(0.0, retry_after)), MAX_RETRY_AFTER)
        # in float seconds: base * 2**99 (max_attempts 100) is beyond what a timedelta holds
        doubled = self.base.total_seconds() * 2.0 ** min(max(0, attempts - 1), 512)
        raw = min(self.cap.total_seconds(), doubled)
        return timedelta(seconds=raw * (1 - self.jitter + 2 * self.jitter * self.rng()))


def quiet_until(quiet, severity: str, now: datetime) -> datetime | None:
    """The end of the quiet period ``now`` falls in (UTC), or None when sending is allowed."""
    if quiet is None or severity in quiet.bypass:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    start = time.fromisoformat(quiet.start)
    end = time.fromisoformat(quiet.end)
    t = local.timetz().replace(tzinfo=None)
    today_end = datetime.combine(local.date(), end, tzinfo=zone)
    if start == end:
        return None
    if start < end:
        inside, until = start <= t < end, today_end
    else:  # over midnight, e.g. 22:00-07:00
        inside = t >= start or t < end
        until = today_end + timedelta(days=1) if t >= start else today_end
    return until.astimezone(now.tzinfo) if inside else None


def alert_from_row(row: AlertRow) -> Alert:
    return Alert(
        id=row["id"], rule=row["rule"], key=row["key"], severity=row["severity"], title=row["title"], body=row["body"],
        brand=row["brand"], mention_ids=tuple(json.loads(row["mention_ids"] or "[]")),
        created_at=parse_iso(row["created_at"]), data=json.loads(row["data"] or "{}"),
    )


def deliver_due(store: Store, channels: Mapping[str, Channel], *, policy: RetryPolicy | None = None, limit: int = 100,
                max_attempts: int | None = None) -> dict[str, int]:
    """Send every due delivery once. Returns counts by outcome."""
    policy = policy or RetryPolicy()
    if max_attempts is not None:
        policy = RetryPolicy(max_attempts=max_attempts, base=policy.base, cap=policy.cap, jitter=policy.jitter,
                             rng=policy.rng)
    db = store.alerts
    counts = {"sent": 0, "retry": 0, "dead": 0, "postponed": 0}
    for row in db.due_deliveries(limit):
        channel = channels.get(row["channel"])
        alert = alert_from_row(row)
        until = quiet_until(getattr(channel, "quiet_hours", None), alert.severity, store.now())
        if until is not None:
            db.postpone(row["delivery_id"], until)
            counts["postponed"] += 1
            logger.info("alert %s to %s held for quiet hours until %s", alert.key, row["channel"], until.isoformat())
            continue
        min_sev = getattr(channel, "min_severity", None)
        attempt = row["attempts"] + 1
        attempt_id = db.start_attempt(row["delivery_id"], attempt)
        try:
            if channel is None:
                raise DeliveryError(f"channel {row['channel']!r} is not configured", permanent=True)
            if min_sev and SEVERITY_RANK[alert.severity] < SEVERITY_RANK[min_sev]:
                raise DeliveryError(f"severity {alert.severity} is below the channel's {min_sev}", permanent=True)
            channel.send(alert)
        except DeliveryError as exc:
            _failed(store, db, policy, row, alert, attempt, attempt_id, str(exc), exc.permanent, exc.retry_after,
                    counts)
        except Exception as exc:  # a channel bug must not stop the other deliveries
            logger.exception("alert %s to %s: unexpected error", alert.key, row["channel"])
            _failed(store, db, policy, row, alert, attempt, attempt_id, f"{type(exc).__name__}: {exc}", False, None,
                    counts)
        else:
            with store.transaction():
                db.mark_delivered(row["delivery_id"])
                db.finish_attempt(attempt_id, "sent")
            counts["sent"] += 1
            logger.debug("alert %s delivered to %s (attempt %d)", alert.key, row["channel"], attempt)
    return counts


def _failed(store: Store, db: AlertStore, policy: RetryPolicy, row: DueDelivery, alert: Alert, attempt: int,
            attempt_id: int, error: str, permanent: bool, retry_after: float | None, counts: dict[str, int]) -> None:
    with store.transaction():
        if permanent or attempt >= policy.max_attempts:
            db.mark_failed(row["delivery_id"], error, None)
            db.finish_attempt(attempt_id, "dead", error)
            counts["dead"] += 1
            logger.error("alert %s to %s dead-lettered after %d attempt(s): %s", alert.key, row["channel"], attempt,
                         error)
            return
        delay = policy.delay(attempt, retry_after)
        retry_at = store.now() + delay
        db.mark_failed(row["delivery_id"], error, retry_at)
        db.finish_attempt(attempt_id, "retry", error, retry_at)
    counts["retry"] += 1
    logger.warning("alert %s to %s failed (attempt %d), retrying in %.0fs: %s", alert.key, row["channel"], attempt,
                   delay.total_seconds(), error)
