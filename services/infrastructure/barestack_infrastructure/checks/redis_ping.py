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


def read_key(redis_url: str, timeout_s: float, key: str) -> str | None:
    """One string key's value (None when absent), on a connection of its own."""
    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True
    )
    try:
        value = client.get(key)
        return value if isinstance(value, str) else None
    finally:
        client.close()
