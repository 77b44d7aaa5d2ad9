"""PostgreSQL access: a small per-process connection pool and a fresh-connection health check."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5000
HEALTH_TIMEOUT_S = 2


class Database:
    """Connections for one process.

    The pool is created on first use and re-created after a fork (gunicorn forks its workers),
    because a libpq connection must never be shared between processes.
    """

    def __init__(self, url: str, application_name: str, max_connections: int = 4) -> None:
        self._url = url
        self._application_name = application_name
        self._max_connections = max_connections
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()

    def _connect_kwargs(self, timeout_s: int, statement_timeout_ms: int) -> dict[str, object]:
        return {
            "connect_timeout": timeout_s,
            "application_name": self._application_name,
            "options": f"-c statement_timeout={statement_timeout_ms}",
        }

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = psycopg2.pool.ThreadedConnectionPool(
                    0,
                    self._max_connections,
                    self._url,
                    **self._connect_kwargs(CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_MS),
                )
                self._pool_pid = os.getpid()
            return self._pool

    @contextmanager
    def cursor(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        """A cursor inside one transaction: committed on success, rolled back on error."""
        pool = self._get_pool()
        conn = pool.getconn()
        broken = False
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                yield cur
            conn.commit()
        except BaseException as error:
            broken = isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError)
            if not conn.closed:
                conn.rollback()
            raise
        finally:
            # A connection that failed at the network level is dropped so the next request reconnects.
            pool.putconn(conn, close=broken or bool(conn.closed))

    def check(self) -> None:
        """Prove PostgreSQL answers, on a fresh connection so a stale pooled one cannot hide an outage."""
        conn = psycopg2.connect(self._url, **self._connect_kwargs(HEALTH_TIMEOUT_S, HEALTH_TIMEOUT_S * 1000))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.closeall()
            self._pool = None
