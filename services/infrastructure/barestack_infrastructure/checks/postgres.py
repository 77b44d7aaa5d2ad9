"""PostgreSQL: ``SELECT 1`` within the check timeout, on a session kept between collections.

The chart sampler reads the runs table on the same session (``fetch``), under the same timeout.

Keeping the session spares the server a fork and a SCRAM exchange every few seconds. A kept
session the server has hung up on (restart, terminate) has something to read while idle: it is
replaced by a new one, so a restarted PostgreSQL shows as up again at the next collection.
"""

import threading
from collections.abc import Sequence
from typing import Any

import psycopg2
import psycopg2.extensions
from barestack_common.pg import idle_and_usable


class PostgresProbe:
    def __init__(self, database_url: str, timeout_s: float) -> None:
        self.database_url = database_url
        self.timeout_s = timeout_s
        self._conn: psycopg2.extensions.connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg2.extensions.connection:
        if not idle_and_usable(self._conn):
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = psycopg2.connect(
                self.database_url,
                connect_timeout=max(1, round(self.timeout_s)),  # libpq takes whole seconds
                application_name="barestack-infrastructure",
                options=f"-c statement_timeout={int(self.timeout_s * 1000)}",
            )
            self._conn.autocommit = True
        return self._conn

    def probe(self) -> tuple[bool, str, dict[str, Any]]:
        # One collection at a time per process uses the session; a probe stuck past the
        # collection's deadline keeps the lock, and the next one then waits here: it times out
        # in the collector and shows as down, which is what a hanging server is.
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchone()
            except psycopg2.Error:
                conn.close()
                self._conn = None
                raise
            version = conn.server_version  # e.g. 150014
            return True, "up", {"server_version": f"{version // 10000}.{version % 10000}"}

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement on the kept session; a failure drops the session."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    return list(cur.fetchall())
            except psycopg2.Error:
                conn.close()
                self._conn = None
                raise
