"""The dashboard's settings, read from the environment (systemd's EnvironmentFile in production)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from barestack_common import env, log_setup
from barestack_common.auth import AuthSettings
from barestack_common.http_client import SUPPORTED_SCHEMES

from barestack_infrastructure.backups import DEFAULT_STATUS_FILE

DEFAULT_UNITS = ("barestack-backend", "barestack-worker", "barestack-frontend", "barestack-infrastructure")
DEFAULT_NGINX_URL = "http://127.0.0.1/"
DEFAULT_CHECK_TIMEOUT_S = 2.0
DEFAULT_RUNS_STREAM = "barestack:runs"
# Seconds a snapshot is served before a request starts a background refresh.
DEFAULT_COLLECT_INTERVAL_S = 2.0
# The charts' resolution: seconds between two samples of the services' /metrics and the runs table.
DEFAULT_SAMPLE_INTERVAL_S = 10.0
# The Redis sorted set holding the charts' last hour (and, beside it, <key>:last and <key>:slot:*).
DEFAULT_METRICS_KEY = "barestack:infra:samples"


def _units(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get("BARESTACK_UNITS", "").strip()
    if not raw:
        return DEFAULT_UNITS
    units = tuple(unit.strip() for unit in raw.split(",") if unit.strip())
    for unit in units:
        # Unit names go on a command line (systemctl/journalctl): only systemd's own name characters.
        if unit.startswith("-") or not all(c.isalnum() or c in "-_.@:\\" for c in unit):
            raise env.ConfigError(f"environment variable BARESTACK_UNITS has an invalid unit name: {unit!r}")
    return units


def _sample_interval(environ: Mapping[str, str]) -> float:
    value = env.positive_number(environ, "BARESTACK_SAMPLE_INTERVAL", DEFAULT_SAMPLE_INTERVAL_S)
    # Between 1 s (a write a second is plenty) and 5 min (an hour of fewer than 12 points says little).
    if not 1 <= value <= 300:
        raise env.ConfigError(
            "environment variable BARESTACK_SAMPLE_INTERVAL must be between 1 and 300 seconds"
        )
    return value


def _metrics_key(environ: Mapping[str, str]) -> str:
    key = env.optional(environ, "BARESTACK_METRICS_KEY", DEFAULT_METRICS_KEY)
    if not all(c.isalnum() or c in ":_-." for c in key):
        raise env.ConfigError(
            "environment variable BARESTACK_METRICS_KEY may hold letters, digits and : _ - . only"
        )
    return key


def _backup_status_file(environ: Mapping[str, str]) -> str:
    path = env.optional(environ, "BARESTACK_BACKUP_STATUS_FILE", DEFAULT_STATUS_FILE)
    if not path.startswith("/"):
        raise env.ConfigError("environment variable BARESTACK_BACKUP_STATUS_FILE must be an absolute path")
    return path


@dataclass(frozen=True)
class Settings:
    backend_url: str
    frontend_url: str
    database_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    nginx_status_url: str | None = None
    nginx_url: str = DEFAULT_NGINX_URL
    units: tuple[str, ...] = DEFAULT_UNITS
    check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S
    runs_stream: str = DEFAULT_RUNS_STREAM
    collect_interval_s: float = DEFAULT_COLLECT_INTERVAL_S
    sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S
    metrics_key: str = DEFAULT_METRICS_KEY
    # The backup role's status file (on the database host); missing elsewhere, and shown as such.
    backup_status_file: str = DEFAULT_STATUS_FILE
    # Who may see the page and /metrics: operators of the accounts file, by the frontend's login cookie.
    auth: AuthSettings = field(default_factory=AuthSettings)
    # Requests at least this slow get a journal line (server errors always do): barestack_common.request_log.
    slow_request_s: float = log_setup.DEFAULT_SLOW_REQUEST_S

    @property
    def max_age_s(self) -> float:
        """Data older than this is not served as current: requests wait for a new collection."""
        return self.collect_interval_s * 2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        nginx_status = environ.get("NGINX_STATUS_URL", "").strip()
        return cls(
            backend_url=env.url(
                environ, "BACKEND_URL", SUPPORTED_SCHEMES, "e.g. http://127.0.0.1:5000"
            ).rstrip("/"),
            frontend_url=env.url(
                environ, "FRONTEND_URL", SUPPORTED_SCHEMES, "e.g. http://127.0.0.1:3000"
            ).rstrip("/"),
            database_url=env.url(
                environ,
                "DATABASE_URL",
                ("postgresql", "postgres"),
                "e.g. postgresql://user:password@127.0.0.1:5432/db",
            ),
            redis_url=env.url(
                environ, "REDIS_URL", ("redis", "rediss", "unix"), "e.g. redis://:password@127.0.0.1:6379/0"
            ),
            nginx_status_url=env.url(environ, "NGINX_STATUS_URL", ("http", "https"), "")
            if nginx_status
            else None,
            nginx_url=env.url(environ, "NGINX_URL", ("http", "https"), "")
            if environ.get("NGINX_URL", "").strip()
            else DEFAULT_NGINX_URL,
            units=_units(environ),
            check_timeout_s=env.positive_number(environ, "BARESTACK_CHECK_TIMEOUT", DEFAULT_CHECK_TIMEOUT_S),
            runs_stream=env.optional(environ, "BARESTACK_RUNS_STREAM", DEFAULT_RUNS_STREAM),
            collect_interval_s=env.positive_number(
                environ, "BARESTACK_COLLECT_INTERVAL", DEFAULT_COLLECT_INTERVAL_S
            ),
            sample_interval_s=_sample_interval(environ),
            metrics_key=_metrics_key(environ),
            backup_status_file=_backup_status_file(environ),
            auth=AuthSettings.from_env(environ),
            slow_request_s=log_setup.slow_request_seconds(environ),
        )
