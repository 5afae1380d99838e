"""The outbox sender: delivers pending deliveries with retries, exponential back-off and
jitter; every attempt is recorded (committed before the send, finished after), failures
stay visible, and after ``max_attempts`` a delivery is dead-lettered. Deliveries live in
SQLite, so a restart (even after kill -9) resumes them: at-least-once, with a stable
idempotency key per alert for receivers to drop repeats.

Channels are delivered independently (``Outbox``): each has its own queue (its due
deliveries, oldest first) worked by its own thread, so a receiver that never answers holds
only its own channel, never the others nor classification. Each send runs on a thread of
its own and is given up after the channel's ``deadline`` (a retryable failure: the receiver
may have it, so at-least-once, with the idempotency key). A stop request (SIGTERM) is
looked at before each delivery and while a send is awaited: the send is left, its attempt
marked interrupted, and the delivery stays pending for the next start. Next-attempt times
are rounded up to the whole second the store keeps: a retry never comes before the
Retry-After the receiver asked for."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

from monitor.alerts.channels import Channel
from monitor.config import SEVERITY_RANK
from monitor.errors import DeliveryError
from monitor.records import Alert
from monitor.store import Store, parse_iso
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


SEND_POLL = 0.05  # seconds between looks at the stop event while a send is awaited
DEFAULT_SEND_DEADLINE = 60.0  # for a channel that names no ``deadline``


def retry_time(now: datetime, delay: timedelta) -> datetime:
    """``now + delay`` rounded up to the whole second: the store keeps seconds, and a
    truncated time would come early (a Retry-After of 7 s answered after 6.8 s)."""
    at = now + delay
    return at.replace(microsecond=0) + timedelta(seconds=1) if at.microsecond else at


CLAIM_BATCH = 10  # deliveries a channel's worker claims at a time


class _Interrupted(Exception):
    """A send left unfinished because the process is stopping."""


class Outbox:
    """Delivers due alerts, channel by channel side by side (see the module). ``kick()``
    starts a worker for each channel with due deliveries and returns at once (the
    daemon); ``run()`` also waits for them (the CLI, tests). ``stop``: the daemon's stop
    event."""

    def __init__(self, store: Store, channels: Mapping[str, Channel], *, policy: RetryPolicy | None = None,
                 stop: threading.Event | None = None, limit: int = 100) -> None:
        self.store = store
        self.channels = channels
        self.policy = policy or RetryPolicy()
        self.stop = stop
        self.limit = limit
        self.counts = {"sent": 0, "retry": 0, "dead": 0, "postponed": 0}
        self._lock = threading.Lock()
        self._workers: dict[str, threading.Thread] = {}
        self._again: set[str] = set()  # kicked while its worker was busy: one more pass

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def kick(self) -> None:
        if self.stopping():
            return
        names = self.store.alerts.due_channels()
        with self._lock:
            for name in names:
                if name in self._workers:
                    self._again.add(name)
                    continue
                worker = threading.Thread(target=self._work, args=(name,), name=f"deliver:{name}", daemon=True)
                self._workers[name] = worker
                worker.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the running workers (at most ``timeout`` seconds); True when none is left."""
        end = None if timeout is None else monotonic() + timeout
        while True:
            with self._lock:
                workers = list(self._workers.values())
            if not workers:
                return True
            if end is not None and monotonic() >= end:
                return False
            for worker in workers:
                worker.join(None if end is None else max(0.0, end - monotonic()))

    def run(self) -> dict[str, int]:
        """Every due delivery once; the counts by outcome."""
        self.kick()
        self.join()
        return dict(self.counts)

    def _work(self, name: str) -> None:
        try:
            while not self.stopping():
                taken = 0
                # claimed a few at a time (monitor.store.workers): several workers on one database
                # each send different deliveries, and one that stops leaves few claims behind
                while taken < self.limit and not self.stopping():
                    ids = self.store.workers.claim_deliveries(self.store.worker, min(CLAIM_BATCH, self.limit - taken),
                                                              self.store.lease, channel=name)
                    if not ids:
                        break
                    taken += len(ids)
                    rows = self.store.alerts.claimed(ids)
                    for k, row in enumerate(rows):
                        if self.stopping():
                            self.store.workers.release_deliveries([r["delivery_id"] for r in rows[k:]],
                                                                  self.store.worker)
                            break
                        self._deliver(row)
                with self._lock:
                    if name not in self._again:
                        del self._workers[name]
                        return
                    self._again.discard(name)
        except Exception:  # a store error: the next kick tries again
            logger.exception("alert delivery to %s failed", name)
        finally:
            with self._lock:
                if self._workers.get(name) is threading.current_thread():
                    del self._workers[name]

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def _deliver(self, row: DueDelivery) -> None:
        store, db = self.store, self.store.alerts
        channel = self.channels.get(row["channel"])
        alert = alert_from_row(row)
        until = quiet_until(getattr(channel, "quiet_hours", None), alert.severity, store.now())
        if until is not None:
            db.postpone(row["delivery_id"], until)
            self._count("postponed")
            logger.info("alert %s to %s held for quiet hours until %s", alert.key, row["channel"], until.isoformat())
            return
        min_sev = getattr(channel, "min_severity", None)
        attempt = row["attempts"] + 1
        # the claim is checked and renewed right before the send: a worker that stalled past its
        # lease (another took the delivery over, and may have sent it) leaves it alone
        if not store.workers.renew_delivery(row["delivery_id"], store.worker, store.lease):
            logger.warning("alert %s to %s: taken over by another worker while this one stalled; not sent here",
                           alert.key, row["channel"])
            return
        attempt_id = db.start_attempt(row["delivery_id"], attempt)
        try:
            if channel is None:
                raise DeliveryError(f"channel {row['channel']!r} is not configured", permanent=True)
            if min_sev and SEVERITY_RANK[alert.severity] < SEVERITY_RANK[min_sev]:
                raise DeliveryError(f"severity {alert.severity} is below the channel's {min_sev}", permanent=True)
            self._send(channel, alert)
        except _Interrupted:
            db.finish_attempt(attempt_id, "interrupted", "the process stopped while sending")
            store.workers.release_deliveries([row["delivery_id"]], store.worker)
            logger.info("alert %s to %s: left unfinished by shutdown, it will be retried", alert.key, row["channel"])
        except DeliveryError as exc:
            self._failed(row, alert, attempt, attempt_id, str(exc), exc.permanent, exc.retry_after)
        except Exception as exc:  # a channel bug must not stop the other deliveries
            logger.exception("alert %s to %s: unexpected error", alert.key, row["channel"])
            self._failed(row, alert, attempt, attempt_id, f"{type(exc).__name__}: {exc}", False, None)
        else:
            with store.transaction():
                db.mark_delivered(row["delivery_id"])
                db.finish_attempt(attempt_id, "sent")
            self._count("sent")
            logger.debug("alert %s delivered to %s (attempt %d)", alert.key, row["channel"], attempt)

    def _send(self, channel: Channel, alert: Alert) -> None:
        """``channel.send(alert)`` on a thread of its own, waited for at most the channel's
        deadline, and no longer once the stop event is set."""
        done = threading.Event()
        failure: list[BaseException] = []

        def send() -> None:
            try:
                channel.send(alert)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=send, name=f"send:{channel.name}", daemon=True).start()
        limit = float(getattr(channel, "deadline", None) or DEFAULT_SEND_DEADLINE)
        end = monotonic() + limit
        while not done.wait(max(0.0, min(end - monotonic(), SEND_POLL if self.stop is not None else limit))):
            if self.stopping():
                raise _Interrupted
            if monotonic() >= end:
                raise DeliveryError(f"channel {channel.name}: no answer within {limit:g}s (the send was left)")
        if failure:
            raise failure[0]

    def _failed(self, row: DueDelivery, alert: Alert, attempt: int, attempt_id: int, error: str, permanent: bool,
                retry_after: float | None) -> None:
        store, db, policy = self.store, self.store.alerts, self.policy
        with store.transaction():
            if permanent or attempt >= policy.max_attempts:
                db.mark_failed(row["delivery_id"], error, None)
                db.finish_attempt(attempt_id, "dead", error)
                dead = True
            else:
                dead = False
                delay = policy.delay(attempt, retry_after)
                retry_at = retry_time(store.now(), delay)
                db.mark_failed(row["delivery_id"], error, retry_at)
                db.finish_attempt(attempt_id, "retry", error, retry_at)
        if dead:
            self._count("dead")
            logger.error("alert %s to %s dead-lettered after %d attempt(s): %s", alert.key, row["channel"], attempt,
                         error)
            return
        self._count("retry")
        logger.warning("alert %s to %s failed (attempt %d), retrying in %.0fs: %s", alert.key, row["channel"],
                       attempt, delay.total_seconds(), error)


def deliver_due(store: Store, channels: Mapping[str, Channel], *, policy: RetryPolicy | None = None,
                limit: int = 100, max_attempts: int | None = None,
                stop: threading.Event | None = None) -> dict[str, int]:
    """Send every due delivery once, channels side by side. Returns counts by outcome."""
    policy = policy or RetryPolicy()
    if max_attempts is not None:
        policy = RetryPolicy(max_attempts=max_attempts, base=policy.base, cap=policy.cap, jitter=policy.jitter,
                             rng=policy.rng)
    from monitor.workers import Heartbeat

    with Heartbeat(store, register=False):  # its claims renewed while it sends, freed at the end
        return Outbox(store, channels, policy=policy, stop=stop, limit=limit).run()
