"""Counts its own runs in Redis and measures the round trip: a liveness probe with memory.

Usage: python app.py [COUNTER_NAME]    (REDIS_URL from the environment; default counter "a-004")
An operator tool: runs started through the API get no stack credentials, so run it by hand as root
with the backend's env file: BARESTACK_ENV_FILE=/etc/barestack/backend.env run_module.sh backend/a-004
Increments barestack:counter:<COUNTER_NAME> and prints {"counter": ..., "value": n,
"ping_ms": ..., "redis_version": ...}; exits 1 if Redis cannot be reached.
"""

import re
import sys
import time

import redis
from barestack_common.module import EXIT_BAD_INPUT, MissingSettingError, emit_json, fail, require_env

COUNTER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KEY_PREFIX = "barestack:counter:"


def main(argv: list[str]) -> int:
    name = argv[0] if argv else "a-004"
    if not COUNTER_NAME_RE.match(name):
        fail(f"counter name must match {COUNTER_NAME_RE.pattern}", EXIT_BAD_INPUT)
    try:
        client = redis.Redis.from_url(require_env("REDIS_URL"), socket_timeout=5, socket_connect_timeout=5)
    except MissingSettingError as error:
        fail(str(error), EXIT_BAD_INPUT)
    try:
        started = time.perf_counter()
        client.ping()
        ping_ms = round((time.perf_counter() - started) * 1000, 3)
        value = client.incr(KEY_PREFIX + name)
        server_version = client.info("server").get("redis_version")
    except redis.RedisError as error:
        fail(f"Redis: {error}")
    finally:
        client.close()
    emit_json(
        {"counter": KEY_PREFIX + name, "value": value, "ping_ms": ping_ms, "redis_version": server_version}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
