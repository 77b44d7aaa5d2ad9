"""A module run as stored in ``barestack.runs`` and as the API returns it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMEOUT = "timeout"
FINISHED_STATUSES = frozenset({SUCCEEDED, FAILED, TIMEOUT})

COLUMNS = (
    "id, service, module, args, status, exit_code, duration_ms, stdout_tail, stderr_tail, "
    "attempts, worker, created_at, started_at, finished_at, requested_by, requested_via"
)
# Lists leave out the output tails (up to 2 x 4 KB per run) to stay small.
SUMMARY_COLUMNS = (
    "id, service, module, args, status, exit_code, duration_ms, attempts, worker, created_at, started_at, "
    "finished_at, requested_by, requested_via"
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Run:
    id: str
    service: str
    module: str
    args: list[str]
    status: str
    exit_code: int | None
    duration_ms: int | None
    attempts: int
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stdout_tail: str | None = None
    stderr_tail: str | None = None
    # Who asked for it (a token's name or a person's); via: the token a person acted through.
    requested_by: str | None = None
    requested_via: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Run":
        return cls(
            id=str(row["id"]),
            service=row["service"],
            module=row["module"],
            args=list(row["args"]),
            status=row["status"],
            exit_code=row["exit_code"],
            duration_ms=row["duration_ms"],
            attempts=row["attempts"],
            worker=row["worker"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            stdout_tail=row.get("stdout_tail"),
            stderr_tail=row.get("stderr_tail"),
            requested_by=row.get("requested_by"),
            requested_via=row.get("requested_via"),
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "module": self.module,
            "args": self.args,
            "status": self.status,
            "exit_code": self.exit_code,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "worker": self.worker,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "requested_by": self.requested_by,
            "requested_via": self.requested_via,
        }
        if self.stdout_tail is not None or self.stderr_tail is not None:
            document["stdout_tail"] = self.stdout_tail or ""
            document["stderr_tail"] = self.stderr_tail or ""
        return document
