"""Several workers on one database: this process's heartbeat, and who else is there.

Any number of ``monitor run`` processes, on any machines, may share one PostgreSQL database
(``store.workers`` holds the SQL). What each does that others must not do twice is taken first:

* each source's collection under the lease ``collect:<source key>`` (one worker at a time; a
  run another worker made less than half an interval ago is not made again);
* the jobs only one worker needs to run (windowed rules and digests, the advocate refresh,
  themes, retention, the weekly report) under ``job:<name>``;
* mentions to classify and deliveries to send in claimed batches, each item to one worker.

``Heartbeat`` keeps them: it registers the worker, renews what it holds every quarter of the
lease (``worker_lease`` in config.yaml) on the database's clock, and frees all of it when the
worker stops. A worker killed with ``kill -9`` stops renewing: one lease later its leases and
claims are free, and another worker takes the work over. On this machine, a holder whose
process is gone is freed at once (a daemon restarted after a crash resumes immediately).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from pathlib import Path
from types import TracebackType

from monitor.store import Store

logger = logging.getLogger(__name__)


def config_hash(path: Path | None) -> str:
    """A short digest of the config file, to tell workers that run different configs apart."""
    if path is None or not path.is_file():
        return "-"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def free_dead_local(store: Store) -> list[str]:
    """Free what holders on this machine whose process is gone still hold; returns their names.
    A name is ``host:pid:random`` (``Store.worker``): only holders of this host are judged."""
    host = socket.gethostname()[:60]
    freed = []
    for holder in store.workers.holders():
        name, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if holder == store.worker or name != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid() and _process_gone(pid):
            store.workers.stop(holder)
            freed.append(holder)
    if freed:
        logger.warning("freed the leases and claims of %d worker(s) of this machine that ended without "
                       "stopping: %s", len(freed), ", ".join(freed))
    return freed


class Heartbeat:
    """``with Heartbeat(store):`` registers this worker (``register``: a daemon; a one-off
    command only renews its claims), renews everything it holds every quarter of
    ``store.lease``, and frees it all at the end. A failed renewal is logged and tried again;
    the work itself goes on."""

    def __init__(self, store: Store, *, config: Path | None = None, register: bool = True) -> None:
        self.store = store
        self.config_hash = config_hash(config)
        self.register = register
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        store = self.store
        try:
            free_dead_local(store)
        except Exception:  # the leases expire by themselves
            logger.debug("could not free dead workers' leases", exc_info=True)
        if self.register:
            store.workers.register(store.worker, socket.gethostname()[:60], os.getpid(), self.config_hash,
                                   store.lease)
            others = [w for w in store.workers.live() if w["id"] != store.worker]
            differ = [w["id"] for w in others if w["config_hash"] != self.config_hash]
            if differ:
                logger.error("worker(s) %s run a different config.yaml than this one (%s): workers that share a "
                             "database should share one config, or sources, rules and models disagree",
                             ", ".join(differ), self.config_hash)
            if others:
                logger.info("this worker (%s) joins %d other(s) on this database", store.worker, len(others))
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        """On a connection of its own: a long transaction on the worker's connection never
        holds a renewal back."""
        every = self.store.lease.total_seconds() / 4
        conn: Store | None = None
        try:
            while not self._stop.wait(every):
                try:
                    if conn is None:
                        conn = Store(self.store.url or self.store.path, now=self.store.now)
                    conn.workers.heartbeat(self.store.worker, self.store.lease)
                except Exception as exc:  # the database is away: the leases may lapse; the work is claimed again
                    logger.warning("worker heartbeat failed (%s); retrying", type(exc).__name__)
        finally:
            if conn is not None:
                conn.close()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.store.workers.stop(self.store.worker)
        except Exception:  # they expire one lease later
            logger.warning("could not free this worker's leases and claims; they expire by themselves")
