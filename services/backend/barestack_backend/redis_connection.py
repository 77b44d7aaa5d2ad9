"""Creating Redis clients with short timeouts, so an outage fails a request instead of hanging it.

Each client owns one connection pool (redis-py re-creates it in a forked child), so a process keeps
its Redis connections open across requests. A connection found dead (Redis restarted) is retried
once at once on a new one; redis-py's default of ten retries with back-off would instead hold a
request, and /health, for seconds while Redis is down.
"""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_S = 2.0


def connect(url: str, socket_timeout_s: float = 3.0, max_connections: int | None = None) -> redis.Redis:
    pool = redis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=socket_timeout_s,
        decode_responses=True,
        health_check_interval=30,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 1),
    )
    return redis.Redis(connection_pool=pool)
