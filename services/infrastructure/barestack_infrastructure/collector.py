"""Running every check at once, each with its own short timeout, so the page costs one timeout at most."""

from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from barestack_common.redact import secrets_in_url

from barestack_infrastructure.checks.http_health import probe_health
from barestack_infrastructure.checks.nginx import probe_nginx
from barestack_infrastructure.checks.postgres import probe_postgres
from barestack_infrastructure.checks.redis_ping import probe_redis
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

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks if check.critical)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "unavailable",
            "checks": {check.component: check.to_json() for check in self.checks},
            "systemd_available": self.systemd_available,
            "units": {unit.unit: unit.to_json() for unit in self.units},
        }


class Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secrets = secrets_in_url(settings.database_url) + secrets_in_url(settings.redis_url)
        self.systemd = SystemdReader(settings.check_timeout_s, self.secrets)

    def _probes(self) -> dict[str, Any]:
        s = self.settings
        timeout = s.check_timeout_s
        return {
            "backend": lambda: probe_health(s.backend_url, timeout),
            "frontend": lambda: probe_health(s.frontend_url, timeout),
            "postgresql": lambda: probe_postgres(s.database_url, timeout),
            "redis": lambda: probe_redis(s.redis_url, timeout, s.runs_stream),
            "nginx": lambda: probe_nginx(s.nginx_status_url, s.nginx_url, timeout),
        }

    def snapshot(self) -> Snapshot:
        pool = ThreadPoolExecutor(max_workers=len(COMPONENTS) + 1, thread_name_prefix="barestack-check")
        try:
            futures = {
                name: pool.submit(run_check, name, name in CRITICAL, probe, self.secrets)
                for name, probe in self._probes().items()
            }
            units_future = pool.submit(self.systemd.units, self.settings.units)
            deadline = self.settings.check_timeout_s * 2 + DEADLINE_SLACK_S  # systemctl, then journalctl
            wait([*futures.values(), units_future], timeout=deadline)
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
        finally:
            # A check stuck past its deadline finishes in the background; the page does not wait for it.
            pool.shutdown(wait=False, cancel_futures=True)
        return Snapshot(checks, units, self.systemd.available())
