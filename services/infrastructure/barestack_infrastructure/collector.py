"""Running every check at once, each with its own short timeout, and keeping the result a few seconds.

A page view or /health call reads the last snapshot: it forks nothing (systemctl, journalctl) and
calls nothing (the services' /health, PostgreSQL, Redis, Nginx) itself. A snapshot older than the
collect interval is refreshed in a background thread while the request is answered from it; one
older than ``max_age_s`` (nobody asked for a while, or a refresh hangs) is not trusted: the request
waits for a fresh one, bounded by the collection deadline. So an idle dashboard costs nothing, a
busy one runs at most one collection per interval per process, and /health never reports data
older than ``max_age_s`` as healthy.
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from barestack_common.redact import secrets_in_url

from barestack_infrastructure.backups import REDIS_STATUS_KEY, BackupStatus, read_backup_status
from barestack_infrastructure.checks.http_health import probe_health
from barestack_infrastructure.checks.nginx import probe_nginx
from barestack_infrastructure.checks.postgres import PostgresProbe
from barestack_infrastructure.checks.redis_ping import probe_redis, read_key
from barestack_infrastructure.checks.result import CheckResult, run_check
from barestack_infrastructure.settings import Settings
from barestack_infrastructure.systemd_units import SystemdReader, UnitStatus

# Display order on the page; backend, PostgreSQL and Redis down means the stack cannot run modules.
COMPONENTS = ("backend", "frontend", "postgresql", "redis", "nginx")
CRITICAL = frozenset({"backend", "postgresql", "redis"})
# Slack above the per-check timeout for connection setup, TLS, thread start.
DEADLINE_SLACK_S = 1.5


@dataclass(frozen=True)
class Snapshot:
    checks: list[CheckResult]
    units: list[UnitStatus]
    systemd_available: bool
    collected_at: float = field(default_factory=time.time)  # wall clock, when the collection ended
    max_age_s: float | None = None  # set by SnapshotCache: older than this the data is not trusted
    # The backups' state (a warning never makes the stack unhealthy); None: not read yet.
    backups: BackupStatus | None = None

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.collected_at)

    @property
    def stale(self) -> bool:
        return self.max_age_s is not None and self.age_s > self.max_age_s

    @property
    def healthy(self) -> bool:
        return not self.stale and all(check.ok for check in self.checks if check.critical)

    @property
    def collected_at_iso(self) -> str:
        return datetime.fromtimestamp(self.collected_at, UTC).isoformat(timespec="seconds")

    def to_json(self) -> dict[str, Any]:
        return {**self.live_json(), **self.fixed_json()}

    def live_json(self) -> dict[str, Any]:
        """What changes as the snapshot ages: /health computes it on every call."""
        return {
            "status": "ok" if self.healthy else "unavailable",
            "collected_at": self.collected_at_iso,
            "age_s": round(self.age_s, 1),
            "stale": self.stale,
        }

    def fixed_json(self) -> dict[str, Any]:
        """What stays as long as this snapshot does: /health encodes it once per snapshot."""
        return {
            "checks": {check.component: check.to_json() for check in self.checks},
            "systemd_available": self.systemd_available,
            "units": {unit.unit: unit.to_json() for unit in self.units},
            "backups": self.backups.to_json()
            if self.backups is not None
            else {"state": "unknown", "warning": True, "message": "not read yet"},
        }


class Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secrets = secrets_in_url(settings.database_url) + secrets_in_url(settings.redis_url)
        self.systemd = SystemdReader(settings.check_timeout_s, self.secrets)
        self.postgres = PostgresProbe(settings.database_url, settings.check_timeout_s)

    def _probes(self) -> dict[str, Any]:
        s = self.settings
        timeout = s.check_timeout_s
        return {
            "backend": lambda: probe_health(s.backend_url, timeout),
            "frontend": lambda: probe_health(s.frontend_url, timeout),
            "postgresql": self.postgres.probe,
            "redis": lambda: probe_redis(s.redis_url, timeout, s.runs_stream),
            "nginx": lambda: probe_nginx(s.nginx_status_url, s.nginx_url, timeout),
        }

    @property
    def deadline_s(self) -> float:
        """The longest a collection may take: systemctl, then journalctl, plus slack."""
        return self.settings.check_timeout_s * 2 + DEADLINE_SLACK_S

    def snapshot(self) -> Snapshot:
        """Collect now (every check concurrently), within ``deadline_s``."""
        s = self.settings
        pool = ThreadPoolExecutor(max_workers=len(COMPONENTS) + 2, thread_name_prefix="barestack-check")
        try:
            futures = {
                name: pool.submit(run_check, name, name in CRITICAL, probe, self.secrets)
                for name, probe in self._probes().items()
            }
            units_future = pool.submit(self.systemd.units, self.settings.units)
            backups_future = pool.submit(
                read_backup_status,
                self.settings.backup_status_file,
                self.settings.database_url,
                fetch=self.postgres.fetch,  # no file here: the database's copy, on the kept session
                # ... and a Redis host of its own keeps its snapshots' status in Redis.
                read_key=lambda: read_key(s.redis_url, s.check_timeout_s, REDIS_STATUS_KEY),
            )
            wait([*futures.values(), units_future, backups_future], timeout=self.deadline_s)
            checks = [
                futures[name].result()
                if futures[name].done()
                else CheckResult(name, False, name in CRITICAL, "timed out", {"error": "no answer in time"})
                for name in COMPONENTS
            ]
            units = (
                units_future.result()
                if units_future.done()
                else [
                    UnitStatus(unit, known=False, problem="systemd did not answer in time")
                    for unit in self.settings.units
                ]
            )
            path = self.settings.backup_status_file
            if not backups_future.done():
                backups = BackupStatus("invalid", path, "reading the backup status timed out")
            elif backups_future.exception() is not None:  # a bug in the reader must not cost the checks
                error = backups_future.exception()
                backups = BackupStatus("invalid", path, f"reading the backup status failed: {error!r}")
            else:
                backups = backups_future.result()
        finally:
            # A check stuck past its deadline finishes in the background; the page does not wait for it.
            pool.shutdown(wait=False, cancel_futures=True)
        return Snapshot(checks, units, self.systemd.available(), backups=backups)


class SnapshotCache:
    """The last snapshot of one process, refreshed in the background at most once per interval."""

    def __init__(self, collector: Collector, interval_s: float, max_age_s: float) -> None:
        self.collector = collector
        self.interval_s = interval_s
        self.max_age_s = max_age_s
        self.collections = 0  # how many collections this process ran (tests, diagnostics)
        self._cond = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._taken = 0.0  # monotonic time of the last collection
        self._refreshing = False
        self._finished = 0  # refreshes ended, successful or not: what a waiting request waits on
        self._pid = os.getpid()

    def _refresh(self) -> None:
        try:
            fresh = self.collector.snapshot()
        except Exception:  # a collector bug must not leave the flag set forever
            fresh = None
        with self._cond:
            if fresh is not None:
                self._snapshot = replace(fresh, max_age_s=self.max_age_s)
                self._taken = time.monotonic()
                self.collections += 1
            self._refreshing = False
            self._finished += 1
            self._cond.notify_all()

    def _start_refresh(self) -> None:
        # Called with the lock held.
        if not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh, name="barestack-collect", daemon=True).start()

    def get(self) -> Snapshot:
        with self._cond:
            if self._pid != os.getpid():  # a forked child: the parent's snapshot and thread are not ours
                self._snapshot, self._refreshing, self._pid = None, False, os.getpid()
            age = time.monotonic() - self._taken
            if self._snapshot is not None and age <= self.interval_s:
                return self._snapshot
            self._start_refresh()
            if self._snapshot is not None and age <= self.max_age_s:
                return self._snapshot
            # Nothing recent enough to answer with: wait for the collection, bounded.
            deadline = time.monotonic() + self.collector.deadline_s + DEADLINE_SLACK_S
            finished = self._finished
            while self._finished == finished and time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            if self._snapshot is not None:
                return self._snapshot
            settings = self.collector.settings
            problem = {"error": "the first collection has not finished"}
            return Snapshot(
                [
                    CheckResult(name, False, name in CRITICAL, "not checked yet", problem)
                    for name in COMPONENTS
                ],
                [UnitStatus(unit, known=False, problem="not read yet") for unit in settings.units],
                self.collector.systemd.available(),
                collected_at=time.time(),
            )
