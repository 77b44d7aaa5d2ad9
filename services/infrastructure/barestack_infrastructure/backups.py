"""The backups' state, read from the status file the backup role writes (format 1) on the database host.

Read by the background collector only (never per page view). A missing, unreadable or malformed file is
a state to show, never an exception. Format 1 keeps the newest good backup and the last backup run, not
one of each type: the last full is that backup when it is a full, else the full a differential builds on
(its time read from the differential's pgBackRest label, ``YYYYMMDD-HHMMSSF_...D``, host time, UTC on
barestack hosts); a run's result is known for the type of the last run only.
"""

import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_STATUS_FILE = "/var/lib/barestack/backup-status.json"
STATUS_FORMAT = 1
MAX_BYTES = 1_000_000  # the real file is a few kB; anything this big is not it
FULL_MAX_AGE = timedelta(days=8)  # a full runs weekly
DIFF_MAX_AGE = timedelta(days=2)  # a differential (or a full) runs daily
SNAPSHOT_MAX_AGE = timedelta(days=2)  # a Redis snapshot runs daily
KINDS = ("full", "diff", "check", "drill", "redis")
TITLES = {
    "full": "PostgreSQL: last full backup",
    "diff": "PostgreSQL: last differential backup",
    "check": "PostgreSQL: last archive check",
    "drill": "PostgreSQL: last restore drill",
    "redis": "Redis: last snapshot",
}
# The backup job's warnings that the rules here already cover (roles/backup/files/barestack_backup.py).
COVERED_WARNINGS = (
    "postgresql: no backup yet",
    "postgresql: last good backup is",
    "postgresql: last backup run failed",
    "postgresql: last archive check failed",
    "redis: no snapshot yet",
    "redis: last snapshot is",
    "redis: last snapshot run failed",
    "drill: last restore drill failed",
)
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class BackupEntry:
    kind: str
    last_success_at: datetime | None  # the newest good backup/check/drill/snapshot of this kind
    run_ok: bool | None  # the last run of this kind, when the file tells it
    run_at: datetime | None = None
    error: str | None = None
    detail: str = ""  # e.g. the backup label, or why the time is unknown

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def age_s(self, now: datetime | None = None) -> float | None:
        if self.last_success_at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.last_success_at).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {
            "last_success_at": _iso(self.last_success_at),
            "age_s": None if (age := self.age_s()) is None else round(age),
            "last_run_ok": self.run_ok,
            "last_run_at": _iso(self.run_at),
            "error": self.error,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class BackupStatus:
    state: str  # "ok", "warning", "missing" (no file: not a database host), "invalid" (unreadable, malformed)
    path: str
    message: str = ""
    host: str | None = None
    updated_at: datetime | None = None
    entries: dict[str, BackupEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # why the state is "warning" or "invalid"

    @property
    def warning(self) -> bool:
        return self.state != "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "warning": self.warning,
            "message": self.message,
            "problems": self.problems,
            "path": self.path,
            "host": self.host,
            "updated_at": _iso(self.updated_at),
            "entries": {kind: entry.to_json() for kind, entry in self.entries.items()},
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _label_time(label: str) -> datetime:
    """The full backup's start from a pgBackRest label: ``20261127-071051F`` or ``..F_20261128-013000D``."""
    return datetime.strptime(label.split("_", 1)[0], "%Y%m%d-%H%M%SF").replace(tzinfo=UTC)


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} is not an object")
    return value


def database_host(database_url: str) -> str | None:
    """PostgreSQL's host from the dashboard's DATABASE_URL; None when it is this host (or a socket)."""
    parts = urlsplit(database_url)
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    if host.startswith("/") or host.lower() in LOCAL_HOSTS:
        return None
    # Its own name (no getfqdn: a DNS lookup could hang the collection).
    if host.lower() in {socket.gethostname().lower(), socket.gethostname().split(".")[0].lower()}:
        return None
    return host


def _missing_message(database_url: str) -> str:
    message = "no backup status on this host: backups run on the postgres host"
    host = database_host(database_url)
    if host:
        message += f" ({host}); this dashboard runs on {socket.gethostname()}, another host"
    return message


def _run(section: dict[str, Any]) -> dict[str, Any]:
    run = section.get("last_run") or {}
    if not isinstance(run, dict):
        raise ValueError("'last_run' is not an object")
    return run


def _entries(data: dict[str, Any]) -> dict[str, BackupEntry]:
    entries: dict[str, BackupEntry] = {}
    pg = _section(data, "postgresql")
    if pg:
        good = pg.get("last_good_backup") or {}
        if not isinstance(good, dict):
            raise ValueError("'last_good_backup' is not an object")
        run = _run(pg)
        run_at = _time(run.get("finished_at"))
        label = str(good.get("label") or "")
        for kind in ("full", "diff"):
            ran = run.get("kind") == kind
            run_ok = bool(run["ok"]) if ran and "ok" in run else None
            error = run.get("error") if ran else None
            at, detail = None, ""
            if good.get("type") == kind:
                at, detail = _time(good.get("finished_at")), label
            elif kind == "full" and good.get("type") in ("diff", "incr") and label:
                full_label = label.split("_", 1)[0]
                at, detail = _label_time(label), f"{full_label} (its start, from the label of {label})"
            elif kind == "diff" and good.get("type") == "full":
                detail = "none since the last full backup"
            elif not good:
                detail = "no backup yet"
            entries[kind] = BackupEntry(kind, at, run_ok, run_at if ran else None, error, detail)
        archive = _section(pg, "archive")
        check_ok = archive.get("check_ok")
        checked_at = _time(archive.get("checked_at"))
        entries["check"] = BackupEntry(
            "check",
            checked_at if check_ok is True else None,
            check_ok if isinstance(check_ok, bool) else None,
            checked_at,
            archive.get("check_error"),
            "" if checked_at else "no check yet",
        )
        drill = _run(_section(data, "drill"))
        drill_at = _time(drill.get("finished_at"))
        drill_ok = drill.get("ok") if isinstance(drill.get("ok"), bool) else None
        entries["drill"] = BackupEntry(
            "drill",
            drill_at if drill_ok else None,
            drill_ok,
            drill_at,
            drill.get("error"),
            "" if drill else "no drill yet (the scheduled drill is off by default)",
        )
    redis = _section(data, "redis")
    if redis:
        snapshot = redis.get("last_good_snapshot") or {}
        if not isinstance(snapshot, dict):
            raise ValueError("'last_good_snapshot' is not an object")
        run = _run(redis)
        entries["redis"] = BackupEntry(
            "redis",
            _time(snapshot.get("taken_at")),
            run["ok"] if isinstance(run.get("ok"), bool) else None,
            _time(run.get("finished_at")),
            run.get("error"),
            str(snapshot.get("file") or "no snapshot yet"),
        )
    return entries


def _problems(data: dict[str, Any], entries: dict[str, BackupEntry], now: datetime) -> list[str]:
    problems: list[str] = []
    full, diff, redis = entries.get("full"), entries.get("diff"), entries.get("redis")
    if full is not None and diff is not None:
        newest = max((e.last_success_at for e in (full, diff) if e.last_success_at), default=None)
        if full.last_success_at is None:
            problems.append("PostgreSQL: no full backup yet")
        elif now - full.last_success_at > FULL_MAX_AGE:
            days = (now - full.last_success_at).days
            problems.append(f"PostgreSQL: the last full backup is {days} days old")
        if newest is not None and now - newest > DIFF_MAX_AGE:
            problems.append(f"PostgreSQL: no differential or full backup for {(now - newest).days} days")
    if redis is not None:
        if redis.last_success_at is None:
            problems.append("Redis: no snapshot yet")
        elif now - redis.last_success_at > SNAPSHOT_MAX_AGE:
            problems.append(f"Redis: the last snapshot is {(now - redis.last_success_at).days} days old")
    for entry in entries.values():
        if entry.run_ok is False:
            problems.append(f"{entry.title}: failed: {entry.error or 'no message'}")
    # What else the backup job warns about (the repository, WAL archiving), as it wrote it; its own
    # age and failed-run warnings are left out: the rules above say the same, with these thresholds.
    for warning in data.get("warnings") or []:
        if isinstance(warning, str) and not warning.startswith(COVERED_WARNINGS):
            problems.append(f"backup job: {warning}")
    return problems


def read_backup_status(path: str, database_url: str, now: datetime | None = None) -> BackupStatus:
    """The file's state; never raises."""
    now = now or datetime.now(UTC)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return BackupStatus("missing", path, _missing_message(database_url))
    except OSError as error:
        reason = error.strerror or type(error).__name__
        return BackupStatus("invalid", path, f"cannot read {path}: {reason}", problems=[reason])
    try:
        if len(raw) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES} bytes")
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("format") != STATUS_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {STATUS_FORMAT}")
        entries = _entries(data)
        if not entries:
            raise ValueError("neither a 'postgresql' nor a 'redis' section")
        problems = _problems(data, entries, now)
        host = data.get("host")
        return BackupStatus(
            "warning" if problems else "ok",
            path,
            "; ".join(problems) if problems else "backups are recent and the last runs succeeded",
            host if isinstance(host, str) else None,
            _time(data.get("updated_at")),
            entries,
            problems,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        reason = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
        message = f"{path} is not a valid backup status: {reason}"
        return BackupStatus("invalid", path, message, problems=[reason])
