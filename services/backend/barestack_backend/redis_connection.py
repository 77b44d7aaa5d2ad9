"""Creating Redis clients with short timeouts, so an outage fails a request instead of hanging it."""

import redis

CONNECT_TIMEOUT_S = 2.0


def connect(url: str, socket_timeout_s: float = 3.0) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=socket_timeout_s,
        decode_responses=True,
        health_check_interval=30,
    )
