"""SQL for the worker side of runs: start an attempt, record its result, hand it back.

Every transition names the worker and the expected status in its WHERE clause, so a worker
that lost its run to another one (after stalling) cannot overwrite the newer attempt.
"""

from dataclasses import dataclass

from psycopg2.extras import RealDictCursor

from barestack_backend.run_model import COLUMNS, FAILED, QUEUED, RUNNING, Run


@dataclass(frozen=True)
class StartDecision:
    run: Run | None  # the run to execute now, or None when there is nothing to execute
    reason: str  # why not, for the log line: "started", "missing", "finished", "exhausted"


def start_attempt(cur: RealDictCursor, run_id: str, worker: str, max_attempts: int) -> StartDecision:
    cur.execute(
        "UPDATE barestack.runs SET status = %s, attempts = attempts + 1, worker = %s, started_at = now(), "
        "finished_at = NULL WHERE id = %s AND status IN (%s, %s) AND attempts < %s "
        f"RETURNING {COLUMNS}",
        (RUNNING, worker, run_id, QUEUED, RUNNING, max_attempts),
    )
    row = cur.fetchone()
    if row:
        return StartDecision(Run.from_row(row), "started")
    cur.execute("SELECT status, attempts FROM barestack.runs WHERE id = %s FOR UPDATE", (run_id,))
    current = cur.fetchone()
    if current is None:
        return StartDecision(None, "missing")
    if current["status"] not in (QUEUED, RUNNING):
        return StartDecision(None, "finished")
    # Every attempt so far died with its worker: the module probably kills it, so stop retrying.
    cur.execute(
        "UPDATE barestack.runs SET status = %s, finished_at = now(), stderr_tail = %s WHERE id = %s",
        (FAILED, f"[barestack] gave up after {current['attempts']} attempts that did not finish", run_id),
    )
    return StartDecision(None, "exhausted")


@dataclass(frozen=True)
class Result:
    status: str
    exit_code: int | None
    duration_ms: int
    stdout_tail: str
    stderr_tail: str


def record_result(cur: RealDictCursor, run_id: str, worker: str, result: Result) -> bool:
    cur.execute(
        "UPDATE barestack.runs SET status = %s, exit_code = %s, duration_ms = %s, stdout_tail = %s, "
        "stderr_tail = %s, finished_at = now() WHERE id = %s AND worker = %s AND status = %s",
        (
            result.status,
            result.exit_code,
            result.duration_ms,
            result.stdout_tail,
            result.stderr_tail,
            run_id,
            worker,
            RUNNING,
        ),
    )
    return cur.rowcount == 1


def hand_back(cur: RealDictCursor, run_id: str, worker: str) -> bool:
    """A stopping worker gives up its run: it is queued again and another worker will claim it.

    The attempt is not counted: being stopped by a deployment is not the module's fault, and
    ``max_attempts`` is there to stop retrying modules that kill their worker.
    """
    cur.execute(
        "UPDATE barestack.runs SET status = %s, worker = NULL, started_at = NULL, attempts = attempts - 1 "
        "WHERE id = %s AND worker = %s AND status = %s",
        (QUEUED, run_id, worker, RUNNING),
    )
    return cur.rowcount == 1
