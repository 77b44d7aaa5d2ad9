"""PostgreSQL access: a per-process pool that keeps its connections open between requests.

Opening a connection costs a fork on the server plus a SCRAM exchange (several milliseconds), far
more than the queries the API runs, so connections handed back are kept, not closed. A kept
connection can go stale (PostgreSQL restarted, backend terminated): checking one out first asks
the kernel whether the server has said anything on it while it sat idle. A healthy idle connection
has nothing to read, a dead one has its end-of-file or the server's termination notice; such a
connection is closed and replaced before the request uses it, so a restart costs no 500.
"""

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from barestack_common.pg import idle_and_usable
from barestack_common.redact import describe_error, secrets_in_url

CONNECT_TIMEOUT_S = 2  # also bounds /health when the server is gone
STATEMENT_TIMEOUT_MS = 5000
DEFAULT_MAX_CONNECTIONS = 4
# How long a request waits for a free connection when every one is busy before it gets an error.
CHECKOUT_TIMEOUT_S = 5.0


class PoolExhausted(psycopg2.OperationalError):
    """Every connection of the pool stayed busy for CHECKOUT_TIMEOUT_S."""


def pool_size_from_env(default: int = DEFAULT_MAX_CONNECTIONS) -> int:
    """``BARESTACK_DB_POOL_SIZE`` (the role sets gunicorn's threads per worker: one connection each)."""
    raw = os.environ.get("BARESTACK_DB_POOL_SIZE", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


class Database:
    """Connections for one process, opened on demand and kept up to ``max_connections``.

    The pool is emptied after a fork (gunicorn forks its workers) without closing the parent's
    connections, because a libpq connection must never be shared between processes.
    """

    def __init__(
        self, url: str, application_name: str, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        self._url = url
        self._application_name = application_name
        self._max_connections = max(1, max_connections)
        self._lock = threading.Lock()
        self._idle: list[psycopg2.extensions.connection] = []
        self._slots = threading.BoundedSemaphore(self._max_connections)
        self._pid = os.getpid()
        self.opened = 0  # connections opened by this process: what the pool exists to keep low

    def _connect(self, timeout_s: int, statement_timeout_ms: int) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(
            self._url,
            connect_timeout=timeout_s,
            application_name=self._application_name,
            options=f"-c statement_timeout={statement_timeout_ms}",
        )
        self.opened += 1
        return conn

    def _after_fork(self) -> None:
        # Called with the lock held. The parent's sockets are left alone (closing them here would
        # send a Terminate on the parent's session), only forgotten.
        if self._pid != os.getpid():
            self._idle = []
            self._slots = threading.BoundedSemaphore(self._max_connections)
            self.opened = 0
            self._pid = os.getpid()

    def _checkout(self) -> tuple[psycopg2.extensions.connection, threading.BoundedSemaphore]:
        with self._lock:
            self._after_fork()
            slots = self._slots
        if not slots.acquire(timeout=CHECKOUT_TIMEOUT_S):
            raise PoolExhausted(f"all {self._max_connections} database connections stayed busy")
        try:
            while True:
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return self._connect(CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_MS), slots
                if idle_and_usable(conn):
                    return conn, slots
                conn.close()  # stale: the server restarted or ended the session; try the next
        except BaseException:
            slots.release()
            raise

    def _checkin(
        self, conn: psycopg2.extensions.connection, slots: threading.BoundedSemaphore, broken: bool
    ) -> None:
        keep = not broken and not conn.closed and os.getpid() == self._pid
        if keep:
            with self._lock:
                keep = slots is self._slots
                if keep:
                    self._idle.append(conn)
        if not keep and not conn.closed:
            conn.close()
        slots.release()

    @contextmanager
    def cursor(self, autocommit: bool = False) -> Iterator[psycopg2.extras.RealDictCursor]:
        """A cursor inside one transaction: committed on success, rolled back on error.

        ``autocommit=True`` is for a single read: no BEGIN and COMMIT around it, which are two of
        the three round trips a one-statement read would otherwise cost.
        """
        conn, slots = self._checkout()
        broken = False
        try:
            conn.autocommit = autocommit
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                yield cur
            if not autocommit:
                conn.commit()
        except BaseException as error:
            broken = isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError)
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            raise
        finally:
            # A connection that failed at the network level is dropped so the next request reconnects.
            self._checkin(conn, slots, broken)

    def check(self) -> None:
        """Prove PostgreSQL answers now: ``SELECT 1`` on a pooled connection, one round trip.

        A stale pooled connection is replaced at checkout, and a new one must connect within
        CONNECT_TIMEOUT_S, so a stopped server fails this at once and a restarted one passes at once.
        """
        with self.cursor(autocommit=True) as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = (self._idle, []) if self._pid == os.getpid() else ([], [])
        for conn in idle:
            conn.close()


def report_cli_error(error: psycopg2.Error, database_url: str) -> int:
    """A command-line tool's database failure: one line on stderr, never the URL's password; exit 1."""
    reason = describe_error(error, secrets_in_url(database_url))
    print(f"error: database: {reason['error']}: {reason['message']}", file=sys.stderr)
    return 1
