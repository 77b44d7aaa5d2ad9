"""SQL for the API side of runs: create (within a quota), read, list, delete old ones."""

import uuid
from collections.abc import Sequence

from psycopg2.extras import Json, RealDictCursor

from barestack_backend.run_model import COLUMNS, FAILED, QUEUED, RUNNING, SUMMARY_COLUMNS, Run


def active_runs_of(cur: RealDictCursor, requested_by: str) -> int:
    """How many queued or running runs ``requested_by`` has, counted under a per-identity lock.

    The transaction-scoped advisory lock makes count-then-insert atomic for one identity (two
    concurrent requests cannot both take the last slot); it is released at commit or rollback.
    The lock comes first, in a statement of its own, so the count's snapshot sees every insert
    committed by whoever held the lock before.
    """
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('barestack.runs/' || %s, 0))", (requested_by,))
    cur.execute(
        "SELECT count(*) AS n FROM barestack.runs WHERE requested_by = %s AND status IN (%s, %s)",
        (requested_by, QUEUED, RUNNING),
    )
    return int(cur.fetchone()["n"])


def insert_queued(
    cur: RealDictCursor,
    service: str,
    module: str,
    args: Sequence[str],
    requested_by: str | None = None,
    requested_via: str | None = None,
) -> Run:
    cur.execute(
        "INSERT INTO barestack.runs (id, service, module, args, status, requested_by, requested_via) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
        (str(uuid.uuid4()), service, module, Json(list(args)), QUEUED, requested_by, requested_via),
    )
    return Run.from_row(cur.fetchone())


def delete_older_than(cur: RealDictCursor, days: int, batch: int) -> int:
    """Delete up to ``batch`` runs created more than ``days`` days ago that are not running.

    Finished runs and runs that stayed queued that long both go; a running one is left to its
    worker. Batches keep each transaction (and its locks) short on a big table.
    """
    cur.execute(
        "DELETE FROM barestack.runs WHERE id IN (SELECT id FROM barestack.runs "
        "WHERE created_at < now() - make_interval(days => %s) AND status <> %s LIMIT %s)",
        (days, RUNNING, batch),
    )
    return cur.rowcount


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


# The newest run of every module that has runs, walking the (service, module, created_at DESC)
# index: the first entry past the previous module is the next module's newest run, so each step
# is one index descent. The cost grows with the modules that have runs, not with the history, and
# the statement carries no list of names (a 400-module catalogue made it a 400-element literal).
_LATEST_PER_MODULE = (
    "WITH RECURSIVE latest AS ("
    f"(SELECT {SUMMARY_COLUMNS} FROM barestack.runs ORDER BY service, module, created_at DESC LIMIT 1) "
    "UNION ALL "
    f"SELECT n.* FROM latest AS l CROSS JOIN LATERAL (SELECT {SUMMARY_COLUMNS} FROM barestack.runs AS r "
    "WHERE (r.service, r.module) > (l.service, l.module) "
    "ORDER BY r.service, r.module, r.created_at DESC LIMIT 1) AS n) "
    "SELECT * FROM latest"
)


def last_run_per_module(cur: RealDictCursor, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Run]:
    """The newest run of each (service, module) in ``keys`` (modules never run are left out)."""
    if not keys:
        return {}
    wanted = set(keys)
    cur.execute(_LATEST_PER_MODULE)
    found = {}
    for row in cur.fetchall():
        key = (row["service"], row["module"])
        if key in wanted:
            found[key] = Run.from_row(row)
    return found
