"""PostgreSQL: connect and ``SELECT 1`` within the check timeout."""

from typing import Any

import psycopg2


def probe_postgres(database_url: str, timeout_s: float) -> tuple[bool, str, dict[str, Any]]:
    timeout = max(1, round(timeout_s))  # libpq takes whole seconds
    conn = psycopg2.connect(
        database_url,
        connect_timeout=timeout,
        application_name="barestack-infrastructure",
        options=f"-c statement_timeout={int(timeout_s * 1000)}",
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        version = conn.server_version  # e.g. 150014
        return True, "up", {"server_version": f"{version // 10000}.{version % 10000}"}
    finally:
        conn.close()
