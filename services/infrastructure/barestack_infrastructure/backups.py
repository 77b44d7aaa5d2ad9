"""The backups' state, read from the status file the backup role writes (format 2) on the database host.

Read by the background collector only (never per page view). A missing, unreadable or malformed file is
a state to show, never an exception. Format 2 keeps, per backup type (full, diff, incr when used), the
newest good backup and the last run, plus the last WAL archive, the last archive check, the last drill
and the newest Redis snapshot: each with its time, result, duration and size. The warning thresholds
are the role's variables (backup_warn_*), written into the file; the defaults below apply when absent.
"""

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_STATUS_FILE = "/var/lib/barestack/backup-status.json"
STATUS_FORMAT = 2
MAX_BYTES = 1_000_000  # the real file is a few kB; anything this big is not it
# The role's defaults (roles/backup/defaults/main.yml, backup_warn_*), used when the file has none.
DEFAULT_THRESHOLDS = {"full_hours": 194.0, "diff_hours": 26.0, "redis_hours": 26.0, "archive_minutes": 120.0}
KINDS = ("full", "diff", "incr", "wal", "check", "drill", "redis")
TITLES = {
    "full": "PostgreSQL: last full backup",
    "diff": "PostgreSQL: last differential backup",
    "incr": "PostgreSQL: last incremental backup",
    "wal": "PostgreSQL: last WAL archive",
    "check": "PostgreSQL: last archive check",
    "drill": "PostgreSQL: last restore drill",
    "redis": "Redis: last snapshot",
}
# The backup job's warnings that the rules here already cover (roles/backup/files/barestack_backup.py).
COVERED_WARNINGS = (
    "postgresql: no backup yet",
    "postgresql: last good full backup is",
    "postgresql: last good backup of any type is",
    "postgresql: last full backup run failed",
    "postgresql: last diff backup run failed",
    "postgresql: last incr backup run failed",
    "postgresql: last archive check failed",
    "postgresql: no WAL archived yet",
    "postgresql: last WAL archived",
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
    duration_s: float | None = None  # how long the newest good one (or the last run) took
    size_bytes: int | None = None  # its size in the repository (a WAL: the segment size)
    max_age_s: float | None = None  # older than this (the role's threshold) is a warning

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def age_s(self, now: datetime | None = None) -> float | None:
        if self.last_success_at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.last_success_at).total_seconds())

    def too_old(self, now: datetime | None = None) -> bool:
        age = self.age_s(now)
        return self.max_age_s is not None and age is not None and age > self.max_age_s

    def to_json(self) -> dict[str, Any]:
        return {
            "last_success_at": _iso(self.last_success_at),
            "age_s": None if (age := self.age_s()) is None else round(age),
            "last_run_ok": self.run_ok,
            "last_run_at": _iso(self.run_at),
            "error": self.error,
            "detail": self.detail,
            "duration_s": self.duration_s,
            "size_bytes": self.size_bytes,
            "max_age_s": self.max_age_s,
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


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return value


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} is not an object")
    return value


def _thresholds(data: dict[str, Any]) -> dict[str, float]:
    given = _object(data, "thresholds")
    limits = dict(DEFAULT_THRESHOLDS)
    for key in limits:
        value = _number(given.get(key))
        if value is not None:
            if value <= 0:
                raise ValueError(f"threshold {key} must be positive")
            limits[key] = float(value)
    return limits


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


def _backup_entry(kind: str, entry: dict[str, Any], max_age_s: float | None) -> BackupEntry:
    good, run = _object(entry, "last_good"), _object(entry, "last_run")
    ok = run.get("ok") if isinstance(run.get("ok"), bool) else None
    detail = str(good.get("label") or "")
    if not good:
        detail = "none since the last full backup" if kind == "diff" else f"no {kind} backup yet"
    return BackupEntry(
        kind,
        _time(good.get("finished_at")),
        ok,
        _time(run.get("finished_at")),
        run.get("error") if ok is False else None,
        detail,
        _number(good.get("duration_seconds") if good else run.get("duration_seconds")),
        _number(good.get("size_bytes")),
        max_age_s,
    )


