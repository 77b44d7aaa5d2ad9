"""Redis: PING, plus the length of the runs stream (work not yet done by the workers)."""

from typing import Any

import redis


def probe_redis(redis_url: str, timeout_s: float, runs_stream: str) -> tuple[bool, str, dict[str, Any]]:
    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True
    )
    try:
        client.ping()
        return True, "up", {"runs_stream_length": int(client.xlen(runs_stream))}
    finally:
        client.close()
