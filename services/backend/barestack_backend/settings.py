"""The backend API's settings, read from the environment (systemd's EnvironmentFile in production)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from barestack_common import env, log_setup

DEFAULT_VENV_MAPPING = "/srv/barestack/shared/venv_mapping.json"
DEFAULT_RUN_MODULE = "/usr/local/bin/run_module.sh"
DEFAULT_RUNS_STREAM = "barestack:runs"
DEFAULT_RUNS_GROUP = "barestack-workers"
POSTGRES_SCHEMES = ("postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_RUN_QUOTA = 10
DEFAULT_MAX_ARGS_BYTES = 16384
DEFAULT_MAX_BODY_BYTES = 65536
DEFAULT_TOKEN_CACHE_S = 1.0
MAX_TOKEN_CACHE_S = 30.0
DEFAULT_ANSWER_CACHE_S = 1.0
MAX_ANSWER_CACHE_S = 30.0


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    venv_mapping_path: Path = Path(DEFAULT_VENV_MAPPING)
    run_module_path: Path = Path(DEFAULT_RUN_MODULE)
    runs_stream: str = DEFAULT_RUNS_STREAM
    runs_group: str = DEFAULT_RUNS_GROUP
    secret_key: str | None = field(default=None, repr=False)
    # Queued + running runs one identity (token, or person acting through a token) may have at once.
    run_quota: int = DEFAULT_RUN_QUOTA
    # UTF-8 bytes of all of a run's arguments together.
    max_args_bytes: int = DEFAULT_MAX_ARGS_BYTES
    # Any request body (Flask's MAX_CONTENT_LENGTH): larger ones get 413 before they are read.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Seconds a process trusts a token it checked (0: check every request): a revoked token is
    # refused within this long. It spares the token's PostgreSQL round trip on most requests.
    token_cache_s: float = DEFAULT_TOKEN_CACHE_S
    # Seconds a process reuses its encoded run listings (/modules with a token, /runs; 0: never):
    # how stale a listing may be (see barestack_backend.answer_cache).
    answer_cache_s: float = DEFAULT_ANSWER_CACHE_S
    # Requests at least this slow get a journal line (server errors always do): barestack_common.request_log.
    slow_request_s: float = log_setup.DEFAULT_SLOW_REQUEST_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        secret_key = environ.get("SECRET_KEY", "").strip() or None
        return cls(
            database_url=env.url(
                environ, "DATABASE_URL", POSTGRES_SCHEMES, "e.g. postgresql://user:password@127.0.0.1:5432/db"
            ),
            redis_url=env.url(environ, "REDIS_URL", REDIS_SCHEMES, "e.g. redis://:password@127.0.0.1:6379/0"),
            venv_mapping_path=Path(env.optional(environ, "BARESTACK_VENV_MAPPING", DEFAULT_VENV_MAPPING)),
            run_module_path=Path(env.optional(environ, "BARESTACK_RUN_MODULE", DEFAULT_RUN_MODULE)),
            runs_stream=env.optional(environ, "BARESTACK_RUNS_STREAM", DEFAULT_RUNS_STREAM),
            runs_group=env.optional(environ, "BARESTACK_RUNS_GROUP", DEFAULT_RUNS_GROUP),
            secret_key=secret_key,
            run_quota=env.positive_int(environ, "BARESTACK_RUN_QUOTA", DEFAULT_RUN_QUOTA),
            max_args_bytes=env.positive_int(environ, "BARESTACK_MAX_ARGS_BYTES", DEFAULT_MAX_ARGS_BYTES),
            max_body_bytes=env.positive_int(environ, "BARESTACK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            token_cache_s=env.seconds(
                environ, "BARESTACK_TOKEN_CACHE_SECONDS", DEFAULT_TOKEN_CACHE_S, 0, MAX_TOKEN_CACHE_S
            ),
            answer_cache_s=env.seconds(
                environ, "BARESTACK_ANSWER_CACHE_SECONDS", DEFAULT_ANSWER_CACHE_S, 0, MAX_ANSWER_CACHE_S
            ),
            slow_request_s=log_setup.slow_request_seconds(environ),
        )
