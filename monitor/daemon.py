"""The daemon: APScheduler 3.x wiring, signals, per-job error isolation.

The scheduler holds no state: jobs are rebuilt from config at start; cursors and
delivery state live in SQLite, so a restart (even after kill -9) resumes cleanly.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO, cast

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from monitor import pipeline
from monitor.classify import Classifier
from monitor.errors import MonitorError
from monitor.matching import Matcher
from monitor.store import Store

logger = logging.getLogger(__name__)


class InstanceLock:
    """One daemon per database: an advisory lock on ``<database>.lock``."""

    def __init__(self, db_path: Path, *, enabled: bool = True) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self.enabled = enabled  # False: several daemons may share the database (PostgreSQL)
        self._fh: TextIO | None = None

    def acquire(self) -> None:
        if not self.enabled:
            return
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise MonitorError(f"another monitor daemon is already running on {self.path.with_suffix('')}") from None
        self._fh = fh

    def release(self) -> None:
        if self._fh:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()


class Daemon:
    def __init__(self, settings, store: Store, *, sources: list, classifier_factory: Callable, channels: dict,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), collect_only: bool = False,
                 stopping: threading.Event | None = None, config_path: Path | None = None) -> None:
        self.collect_only = collect_only
        self.settings = settings
        self.store = store
        self.config_path = config_path
        lease = getattr(settings, "worker_lease", None)
        if lease is not None:
            store.lease = lease
        self.sources = sources  # [(source, matcher, source settings)]
        self.classifier_factory = classifier_factory
        self._classifier: Classifier | None = None
        self.channels = channels
        self.now = now
        # set on SIGTERM/SIGINT; sources built with ``stop=stopping`` end their requests and back-off at once
        self.stopping = stopping or threading.Event()
        self._pipeline_lock = threading.Lock()
        self._more = threading.Event()  # new mentions stored since the classify job last looked
        self._first_runs: dict[str, bool] = {}  # source key -> whether its first run reached it
        self._first_lock = threading.Lock()
        self.engine = None
        self.retry_policy = None
        self.outbox = None  # delivery: a worker per channel, outside the classification lock
        if not collect_only:
            from monitor.alerts.engine import AlertEngine
            from monitor.alerts.outbox import Outbox, RetryPolicy

            self.engine = AlertEngine.from_settings(settings.alerts, store, now=store.now, inbox=settings.inbox,
                                                  handoff=settings.handoff)
            self.retry_policy = RetryPolicy.from_settings(settings.alerts)
            self.outbox = Outbox(store, channels, policy=self.retry_policy, stop=self.stopping)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
            timezone=UTC,
        )

    # ----------------------------------------------------------------- jobs

    def collect_job(self, source, matcher: Matcher, max_pages: int, every: timedelta | None = None) -> None:
        lease = f"collect:{source.key}"
        if not self._lease(lease):
            logger.debug("%s: another worker is collecting it", source.key)
            return
        try:
            if every is not None and self._ran_lately(source.key, every):
                return
            self._collect(source, matcher, max_pages)
        finally:
            try:
                self.store.workers.release(lease, self.store.worker)
            except Exception:  # it expires by itself
                logger.debug("%s: lease not released", source.key, exc_info=True)

    def _ran_lately(self, key: str, every: timedelta) -> bool:
        """Whether another worker on this database ran the source less than half its interval
        ago (then this worker's turn is skipped: each source runs about once an interval)."""
        if not self.store.workers.others_live(self.store.worker):
            return False
        runs = self.store.recent_runs(key, 1)
        if not runs:
            return False
        from monitor.store import parse_iso

        return bool(self.store.now() - parse_iso(runs[0]["started_at"]) < every / 2)

    def _singleton(self, name: str) -> bool:
        """Whether this worker holds (or now takes) lease ``job:<name>``: the jobs one worker runs
        for all. It keeps the lease while alive (renewed by its heartbeat); another takes it over
        one lease after it died."""
        return self._lease(f"job:{name}")

    def _lease(self, name: str) -> bool:
        """Take (or keep) lease ``name``; False when another worker holds it or the database
        cannot be asked now (the job waits for its next run, as when a run fails)."""
        try:
            return self.store.workers.acquire(name, self.store.worker, self.store.lease)
        except Exception:
            logger.exception("%s: lease not taken", name)
            return False

    def _collect(self, source, matcher: Matcher, max_pages: int) -> None:
        try:
            from monitor.health import health_check_for

            stats = pipeline.collect(self.store, source, matcher, max_pages=max_pages, should_stop=self.stopping.is_set,
                                     health=health_check_for(self.settings, source))
        except Exception:  # isolation: one broken source never stops the others
            logger.exception("%s: collection failed", source.key)
            self._after_run(source, ok=False)
            return
        self._after_run(source, ok=stats.ok)
        if stats.new and not self.stopping.is_set() and not self.collect_only:
            self._more.set()
            self.scheduler.modify_job("classify", next_run_time=datetime.now(UTC))

    def _after_run(self, source, ok: bool) -> None:
        """After a failed run, when the source is tried next; once every source's first run is
        over and none reached its service, a hint that the demo needs no network."""
        if not ok and not self.stopping.is_set():
            when = self.next_try(source)
            if when is not None:
                wait = max(0, round((when - self.now()).total_seconds()))
                logger.warning("%s: run failed; next try at %s (in %s)", source.key,
                               when.astimezone().strftime("%H:%M"), _short(wait))
        with self._first_lock:
            if source.key in self._first_runs:
                return
            self._first_runs[source.key] = ok
            if len(self._first_runs) < len(self.sources) or any(self._first_runs.values()):
                return
        logger.warning("no source could be reached on the first run (errors above: the network, a proxy or the "
                       "sources' settings). Meanwhile, `monitor demo` shows monitor at work on sample mentions, no "
                       "network needed.")

    def next_try(self, source) -> datetime | None:
        """The scheduler's next run of the source's job (after ``now``); None without a job."""
        job = self.scheduler.get_job(f"collect:{source.key}")
        if job is None:
            return None
        now = self.now()
        when = job.next_run_time
        if when is None or when <= now:  # the scheduler has not moved it past this run yet
            when = job.trigger.get_next_fire_time(when, now)
        return cast("datetime | None", when)

    def classify_job(self) -> None:
        """Classify and queue alerts; again while new mentions arrived meanwhile (a run
        already in progress picks them up, so none waits for the next interval). The alerts
        go to the outbox's workers once the classification lock is released: a receiver
        that never answers holds no mention unclassified."""
        while True:
            if not self._pipeline_lock.acquire(blocking=False):
                return
            try:
                self._more.clear()
                if self._classifier is None:
                    self._classifier = self.classifier_factory()
                    logger.info("classifier %s loaded", self._classifier.name)
                n = pipeline.classify_pending(self.store, self._classifier, engine=self.engine,
                                               should_stop=self.stopping.is_set,
                                               brands=getattr(self.settings, "brands", ()))
                if n:
                    logger.info("classified %d mention(s)", n)
                self.refresh_advocates()
            except MonitorError as exc:
                logger.error("classification: %s", exc)
            except Exception:
                logger.exception("classification failed")
            finally:
                self._pipeline_lock.release()
            self._deliver()
            if not self._more.is_set() or self.stopping.is_set():
                return

    def _deliver(self) -> None:
        """Wake the outbox: each channel with due deliveries gets its worker (returns at once)."""
        if self.outbox is None:
            return
        try:
            self.outbox.kick()
        except Exception:
            logger.exception("alert delivery failed")

    def refresh_advocates(self) -> None:
        from monitor.handoff import refresh_and_announce

        if not self._singleton("advocates"):  # another worker refreshes the figures
            return
        try:  # and the hand-off's advocate.flagged / detractor.flagged events
            refresh_and_announce(self.store, self.settings)
        except Exception:  # the figures wait for the next run; classification is unaffected
            logger.exception("advocate refresh failed")

    def deliver_job(self) -> None:
        self._deliver()

    def evaluate_job(self) -> None:
        """Windowed rules, and groups and digests whose time has come."""
        if not self._singleton("evaluate"):
            return
        try:
            if self.engine is not None and self.engine.tick():
                self._deliver()
        except Exception:
            logger.exception("alert evaluation failed")

    def retention_job(self) -> None:
        """Daily: delete mentions older than their retention (between classification runs:
        a mention is never deleted while it is being classified)."""
        from monitor import governance

        if not self._singleton("retention"):
            return
        with self._pipeline_lock:
            try:
                governance.run_retention(self.store, self.settings, should_stop=self.stopping.is_set)
            except Exception:  # the next day's run tries again; nothing else is affected
                logger.exception("retention failed")

    def report_job(self) -> None:
        """Weekly: queue last week's report of each brand not sent yet (its alert key is the
        record, so a restart sends nothing twice), then deliver."""
        from monitor import report

        if not self._singleton("report"):
            return
        try:
            if report.send_due(self.store, self.settings, self.now(), save_to=self.store):
                self._deliver()
        except Exception:  # next week's run (or a restart) tries again
            logger.exception("weekly report failed")

    def themes_job(self) -> None:
        """Daily: find and store every brand's themes of the last 30 days (monitor.topics), so
        that a theme keeps its id from day to day and spike explanations can name it; the
        Topics, Compare and Report pages only read what is stored."""
        from monitor import topics
        from monitor.classify import current_model_name

        if not self._singleton("themes"):
            return
        own = [b.name for b in self.settings.brands]
        brands = own + [b for b in self.store.advocacy.brands_in_data() if b not in own]
        try:
            n = topics.store_themes(self.store, brands, current_model_name(self.settings.classifier,
                                                                          self.settings.base_dir), self.now())
            logger.info("themes: %d stored for %d brand(s)", n, len(brands))
        except Exception:  # the next day's run tries again; nothing else is affected
            logger.exception("finding themes failed")

    # ----------------------------------------------------------------- running

    def schedule(self) -> None:
        start = datetime.now(UTC)
        for source, matcher, ss in self.sources:
            self.scheduler.add_job(self.collect_job, "interval", seconds=ss.every.total_seconds(),
                                   id=f"collect:{source.key}", name=source.key,
                                   args=[source, matcher, ss.max_pages, ss.every], next_run_time=start)
        if self.collect_only:
            return
        self.scheduler.add_job(self.classify_job, "interval", seconds=self.settings.classify_every.total_seconds(),
                               id="classify", next_run_time=start)
        self.scheduler.add_job(self.deliver_job, "interval",
                               seconds=self.settings.alerts.deliver_every.total_seconds(), id="deliver",
                               next_run_time=start)
        self.scheduler.add_job(self.evaluate_job, "interval",
                               seconds=self.settings.alerts.evaluate_every.total_seconds(), id="evaluate",
                               next_run_time=start)
        rep = getattr(self.settings, "report", None)
        if rep is not None and rep.enabled:
            from apscheduler.triggers.cron import CronTrigger

            self.scheduler.add_job(self.report_job, CronTrigger(day_of_week=rep.day, hour=rep.hour,
                                                                timezone=rep.timezone), id="report")
            # a start after this week's send time (the daemon was down then): last week's report now
            self.scheduler.add_job(self.report_job, "date", run_date=start + timedelta(minutes=2),
                                   id="report:catch-up")
        # themes once the first classification ran, then daily
        self.scheduler.add_job(self.themes_job, "interval", days=1, id="themes",
                               next_run_time=start + timedelta(minutes=10))
        from monitor.governance import retention_rules

        if retention_rules(self.settings):  # first an hour after the start, then daily
            self.scheduler.add_job(self.retention_job, "interval", days=1, id="retention",
                                   next_run_time=start + timedelta(hours=1))

    def run(self, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or ``stop()``); running jobs finish their current page."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda signum, frame: self.stop())
        from monitor.workers import Heartbeat

        with Heartbeat(self.store, config=self.config_path):  # this worker among those on the database
            if not self.collect_only:
                interrupted = self.store.alerts.mark_interrupted()
                if interrupted:
                    logger.warning("%d delivery attempt(s) were interrupted by the last shutdown; they will be "
                                   "retried", interrupted)
            self.schedule()
            self.scheduler.start()
            logger.info("daemon started: %d source job(s), database %s, worker %s", len(self.sources),
                        self.store.target, self.store.worker)
            self.stopping.wait()
            logger.info("stopping: waiting for running jobs to finish")
            self.scheduler.shutdown(wait=True)
            if self.outbox is not None and not self.outbox.join(timeout=5):  # they leave their sends at once
                logger.warning("an alert delivery worker did not stop in time")
        logger.info("stopped cleanly")

    def stop(self) -> None:
        self.stopping.set()


def _short(seconds: int) -> str:
    """90 -> '1m 30s', 3600 -> '1h', 5 -> '5s'."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return " ".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"
