"""SQL for the API side of runs: create, read, list."""

import uuid
from collections.abc import Sequence

from psycopg2.extras import Json, RealDictCursor

from barestack_backend.run_model import COLUMNS, FAILED, QUEUED, SUMMARY_COLUMNS, Run


def insert_queued(cur: RealDictCursor, service: str, module: str, args: Sequence[str]) -> Run:
    cur.execute(
        f"INSERT INTO barestack.runs (id, service, module, args, status) VALUES (%s, %s, %s, %s, %s) "
        f"RETURNING {COLUMNS}",
        (str(uuid.uuid4()), service, module, Json(list(args)), QUEUED),
    )
    return Run.from_row(cur.fetchone())


def mark_enqueue_failed(cur: RealDictCursor, run_id: str, reason: str) -> None:
    """The row exists but its id never reached the queue: no worker will ever pick it up."""
    cur.execute(
        "UPDATE barestack.runs SET status = %s, stderr_tail = %s, finished_at = now() "
        "WHERE id = %s AND status = %s",
        (FAILED, f"[barestack] could not queue the run: {reason}", run_id, QUEUED),
    )


def get(cur: RealDictCursor, run_id: uuid.UUID | str) -> Run | None:
    cur.execute(f"SELECT {COLUMNS} FROM barestack.runs WHERE id = %s", (str(run_id),))
    row = cur.fetchone()
    return Run.from_row(row) if row else None


def latest(
    cur: RealDictCursor, limit: int, service: str | None = None, module: str | None = None
) -> list[Run]:
    if service is None or module is None:
        cur.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM barestack.runs ORDER BY created_at DESC LIMIT %s", (limit,)
        )
    else:
        cur.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM barestack.runs WHERE service = %s AND module = %s "
            "ORDER BY created_at DESC LIMIT %s",
            (service, module, limit),
        )
    return [Run.from_row(row) for row in cur.fetchall()]


def last_run_per_module(cur: RealDictCursor, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Run]:
    """The newest run of each (service, module): one index probe per module, however long the history."""
    if not keys:
        return {}
    cur.execute(
        f"SELECT r.* FROM unnest(%s::text[], %s::text[]) AS m(service, module) "
        f"CROSS JOIN LATERAL (SELECT {SUMMARY_COLUMNS} FROM barestack.runs "
        "WHERE service = m.service AND module = m.module ORDER BY created_at DESC LIMIT 1) AS r",
        ([service for service, _ in keys], [module for _, module in keys]),
    )
    return {(row["service"], row["module"]): Run.from_row(row) for row in cur.fetchall()}
