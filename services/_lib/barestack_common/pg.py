"""PostgreSQL sessions kept between requests (the backend's pool, the dashboard's probe).

Only for services whose venv has psycopg2 (backend, infrastructure); modules do not import it.
"""

import select

import psycopg2
import psycopg2.extensions


def idle_and_usable(conn: psycopg2.extensions.connection | None) -> bool:
    """True when a kept connection can take a query: open, outside a transaction, nothing unread."""
    if conn is None or conn.closed:
        return False
    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.Error):
        return False
    # Neither service LISTENs, so anything readable on an idle connection is the server hanging up
    # (a restart, a terminated backend): the caller replaces the connection.
    return not readable
