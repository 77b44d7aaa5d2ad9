"""Reading runs straight from PostgreSQL, to check what the services stored rather than what they say."""

import time
from typing import Any

import psycopg2
import psycopg2.extras


def fetch_run(database_url: str, run_id: str) -> dict[str, Any] | None:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT * FROM barestack.runs WHERE id = %s", (run_id,))
            row = cur.fetchone()
            return dict(row) if row else None
    finally:
        conn.close()


def count_runs(database_url: str) -> int:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM barestack.runs")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def wait_for_run(database_url: str, run_id: str, condition: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    """Poll until ``condition(row)`` holds; fails with the last row seen."""
    deadline = time.monotonic() + timeout_s
    row = None
    while time.monotonic() < deadline:
        row = fetch_run(database_url, run_id)
        if row is not None and condition(row):
            return row
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach the expected state in {timeout_s} s; last: {row}")
