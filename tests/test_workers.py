"""Several workers on one database (monitor.workers, store.workers), on both backends: leases
held by one worker at a time and taken over once expired, claims of mentions and deliveries
that never go to two workers, results saved only where the claim is still held, a heartbeat
that renews and a clean stop that frees, dead processes of this machine freed at once, and
two workers classifying one backlog side by side with every mention classified once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from monitor import pipeline
from monitor.alerts.engine import AlertEngine
from monitor.cli import main
from monitor.config import Settings
from monitor.records import FetchResult, Mention
from monitor.store import Store
from monitor.workers import Heartbeat, config_hash, free_dead_local

from .conftest import KeywordClassifier, write_config

LEASE = timedelta(seconds=60)
GONE = timedelta(seconds=-1)  # a lease that has already run out when it is taken


def second(store: Store) -> Store:
    """Another worker: its own connection to the same database, its own worker name."""
    return Store(store.url or store.path)


def add_mentions(store: Store, n: int, text: str = "I recommend Acme {i}") -> list[int]:
    now = datetime.now(UTC)
    page = [Mention("hackernews", f"n{i}", "Acme", text.format(i=i), now - timedelta(minutes=i)) for i in range(n)]
    return store.save_batch("Acme:hackernews", "q", FetchResult(page, None, True))


def test_a_lease_has_one_holder_until_it_is_released_or_runs_out(store):
    other = second(store)
    try:
        assert store.workers.acquire("collect:Acme:reddit", store.worker, LEASE)
        assert not other.workers.acquire("collect:Acme:reddit", other.worker, LEASE)
        assert store.workers.acquire("collect:Acme:reddit", store.worker, LEASE)  # its holder keeps it
        assert other.workers.holder("collect:Acme:reddit") == store.worker
        store.workers.release("collect:Acme:reddit", store.worker)
        assert other.workers.acquire("collect:Acme:reddit", other.worker, LEASE)
        # a lease its holder no longer renews is taken over
        assert other.workers.acquire("job:evaluate", other.worker, GONE)
        assert store.workers.acquire("job:evaluate", store.worker, LEASE)
        assert store.workers.holder("job:evaluate") == store.worker
        other.workers.release("job:evaluate", other.worker)  # not its lease any more: nothing happens
        assert store.workers.holder("job:evaluate") == store.worker
    finally:
        other.close()


def test_claims_of_mentions_never_overlap_and_a_stalled_worker_saves_nothing_twice(store):
    ids = add_mentions(store, 30)
    other = second(store)
    try:
        mine = store.workers.claim_mentions("m@1", store.worker, 10, LEASE)
        theirs = other.workers.claim_mentions("m@1", other.worker, 100, LEASE)
        assert [r["id"] for r in mine] == ids[:10]  # oldest first
        assert {r["id"] for r in theirs} == set(ids[10:])
        assert other.workers.claim_mentions("m@1", other.worker, 100, LEASE) == []  # none left unclaimed
        with store.transaction():
            assert store.workers.finish_mentions(ids[:5], store.worker) == set(ids[:5])
            assert store.workers.finish_mentions(ids[10:12], store.worker) == set()  # the other's
        # claims that ran out (a worker stalled past its lease) are taken over, and the stalled
        # worker learns at saving time that they are no longer its own
        stalled = store.workers.claim_mentions("m@1", store.worker, 100, GONE)
        assert [r["id"] for r in stalled] == ids[:5]  # the five it finished are free again: not classified
        taken = other.workers.claim_mentions("m@1", other.worker, 100, LEASE)
        assert [r["id"] for r in taken] == ids[:5]
        with store.transaction():
            assert store.workers.finish_mentions(ids[:5], store.worker) == set()
        # another model's claims are another matter only once classified: a claim is per mention
        assert store.workers.claim_mentions("m@2", store.worker, 100, LEASE) == []
    finally:
        other.close()


def test_classify_pending_saves_only_what_the_worker_still_holds(store, monkeypatch):
    ids = add_mentions(store, 6)
    other = second(store)
    try:
        real_claim = store.workers.claim_mentions

        def claim_then_lose(model, worker, limit, ttl):  # another worker takes two over meanwhile
            rows = real_claim(model, worker, limit, GONE)
            if rows:
                other.workers.claim_mentions(model, other.worker, 2, LEASE)
            return rows

        monkeypatch.setattr(store.workers, "claim_mentions", claim_then_lose)
        classifier = KeywordClassifier()
        done = pipeline.classify_pending(store, classifier, limit=6)
        assert done == 4
        saved = {r["mention_id"] for r in store.query("SELECT mention_id FROM classifications")}
        assert saved == set(ids[2:])
        assert other.query("SELECT item_id FROM work_claims WHERE holder = ?", [other.worker]) == [
            {"item_id": i} for i in ids[:2]]
    finally:
        other.close()


def test_two_workers_classify_one_backlog_once_with_one_alert_each(store):
    ids = add_mentions(store, 400, "Avoid Acme, terrible {i}")
    settings = Settings.model_validate({
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}, "sources": []}],
        "alerts": {"channels": {"console": {"type": "console"}},
                   "rules": [{"name": "negative", "when": {"sentiment": "negative", "min_probability": 0.8},
                              "channels": ["console"]}]},
    })
    stores = [store, second(store)]
    counts = [0, 0]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            s = stores[k]
            engine = AlertEngine.from_settings(settings.alerts, s)
            counts[k] = pipeline.classify_pending(s, KeywordClassifier(), engine=engine, batch_size=16)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stores[1].close()
    assert not errors
    assert sum(counts) == 400
    per_mention = store.query("SELECT mention_id, count(*) AS n FROM classifications GROUP BY mention_id")
    assert len(per_mention) == len(ids) and {r["n"] for r in per_mention} == {1}
    alerted = [i for r in store.query("SELECT mention_ids FROM alerts") for i in json.loads(r["mention_ids"])]
    assert alerted and len(alerted) == len(set(alerted))  # no mention alerted twice
    assert store.scalar("SELECT count(*) FROM deliveries") == store.scalar("SELECT count(*) FROM alerts")
    assert store.scalar("SELECT count(*) FROM work_claims") == 0  # every claim ended with its save


def test_deliveries_are_claimed_by_one_worker_and_a_live_claim_is_not_interrupted(store):
    add_mentions(store, 1)
    store.execute("INSERT INTO alerts (key, rule, severity, title, body, created_at) "
                  "VALUES ('k1', 'r', 'warning', 't', 'b', '2026-01-01T00:00:00+00:00')")
    alert_id = store.scalar("SELECT id FROM alerts WHERE key = 'k1'")
    for channel in ("slack", "mail", "hook"):
        store.execute("INSERT INTO deliveries (alert_id, channel, next_attempt_at) VALUES (?, ?, ?)",
                      [alert_id, channel, "2000-01-01T00:00:00+00:00"])
    other = second(store)
    try:
        mine = store.workers.claim_deliveries(store.worker, 2, LEASE)
        theirs = other.workers.claim_deliveries(other.worker, 10, LEASE)
        assert len(mine) == 2 and len(theirs) == 1 and not set(mine) & set(theirs)
        assert other.workers.claim_deliveries(other.worker, 10, LEASE) == []
        attempt = store.alerts.start_attempt(mine[0], 1)
        assert other.alerts.mark_interrupted() == 0  # a live worker may still be sending it
        store.alerts.mark_delivered(mine[0])  # sent: the claim ends with it
        assert store.scalar("SELECT claimed_by FROM deliveries WHERE id = ?", [mine[0]]) is None
        store.workers.stop(store.worker)  # a clean stop frees the other claim at once
        assert other.workers.claim_deliveries(other.worker, 10, LEASE) == [mine[1]]
        assert store.scalar("SELECT outcome FROM delivery_attempts WHERE id = ?", [attempt]) == "started"
    finally:
        other.close()


def test_heartbeat_renews_and_a_clean_stop_frees(store):
    add_mentions(store, 3)
    store.lease = timedelta(seconds=8)
    with Heartbeat(store, register=True):
        assert store.workers.acquire("job:advocates", store.worker, GONE)
        store.workers.claim_mentions("m@1", store.worker, 2, GONE)
        assert store.workers.heartbeat(store.worker, store.lease) == 3  # the lease and two claims renewed
        live = store.workers.live()
        assert [w["id"] for w in live] == [store.worker]
        assert live[0]["leases"] == ["job:advocates"] and live[0]["claimed_mentions"] == 2
    assert store.workers.live() == []
    assert store.workers.holder("job:advocates") is None
    assert store.scalar("SELECT count(*) FROM work_claims") == 0
    assert store.workers.recent()[0]["stopped_at"] is not None


def test_what_a_dead_process_of_this_machine_held_is_freed_at_once(store):
    add_mentions(store, 2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    host = store.worker.split(":")[0]
    ghost = f"{host}:{int(dead.stdout)}:abcdef"
    store.workers.acquire("collect:Acme:hackernews", ghost, LEASE)
    store.workers.claim_mentions("m@1", ghost, 5, LEASE)
    alive = f"{host}:{os.getppid()}:abcdef"  # a process that is running: left alone
    store.workers.acquire("job:themes", alive, LEASE)
    elsewhere = f"other-machine:{int(dead.stdout)}:abcdef"  # another machine's: only its lease tells
    store.workers.acquire("job:report", elsewhere, LEASE)
    assert free_dead_local(store) == [ghost]
    assert store.workers.holder("collect:Acme:hackernews") is None
    assert store.scalar("SELECT count(*) FROM work_claims") == 0
    assert store.workers.holder("job:themes") == alive
    assert store.workers.holder("job:report") == elsewhere


def test_workers_with_different_configs_are_warned_about(store, tmp_path, caplog):
    a = write_config(tmp_path / "a.yaml", "brands: [{name: Acme, terms: {include: [acme]}}]\n")
    b = write_config(tmp_path / "b.yaml", "brands: [{name: Other, terms: {include: [other]}}]\n")
    assert config_hash(a) != config_hash(b)
    other = second(store)
    try:
        with Heartbeat(store, config=a), caplog.at_level("ERROR", logger="monitor.workers"), \
                Heartbeat(other, config=b):
            pass
        assert any("different config.yaml" in r.getMessage() for r in caplog.records)
    finally:
        other.close()


def test_status_lists_the_workers_and_what_they_hold(tmp_path):
    cfg = write_config(tmp_path / "config.yaml", "database: m.db\nbrands: [{name: Acme, terms: {include: [acme]}}]\n")
    store = Store(tmp_path / "m.db")
    try:
        with Heartbeat(store, config=cfg):
            store.workers.acquire("collect:Acme:hackernews", store.worker, LEASE)
            runner = CliRunner()
            out = runner.invoke(main, ["-c", str(cfg), "status"])
            assert out.exit_code == 0, out.output
            assert "workers" in out.output and "alive" in out.output and "collect:Acme:hackernews" in out.output
            js = runner.invoke(main, ["-c", str(cfg), "status", "--workers", "--format", "json"])
            assert js.exit_code == 0 and f'"worker": "{store.worker}"' in js.output
        out = CliRunner().invoke(main, ["-c", str(cfg), "status", "--workers"])
        assert "stopped" in out.output
    finally:
        store.close()


@pytest.mark.parametrize("value, ok", [("30s", True), ("1s", False), ("2h", False)])
def test_worker_lease_is_checked(value, ok):
    body = {"brands": [{"name": "Acme", "terms": {"include": ["acme"]}}], "worker_lease": value}
    if ok:
        assert Settings.model_validate(body).worker_lease == timedelta(seconds=30)
    else:
        with pytest.raises(ValueError, match="worker_lease"):
            Settings.model_validate(body)


def test_a_worker_that_stalled_past_its_claim_neither_sends_nor_undoes_a_delivery(store):
    from monitor.alerts.outbox import Outbox

    store.execute("INSERT INTO alerts (key, rule, severity, title, body, created_at) "
                  "VALUES ('k1', 'r', 'warning', 't', 'b', '2026-01-01T00:00:00+00:00')")
    alert_id = store.scalar("SELECT id FROM alerts WHERE key = 'k1'")
    store.execute("INSERT INTO deliveries (alert_id, channel, next_attempt_at) VALUES (?, 'hook', ?)",
                  [alert_id, "2000-01-01T00:00:00+00:00"])

    class Recorder:
        name, deadline = "hook", 5

        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, alert) -> None:
            self.sent.append(alert.key)

    other = second(store)
    try:
        [stale] = store.workers.claim_deliveries(store.worker, 10, GONE)  # this worker then stalls
        row = store.alerts.claimed([stale])[0]
        assert other.workers.claim_deliveries(other.worker, 10, LEASE) == [stale]  # taken over
        mine, theirs = Recorder(), Recorder()
        Outbox(other, {"hook": theirs})._deliver(other.alerts.claimed([stale])[0])
        assert theirs.sent == ["k1"]
        Outbox(store, {"hook": mine})._deliver(row)  # the stalled worker wakes up: nothing sent twice
        assert mine.sent == []
        store.alerts.mark_failed(stale, "timed out", datetime.now(UTC) + timedelta(minutes=1))  # a stale failure
        assert store.query("SELECT status, attempts FROM deliveries") == [{"status": "sent", "attempts": 1}]
        assert not store.workers.renew_delivery(stale, store.worker, LEASE)
    finally:
        other.close()


def test_others_live_sees_only_other_workers_with_a_fresh_heartbeat(store):
    assert not store.workers.others_live(store.worker)
    store.workers.register(store.worker, "here", os.getpid(), "c", LEASE)
    assert not store.workers.others_live(store.worker)  # itself does not count
    store.workers.register("w-other", "there", 1, "c", LEASE)
    assert store.workers.others_live(store.worker)
    assert store.workers.others_live("w-other")
    store.workers.stop("w-other")
    assert not store.workers.others_live(store.worker)


def test_a_collect_run_is_skipped_when_the_database_cannot_give_its_lease(store, monkeypatch, caplog):
    from monitor.daemon import Daemon

    settings = Settings.model_validate({"brands": [{"name": "Acme", "terms": {"include": ["acme"]}}]})
    d = Daemon(settings, store, sources=[], classifier_factory=lambda: None, channels={}, collect_only=True)
    collected: list[str] = []
    monkeypatch.setattr(d, "_collect", lambda source, matcher, pages: collected.append(source.key))

    def unavailable(*args):
        raise ConnectionError("database gone")

    source = type("Source", (), {"key": "Acme:hackernews"})()
    with monkeypatch.context() as m:
        m.setattr(store.workers, "acquire", unavailable)
        d.collect_job(source, None, 1)  # logged, not raised into the scheduler
    assert collected == []
    assert "collect:Acme:hackernews: lease not taken" in caplog.text
    d.collect_job(source, None, 1)  # the database answers again: the next run collects
    assert collected == ["Acme:hackernews"]
