"""Source health: from the runs recorded in ``source_runs`` to a state per source and,
when a source breaks, one ``source-health`` alert per episode.

A source is broken when

* its latest run failed on credentials (``auth``: retrying will not help), or
* its latest run fetched items but they (nearly) all failed validation (``api_changed``:
  every item of a page skipped, or at least ``API_CHANGED_SHARE`` of at least
  ``API_CHANGED_MIN_ITEMS`` items): the API changed under us; alerted at once, or
* its last ``max_failures`` runs all failed (``failing``), or
* its last ``zero_runs`` runs succeeded with nothing fetched while its baseline (the
  ``baseline_runs`` successful runs before) mostly had results (``silent``): the quiet
  failure every monitoring tool is blamed for.

The alert key names the run that opened the episode, so a broken source alerts once,
and again only after it has recovered and broken anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.records import Alert

RULE = "source-health"
MIN_BASELINE = 5
API_CHANGED = "api changed: "  # how pipeline.collect marks such a run's error
API_CHANGED_PAGE_MIN = 3  # a page whose items all failed: at least this many (one odd item is no API change)
API_CHANGED_MIN_ITEMS = 10  # a run: at least this many items seen...
API_CHANGED_SHARE = 0.9  # ...and at least this share of them failed validation


def page_malformed(parsed: int, skipped: int) -> bool:
    """True when every item of one page failed validation (and there were enough to tell)."""
    return parsed == 0 and skipped >= API_CHANGED_PAGE_MIN


def run_malformed(parsed: int, skipped: int) -> bool:
    """True when (nearly) every item of a run failed validation."""
    seen = parsed + skipped
    return skipped > 0 and ((parsed == 0 and skipped >= API_CHANGED_PAGE_MIN)
                            or (seen >= API_CHANGED_MIN_ITEMS and skipped / seen >= API_CHANGED_SHARE))


def api_changed_message(source_key: str, failed: int, seen: int) -> str:
    what = f"all {failed} items of a page" if failed == seen else f"{failed} of {seen} items"
    return (f"{source_key}: {what} failed validation — the API may have changed; "
            "see the log for the first error")


def _api_changed(run: dict) -> bool:
    if (run.get("error") or "").startswith(API_CHANGED):
        return True
    # runs recorded before collect marked them: tell from the counts
    return bool(run["ok"]) and run_malformed(run["fetched"], run["skipped"])


BROKEN_STATES = ("failing", "auth", "api_changed", "silent")


@dataclass(frozen=True)
class SourceHealth:
    source_key: str
    state: str  # ok, degraded, failing, auth, api_changed, silent, never-run
    runs: int = 0
    last_run: str | None = None
    last_success: str | None = None
    fetched: int = 0  # latest run
    new: int = 0
    failed_items: int = 0  # malformed items skipped in the latest run
    consecutive_failures: int = 0
    zero_streak: int = 0
    last_error: str | None = None
    opened_by: int | None = None  # run id that opened the current episode
    problem: str | None = None

    @property
    def broken(self) -> bool:
        return self.state in BROKEN_STATES


@dataclass(frozen=True)
class HealthCheck:
    """What pipeline.collect needs to raise source-health alerts."""

    policy: object  # config.HealthSettings
    channels: list[str] = field(default_factory=list)
    brand: str | None = None


def _streak_start(store, source_key: str, runs: list, length: int, holds) -> int:
    """Id of the first run of a streak of ``length`` newest runs that satisfy ``holds``. A streak
    longer than the window read is followed back page by page, so the problem keeps the run that
    opened it (its alert is sent once, not again each run)."""
    start = runs[length - 1]["id"]
    if length < len(runs):
        return start
    while True:
        older = store.recent_runs(source_key, 200, before_id=start)
        for r in older:
            if not holds(r):
                return start
            start = r["id"]
        if len(older) < 200:
            return start


def assess(store, source_key: str, policy) -> SourceHealth:
    window = policy.max_failures + policy.zero_runs + policy.baseline_runs + 5
    runs = store.recent_runs(source_key, window)  # newest first
    if not runs:
        return SourceHealth(source_key, "never-run")
    latest = runs[0]
    failures = 0
    for r in runs:
        if r["ok"]:
            break
        failures += 1
    zeros = 0
    for r in runs:
        if not r["ok"] or r["fetched"]:
            break
        zeros += 1
    base = dict(source_key=source_key, runs=len(runs), last_run=latest["finished_at"],
                last_success=store.last_success(source_key), fetched=latest["fetched"], new=latest["new"],
                failed_items=latest["skipped"], consecutive_failures=failures, zero_streak=zeros,
                last_error=latest["error"])
    if latest.get("auth_failed"):
        auth = 0
        for r in runs[:failures]:
            if not r.get("auth_failed"):
                break
            auth += 1
        opened = (_streak_start(store, source_key, runs, auth, lambda r: not r["ok"] and r.get("auth_failed"))
                  if auth else latest["id"])
        return SourceHealth(**base, state="auth", opened_by=opened,
                            problem=f"credentials refused: {latest['error'] or 'authentication failed'}")
    if _api_changed(latest):
        changed = 0
        for r in runs:
            if not _api_changed(r):
                break
            changed += 1
        if (latest["error"] or "").startswith(API_CHANGED):
            problem = latest["error"][len(API_CHANGED):].removeprefix(f"{source_key}: ")
        else:
            problem = api_changed_message(source_key, latest["skipped"],
                                          latest["skipped"] + latest["fetched"]).removeprefix(f"{source_key}: ")
        return SourceHealth(**base, state="api_changed", problem=problem,
                            opened_by=_streak_start(store, source_key, runs, changed, _api_changed))
    if failures >= policy.max_failures:
        return SourceHealth(**base, state="failing",
                            opened_by=_streak_start(store, source_key, runs, failures, lambda r: not r["ok"]),
                            problem=f"{failures} consecutive failed runs; last error: {latest['error']}")
    if zeros >= policy.zero_runs:
        baseline = [r for r in runs[zeros:] if r["ok"]][: policy.baseline_runs]
        if len(baseline) >= min(MIN_BASELINE, policy.baseline_runs):
            share = sum(1 for r in baseline if r["fetched"]) / len(baseline)
            if share >= policy.baseline_nonzero:
                return SourceHealth(**base, state="silent", opened_by=runs[zeros - 1]["id"],
                                    problem=(f"{zeros} runs in a row fetched nothing, but {share:.0%} of the "
                                             f"{len(baseline)} runs before had results"))
    return SourceHealth(**base, state="degraded" if failures else "ok")


def alert_for(health: SourceHealth, severity: str = "critical", brand: str | None = None) -> Alert | None:
    if not health.broken:
        return None
    title = f"source broken: {health.source_key} ({health.state})"
    body = "\n".join([
        f"{health.source_key}: {health.problem}",
        f"last success: {health.last_success or 'never'}; last run: {health.last_run}",
        f"latest run: fetched {health.fetched}, new {health.new}, failed items {health.failed_items}",
        "Check with: monitor status",
    ])
    return Alert(rule=RULE, key=f"{RULE}:{health.source_key}:{health.state}:{health.opened_by}", severity=severity,
                 title=title, body=body, brand=brand,
                 data={"source_key": health.source_key, "state": health.state, "problem": health.problem})


def check(store, source_key: str, check: HealthCheck) -> SourceHealth:
    """Assess one source after a run; store a source-health alert if it is broken."""
    health = assess(store, source_key, check.policy)
    alert = alert_for(health, getattr(check.policy, "severity", "critical"), check.brand)
    if alert is not None:
        store.alerts.insert([alert], {RULE: list(check.channels)})
    return health


def health_check_for(settings, source) -> HealthCheck:
    """The HealthCheck for one configured source: channels from ``health.channels``, or
    every configured alert channel when that list is empty."""
    channels = list(settings.health.channels) or list(settings.alerts.channels)
    return HealthCheck(policy=settings.health, channels=channels, brand=getattr(source, "brand", None))