def _entries(data: dict[str, Any]) -> dict[str, BackupEntry]:
    limits = _thresholds(data)
    entries: dict[str, BackupEntry] = {}
    pg = _section(data, "postgresql")
    if pg:
        types = _object(pg, "types")
        for kind in ("full", "diff", "incr"):
            if kind in types or kind != "incr":
                limit = limits["full_hours"] if kind == "full" else None  # diff: see _problems
                entries[kind] = _backup_entry(kind, _object(types, kind), limit and limit * 3600)
        archive = _section(pg, "archive")
        archive_ok = archive.get("ok") if isinstance(archive.get("ok"), bool) else None
        failed = archive_ok is False
        why = archive.get("check_error") or f"archiving failed at {archive.get('last_failed_at')}"
        entries["wal"] = BackupEntry(
            "wal",
            _time(archive.get("last_archived_at")),
            archive_ok,
            _time(archive.get("last_failed_at") if failed else archive.get("checked_at")),
            why if failed else None,
            str(archive.get("last_archived_wal") or "no WAL archived yet"),
            _number(archive.get("duration_seconds")),
            _number(archive.get("size_bytes")),
            limits["archive_minutes"] * 60,
        )
        check_ok = archive.get("check_ok")
        checked_at = _time(archive.get("checked_at"))
        entries["check"] = BackupEntry(
            "check",
            checked_at if check_ok is True else None,
            check_ok if isinstance(check_ok, bool) else None,
            checked_at,
            archive.get("check_error"),
            "" if checked_at else "no check yet",
            _number(archive.get("duration_seconds")),
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
            _number(drill.get("duration_seconds")),
        )
    redis = _section(data, "redis")
    if redis:
        snapshot = _object(redis, "last_good_snapshot")
        run = _run(redis)
        remote = snapshot.get("remote_copy")
        detail = str(snapshot.get("file") or "no snapshot yet") + (f", copied to {remote}" if remote else "")
        entries["redis"] = BackupEntry(
            "redis",
            _time(snapshot.get("taken_at")),
            run["ok"] if isinstance(run.get("ok"), bool) else None,
            _time(run.get("finished_at")),
            run.get("error"),
            detail,
            _number(snapshot.get("duration_seconds")),
            _number(snapshot.get("size_bytes")),
            limits["redis_hours"] * 3600,
        )
    return entries


def _hours(seconds: float) -> str:
    return f"{seconds / 86400:.0f} days" if seconds >= 172800 else f"{seconds / 3600:.0f} h"


def _age_problem(
    problems: list[str],
    entry: BackupEntry | None,
    now: datetime,
    missing: str,
    last: str,
    age_text: Callable[[float], str],
) -> None:
    """The one rule for a kept entry: never succeeded, or its last success is past its threshold."""
    if entry is None:
        return
    if entry.last_success_at is None:
        problems.append(missing)
    elif entry.too_old(now):
        problems.append(f"{last} is {age_text(entry.age_s(now) or 0)} old")


def _problems(data: dict[str, Any], entries: dict[str, BackupEntry], now: datetime) -> list[str]:
    problems: list[str] = []
    limits = _thresholds(data)
    full, diff = entries.get("full"), entries.get("diff")
    if full is not None and diff is not None:
        _age_problem(
            problems, full, now, "PostgreSQL: no full backup yet", "PostgreSQL: the last full backup", _hours
        )
        # The daily backup: a differential, or the full on its day (or an incremental).
        daily = [e for e in (full, diff, entries.get("incr")) if e is not None and e.last_success_at]
        newest = min((e.age_s(now) or 0 for e in daily), default=None)
        if newest is not None and newest > limits["diff_hours"] * 3600:
            problems.append(f"PostgreSQL: no differential or full backup for {_hours(newest)}")
    _age_problem(
        problems,
        entries.get("wal"),
        now,
        "PostgreSQL: no WAL archived yet",
        "PostgreSQL: the last WAL archive",
        lambda seconds: f"{seconds / 60:.0f} min",
    )
    _age_problem(
        problems, entries.get("redis"), now, "Redis: no snapshot yet", "Redis: the last snapshot", _hours
    )
    for entry in entries.values():
        if entry.run_ok is False and entry.kind != "wal":  # the check entry says why archiving fails
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
