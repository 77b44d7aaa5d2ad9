"""The worker's settings, read from the environment (its env file and its unit's Environment=)."""

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from barestack_common import env

from barestack_backend.module_runner import SANDBOX_SYSTEMD, SANDBOXES, UNIT_PREFIX
from barestack_backend.settings import (
    DEFAULT_RUN_MODULE,
    DEFAULT_RUNS_GROUP,
    DEFAULT_RUNS_STREAM,
    POSTGRES_SCHEMES,
    REDIS_SCHEMES,
)

DEFAULT_RUN_TIMEOUT_S = 300.0
DEFAULT_CLAIM_IDLE_MS = 60_000
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_STOP_GRACE_S = 20.0
DEFAULT_RUN_SLICE = "barestack-run-w.slice"


@dataclass(frozen=True)
class WorkerSettings:
    database_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    worker_name: str
    run_module_path: Path = Path(DEFAULT_RUN_MODULE)
    runs_stream: str = DEFAULT_RUNS_STREAM
    runs_group: str = DEFAULT_RUNS_GROUP
    run_timeout_s: float = DEFAULT_RUN_TIMEOUT_S
    # A run whose stream entry nobody touched for this long is taken over by another worker.
    # The worker running it touches it every third of this, so only dead workers lose runs.
    claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # On SIGTERM the current run may finish within this time; after it, it is handed back.
    # Keep it below systemd's TimeoutStopSec (90 s by default).
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    # How long one read for new runs blocks. A new run ends it at once; a stop (SIGTERM) waits for
    # it, so it bounds how long an idle worker takes to stop, which every deploy's worker restart
    # waits for (2 s made that the longest step of a small deploy). An idle worker then asks
    # Redis twice a second, which costs Redis nothing worth measuring.
    block_ms: int = 500
    # "systemd": each run is a transient sandboxed unit (systemd-run); "none": a plain child
    # process (no systemd: the service tests). Both give the module an allowlisted environment.
    run_sandbox: str = SANDBOX_SYSTEMD
    # The slice this worker's run units go into; it is stopped when the worker starts (and by the
    # worker unit's ExecStopPost=), so the runs of a dead worker never outlive it.
    run_slice: str = DEFAULT_RUN_SLICE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "WorkerSettings":
        environ = os.environ if environ is None else environ
        return cls(
            database_url=env.url(
                environ, "DATABASE_URL", POSTGRES_SCHEMES, "e.g. postgresql://user:password@127.0.0.1:5432/db"
            ),
            redis_url=env.url(environ, "REDIS_URL", REDIS_SCHEMES, "e.g. redis://:password@127.0.0.1:6379/0"),
            worker_name=env.optional(
                environ, "BARESTACK_WORKER_NAME", f"{socket.gethostname()}-{os.getpid()}"
            ),
            run_module_path=Path(env.optional(environ, "BARESTACK_RUN_MODULE", DEFAULT_RUN_MODULE)),
            runs_stream=env.optional(environ, "BARESTACK_RUNS_STREAM", DEFAULT_RUNS_STREAM),
            runs_group=env.optional(environ, "BARESTACK_RUNS_GROUP", DEFAULT_RUNS_GROUP),
            run_timeout_s=env.positive_number(environ, "BARESTACK_RUN_TIMEOUT", DEFAULT_RUN_TIMEOUT_S),
            claim_idle_ms=env.positive_int(environ, "BARESTACK_CLAIM_IDLE_MS", DEFAULT_CLAIM_IDLE_MS),
            max_attempts=env.positive_int(environ, "BARESTACK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
            stop_grace_s=env.positive_number(environ, "BARESTACK_STOP_GRACE", DEFAULT_STOP_GRACE_S),
            run_sandbox=_choice(environ, "BARESTACK_RUN_SANDBOX", SANDBOXES, SANDBOX_SYSTEMD),
            run_slice=_slice(environ, "BARESTACK_RUN_SLICE", DEFAULT_RUN_SLICE),
        )


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.optional(environ, name, default)
    if value not in choices:
        raise env.ConfigError(f"environment variable {name} must be one of: {', '.join(choices)}")
    return value


def _slice(environ: Mapping[str, str], name: str, default: str) -> str:
    """A slice under barestack-run.slice, so the polkit rule (barestack-run-*) lets the worker stop it."""
    value = env.optional(environ, name, default)
    stem = value.removesuffix(".slice")
    if not (
        value.endswith(".slice")
        and stem.startswith(UNIT_PREFIX)
        and stem[len(UNIT_PREFIX) :].replace("-", "").isalnum()
        and stem.isascii()
    ):
        raise env.ConfigError(
            f"environment variable {name} must name a slice like barestack-run-w1.slice, got {value!r}"
        )
    return value
