#!/usr/bin/env python3
"""barestack-backup: PostgreSQL backups (pgBackRest), Redis snapshots, their status, restores, drills.

Installed by the backup role as /usr/local/sbin/barestack-backup and run by its systemd timers and
playbooks, as root. It reads its settings from /etc/barestack-backup/config.json (0600, written by
the role) and writes a status file for the dashboard (world-readable, no secrets) after every run.

  barestack-backup pg-backup --type full|diff|incr   a pgBackRest backup (fails loudly: exit 1)
  barestack-backup redis-snapshot                    BGSAVE, wait for it, keep a dated copy
  barestack-backup check                             pgbackrest check (archiving works end to end)
  barestack-backup status                            refresh and print the status file
  barestack-backup list                              backups and snapshots as JSON
  barestack-backup redis-restore [--target-time T]   put back the newest snapshot taken at or before T
  barestack-backup drill                             restore into a scratch cluster and compare

With a backup host (config "remote"), pgBackRest's repository lives there (repo1-host): backups run
on it through SSH (pgBackRest's rule: a backup runs where the repository is), and every Redis
snapshot is also copied there. SSH always checks the host key the role pinned (never accept-new).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIG_PATH = Path(os.environ.get("BARESTACK_BACKUP_CONFIG", "/etc/barestack-backup/config.json"))
SNAPSHOT_PREFIX = "redis-"
SNAPSHOT_SUFFIX = ".rdb"
STATUS_FORMAT = 2


class BackupError(Exception):
    """A step failed; the message says which and why (never a secret)."""


# --- small helpers ------------------------------------------------------------------------------


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


def from_epoch(seconds: float | int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


def parse_time(text: str) -> dt.datetime:
    """'YYYY-MM-DD HH:MM:SS+00' (pgBackRest's target form) or ISO 8601, with an offset."""
    value = text.strip().replace(" ", "T", 1)
    if len(value) >= 3 and value[-3] in "+-" and value[-3:].lstrip("+-").isdigit():
        value += ":00"
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise BackupError(f"time {text!r} needs an offset, e.g. '2026-01-31 12:00:00+00'")
    return moment


def load_config() -> dict[str, Any]:
    try:
        return json.loads(CONFIG_PATH.read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"cannot read {CONFIG_PATH}: {error}") from error


def run(command: list[str], *, user: str | None = None, timeout: float | None = None) -> str:
    """Run a command (as `user` through runuser); raise with its last stderr lines on failure."""
    full = ["runuser", "-u", user, "--", *command] if user else command
    try:
        done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise BackupError(f"{command[0]} timed out after {timeout:.0f}s") from error
    if done.returncode != 0:
        tail = " | ".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-4:])
        raise BackupError(f"{' '.join(command[:3])} exited {done.returncode}: {tail}")
    return done.stdout


def write_json_atomic(path: Path, data: Any, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, mode)
    os.replace(handle.name, path)


@contextlib.contextmanager
def locked(path: Path):  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- Redis: a minimal RESP client over the unix socket (no password in any process env) ---------


class Redis:
    def __init__(self, socket_path: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(socket_path)
        except OSError as error:
            raise BackupError(f"cannot connect to Redis at {socket_path}: {error}") from error
        self.buffer = b""
        self.call("AUTH", user, password)

    def close(self) -> None:
        self.sock.close()

    def call(self, *parts: str) -> Any:
        payload = f"*{len(parts)}\r\n".encode()
        for part in parts:
            data = part.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(payload)
        reply = self._reply()
        if isinstance(reply, RedisReplyError):
            raise BackupError(f"Redis {parts[0]}: {reply}")
        return reply

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BackupError("Redis closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BackupError("Redis closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
        return data

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisReplyError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if rest == "-1" else self._exact(int(rest)).decode()
        if kind == b"*":
            return None if rest == "-1" else [self._reply() for _ in range(int(rest))]
        raise BackupError(f"unexpected Redis reply {line[:40]!r}")


class RedisReplyError(str):
    pass


def redis_connect(config: dict[str, Any]) -> Redis:
    redis = config["redis"]
    password = Path(redis["password_file"]).read_text().strip()
    return Redis(redis["socket"], redis["user"], password)


def redis_info(client: Redis, section: str) -> dict[str, str]:
    text = client.call("INFO", section)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))
    return {key: value.strip() for key, value in pairs}


def redis_config_get(client: Redis, name: str) -> str:
    reply = client.call("CONFIG", "GET", name)
    return reply[1] if reply and len(reply) == 2 else ""


# --- status file -------------------------------------------------------------------------------


def read_status(config: dict[str, Any]) -> dict[str, Any]:
    try:
        status = json.loads(Path(config["status_file"]).read_text())
        return status if status.get("format") == STATUS_FORMAT else {}
    except (OSError, ValueError):
        return {}


def age_seconds(text: str | None, at: dt.datetime) -> int | None:
    return int((at - dt.datetime.fromisoformat(text)).total_seconds()) if text else None


def pg_info(config: dict[str, Any]) -> dict[str, Any]:
    output = run(
        ["pgbackrest", f"--stanza={config['postgresql']['stanza']}", "--output=json", "info"],
        user="postgres",
        timeout=120,
    )
    stanzas = json.loads(output)
    return stanzas[0] if stanzas else {}


def pg_backups(config: dict[str, Any], info: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    info = pg_info(config) if info is None else info
    backups = []
    for backup in info.get("backup", []):
        repo = backup.get("info", {}).get("repository", {})
        backups.append(
            {
                "label": backup.get("label"),
                "type": backup.get("type"),
                "started_at": iso(from_epoch(backup.get("timestamp", {}).get("start"))),
                "finished_at": iso(from_epoch(backup.get("timestamp", {}).get("stop"))),
                "database_size_bytes": backup.get("info", {}).get("size"),
                "backup_size_bytes": backup.get("info", {}).get("delta"),
                "repo_size_bytes": repo.get("delta"),
                "wal_start": backup.get("archive", {}).get("start"),
                "wal_stop": backup.get("archive", {}).get("stop"),
                "error": bool(backup.get("error", False)),
            }
        )
    return backups


def pg_archiver(config: dict[str, Any]) -> dict[str, Any]:
    query = (
        "SELECT coalesce(last_archived_wal, ''),"
        " coalesce(extract(epoch FROM last_archived_time)::bigint::text, ''),"
        " coalesce(last_failed_wal, ''), coalesce(extract(epoch FROM last_failed_time)::bigint::text, ''),"
        " failed_count, archived_count,"
        " (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') FROM pg_stat_archiver"
    )
    port = str(config["postgresql"]["port"])
    line = run(
        ["psql", "-XAt", "-F", "|", "-p", port, "-d", "postgres", "-c", query], user="postgres", timeout=30
    )
    wal, at, failed_wal, failed_at, failed_count, archived_count, segment = line.strip().split("|")
    return {
        "last_archived_wal": wal or None,
        "last_archived_at": iso(from_epoch(int(at))) if at else None,
        "last_failed_wal": failed_wal or None,
        "last_failed_at": iso(from_epoch(int(failed_at))) if failed_at else None,
        "failed_count": int(failed_count),
        "archived_count": int(archived_count),
        # A WAL file is one segment (pgBackRest compresses and encrypts it in the repository).
        "size_bytes": int(segment),
    }


def redis_snapshots(config: dict[str, Any]) -> list[dict[str, Any]]:
    directory = Path(config["redis"]["snapshot_dir"])
    snapshots = []
    for path in sorted(directory.glob(f"{SNAPSHOT_PREFIX}*{SNAPSHOT_SUFFIX}")):
        stamp = path.name[len(SNAPSHOT_PREFIX) : -len(SNAPSHOT_SUFFIX)]
        try:
            taken = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        snapshots.append({"file": str(path), "taken_at": iso(taken), "size_bytes": path.stat().st_size})
    return snapshots


BACKUP_TYPES = ("full", "diff", "incr")


def thresholds(config: dict[str, Any]) -> dict[str, float]:
    """The role's warning thresholds (backup_warn_*), as written into config.json."""
    limits = config["thresholds"]
    return {key: float(limits[key]) for key in ("full_hours", "diff_hours", "redis_hours", "archive_minutes")}


def duration(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    seconds = (dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(started)).total_seconds()
    return round(seconds, 1)


def pg_types(pg: dict[str, Any], good: list[dict[str, Any]], at: dt.datetime) -> dict[str, Any]:
    """Per backup type: the newest good backup (time, duration, size) and the last run (ok or not).

    `incr` appears only once the repository holds one or one ran (the timers take full and diff)."""
    runs = pg.get("runs") or {}
    types: dict[str, Any] = {}
    for kind in BACKUP_TYPES:
        newest = next((backup for backup in reversed(good) if backup["type"] == kind), None)
        if kind == "incr" and newest is None and kind not in runs:
            continue
        last_good = None
        if newest:
            last_good = {
                "label": newest["label"],
                "started_at": newest["started_at"],
                "finished_at": newest["finished_at"],
                "duration_seconds": duration(newest["started_at"], newest["finished_at"]),
                "size_bytes": newest["repo_size_bytes"],
                "database_size_bytes": newest["database_size_bytes"],
            }
        types[kind] = {
            "last_good": last_good,
            "age_seconds": age_seconds(last_good["finished_at"], at) if last_good else None,
            "last_run": runs.get(kind),
        }
    return types


def refresh_status(config: dict[str, Any], updates: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge `updates` into the status file, recompute what derives from the host, write it."""
    with locked(Path(config["status_file"] + ".lock")):
        status = read_status(config)
        for part, values in (updates or {}).items():
            section = status.setdefault(part, {})
            for key, value in values.items():
                if key in ("runs", "archive") and isinstance(value, dict):
                    section.setdefault(key, {}).update(value)
                else:
                    section[key] = value
        at = now()
        limits = thresholds(config)
        warnings: list[str] = []
        if config["postgresql"]["enabled"]:
            pg = status.setdefault("postgresql", {})
            pg["stanza"] = config["postgresql"]["stanza"]
            pg["repository"] = config["postgresql"].get("repository", "local")
            good: list[dict[str, Any]] = []
            try:
                info = pg_info(config)
                state = info.get("status", {})
                # pgbackrest info exits 0 when it cannot reach the repository (e.g. the backup host is
                # down: status 99) and lists no backup; 2 is "no valid backup yet", a readable repository.
                if state.get("code", 0) not in (0, 2):
                    repos = [repo.get("status") or {} for repo in info.get("repo") or []]
                    detail = "; ".join(str(repo.get("message")) for repo in repos if repo.get("code"))
                    raise BackupError(detail or str(state.get("message")))
                good = [backup for backup in pg_backups(config, info) if not backup["error"]]
                pg["backups_count"] = len(good)
                pg["last_good_backup"] = good[-1] if good else None
                pg["repository_error"] = None if state.get("code", 0) == 0 else state.get("message")
                if pg["repository_error"]:
                    warnings.append(f"postgresql: backup repository: {pg['repository_error']}")
            except (BackupError, ValueError) as error:
                pg["repository_error"] = str(error)
                warnings.append(f"postgresql: cannot read the backup repository: {error}")
                # The types keep what the last readable repository said; runs stay as recorded.
                good = [
                    entry["last_good"] | {"type": kind, "repo_size_bytes": entry["last_good"]["size_bytes"]}
                    for kind, entry in (pg.get("types") or {}).items()
                    if entry.get("last_good")
                ]
                good.sort(key=lambda backup: backup["finished_at"])
            try:
                pg.setdefault("archive", {}).update(pg_archiver(config))
            except (BackupError, ValueError) as error:
                warnings.append(f"postgresql: cannot read pg_stat_archiver: {error}")
            types = pg["types"] = pg_types(pg, good, at)
            last = pg.get("last_good_backup")
            pg["last_good_backup_age_seconds"] = age_seconds(last["finished_at"], at) if last else None
            full_age = types["full"]["age_seconds"]
            if full_age is None:
                warnings.append("postgresql: no backup yet")
            elif full_age > limits["full_hours"] * 3600:
                warnings.append(f"postgresql: last good full backup is {full_age // 3600} h old")
            daily = [entry["age_seconds"] for entry in types.values() if entry["age_seconds"] is not None]
            if daily and min(daily) > limits["diff_hours"] * 3600:
                warnings.append(f"postgresql: last good backup of any type is {min(daily) // 3600} h old")
            for kind, entry in types.items():
                failed = entry.get("last_run") or {}
                if failed.get("ok") is False:
                    warnings.append(f"postgresql: last {kind} backup run failed: {failed.get('error')}")
            archive = pg.get("archive", {})
            archive_age = age_seconds(archive.get("last_archived_at"), at)
            archive["age_seconds"] = archive_age
            failed_at = archive.get("last_failed_at")
            failing = bool(failed_at and failed_at > (archive.get("last_archived_at") or ""))
            archive["ok"] = not failing and archive.get("check_ok") is not False
            if archive_age is None:
                warnings.append("postgresql: no WAL archived yet")
            elif archive_age > limits["archive_minutes"] * 60:
                warnings.append(f"postgresql: last WAL archived {archive_age // 60} min ago")
            if failing:
                warnings.append(f"postgresql: WAL archiving is failing (last failure {failed_at})")
            if archive.get("check_ok") is False:
                warnings.append(f"postgresql: last archive check failed: {archive.get('check_error')}")
        if config["redis"]["enabled"]:
            rd = status.setdefault("redis", {})
            snapshots = redis_snapshots(config)
            rd["snapshots_count"] = len(snapshots)
            newest = snapshots[-1] if snapshots else None
            if newest:
                # Duration and the copy on the backup host come from the run that took this snapshot.
                good_run = rd.get("last_good_run") or {}
                result = good_run.get("result") or {}
                same = result.get("taken_at") == newest["taken_at"]
                newest = newest | {
                    "duration_seconds": good_run.get("duration_seconds") if same else None,
                    "remote_copy": result.get("remote_copy") if same else None,
                }
            rd["last_good_snapshot"] = newest
            snap_age = age_seconds(newest["taken_at"], at) if newest else None
            rd["last_good_snapshot_age_seconds"] = snap_age
            if snap_age is None:
                warnings.append("redis: no snapshot yet")
            elif snap_age > limits["redis_hours"] * 3600:
                warnings.append(f"redis: last snapshot is {snap_age // 3600} h old")
            if rd.get("last_run", {}).get("ok") is False:
                warnings.append(f"redis: last snapshot run failed: {rd['last_run'].get('error')}")
        if status.get("drill", {}).get("last_run", {}).get("ok") is False:
            warnings.append(f"drill: last restore drill failed: {status['drill']['last_run'].get('error')}")
        status.update(
            {
                "format": STATUS_FORMAT,
                "host": socket.gethostname(),
                "updated_at": iso(at),
                "thresholds": limits,
                "warnings": warnings,
                "ok": not warnings,
            }
        )
        write_json_atomic(Path(config["status_file"]), status, 0o644)
        return status


def record_run(
    config: dict[str, Any], part: str, kind: str, started: dt.datetime, error: str | None, result: Any = None
) -> None:
    finished = now()
    result = result if isinstance(result, dict) else None
    run_record = {
        "kind": kind,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_seconds": round((finished - started).total_seconds(), 1),
        "ok": error is None,
        "error": error,
        "size_bytes": (result or {}).get("repo_size_bytes", (result or {}).get("size_bytes")),
        "result": result,
    }
    update: dict[str, Any] = {"last_run": run_record}
    if part == "postgresql":
        update["runs"] = {kind: run_record}
    if error is None:
        update["last_good_run"] = run_record
    try:
        refresh_status(config, {part: update})
    except Exception as status_error:
        print(f"warning: could not write the status file: {status_error}", file=sys.stderr)


# --- the backup host (remote repository) over SSH --------------------------------------------------


def remote(config: dict[str, Any]) -> dict[str, Any] | None:
    return config.get("remote") or None


def ssh_command(config: dict[str, Any], *, as_postgres: bool) -> list[str]:
    """ssh to the backup host with its pinned host key; postgres's or root's copy of the key pair."""
    far = config["remote"]
    key, known = (
        (far["postgres_key"], far["postgres_known_hosts"])
        if as_postgres
        else (far["key"], far["known_hosts"])
    )
    return [
        "ssh",
        "-i",
        key,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={far.get('connect_timeout', 15)}",
        "-p",
        str(far["port"]),
        f"{far['user']}@{far['host']}",
    ]


def ssh_run(
    config: dict[str, Any], remote_command: str, *, stdin_path: Path | None = None, timeout: float = 600
) -> str:
    """Run a shell command on the backup host as its backup user (root's key); raise on failure."""
    command = [*ssh_command(config, as_postgres=False), remote_command]
    try:
        with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
            done = subprocess.run(command, stdin=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise BackupError(f"ssh to the backup host timed out after {timeout:.0f}s") from error
    if done.returncode != 0:
        tail = " | ".join(done.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise BackupError(f"backup host {config['remote']['host']}: ssh exited {done.returncode}: {tail}")
    return done.stdout.decode(errors="replace")


def remote_snapshots(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The Redis snapshots kept on the backup host (names carry their UTC time)."""
    directory = config["remote"]["redis_dir"]
    listing = ssh_run(config, f"ls -1 {directory}", timeout=60)
    snapshots = []
    for name in sorted(listing.split()):
        if not (name.startswith(SNAPSHOT_PREFIX) and name.endswith(SNAPSHOT_SUFFIX)):
            continue
        stamp = name[len(SNAPSHOT_PREFIX) : -len(SNAPSHOT_SUFFIX)]
        try:
            taken = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        where = f"{directory}/{name}"
        file = f"{config['remote']['name']}:{where}"
        snapshots.append({"file": file, "remote_file": where, "taken_at": iso(taken), "name": name})
    return snapshots


def copy_snapshot_to_backup_host(config: dict[str, Any], snapshot: Path) -> dict[str, Any]:
    """Copy a snapshot to the backup host (temporary name, then rename), expire old copies there."""
    directory = config["remote"]["redis_dir"]
    name = snapshot.name
    ssh_run(
        config,
        f"set -e; umask 077; cd {directory}; cat > .partial-{name}; mv .partial-{name} {name}",
        stdin_path=snapshot,
    )
    cutoff = now() - dt.timedelta(days=float(config["redis"]["retention_days"]))
    far = remote_snapshots(config)
    if not any(item["name"] == name for item in far):
        raise BackupError(f"the copy of {name} is not on the backup host after it was written")
    old = [item["remote_file"] for item in far[:-1] if dt.datetime.fromisoformat(item["taken_at"]) < cutoff]
    if old:
        ssh_run(config, "rm -f -- " + " ".join(old), timeout=60)
    return {"remote_copy": f"{config['remote']['name']}:{directory}/{name}", "remote_expired": old}


# --- commands ----------------------------------------------------------------------------------


def cmd_pg_backup(config: dict[str, Any], backup_type: str) -> dict[str, Any]:
    stanza = config["postgresql"]["stanza"]
    backup = ["pgbackrest", f"--stanza={stanza}", f"--type={backup_type}", "backup"]
    if remote(config):
        # pgBackRest runs a backup where the repository is: on the backup host, which reads this
        # cluster back over SSH (pg1-host). A lost backup host fails here, loudly.
        run([*ssh_command(config, as_postgres=True), *backup], user="postgres")
    else:
        run(backup, user="postgres")
    last = pg_backups(config)[-1]
    return {"postgresql": last}


def cmd_check(config: dict[str, Any]) -> dict[str, Any]:
    """pgbackrest check: forces a WAL switch and waits until that WAL is in the repository.

    Its duration is the time from a switch to the archived WAL (the status file's archive duration)."""
    started = now()
    try:
        run(
            ["pgbackrest", f"--stanza={config['postgresql']['stanza']}", "check"],
            user="postgres",
            timeout=300,
        )
    except BackupError as error:
        archive = {
            "check_ok": False,
            "check_error": str(error),
            "checked_at": iso(started),
            "duration_seconds": round((now() - started).total_seconds(), 1),
        }
        refresh_status(config, {"postgresql": {"archive": archive}})
        raise
    archive = {
        "check_ok": True,
        "check_error": None,
        "checked_at": iso(started),
        "duration_seconds": round((now() - started).total_seconds(), 1),
    }
    refresh_status(config, {"postgresql": {"archive": archive}})
    return {"check": "ok", "duration_seconds": archive["duration_seconds"]}


def cmd_redis_snapshot(config: dict[str, Any]) -> dict[str, Any]:
    client = redis_connect(config)
    try:
        directory = Path(redis_config_get(client, "dir"))
        source = directory / redis_config_get(client, "dbfilename")
        before = int(client.call("LASTSAVE"))
        if before >= int(time.time()):  # LASTSAVE has 1 s resolution: make the next save tell apart
            time.sleep(1.1)
        reply = client.call("BGSAVE")
        deadline = time.monotonic() + float(config["redis"]["bgsave_timeout"])
        while True:
            persistence = redis_info(client, "persistence")
            lastsave = int(client.call("LASTSAVE"))
            idle = persistence.get("rdb_bgsave_in_progress") == "0"
            if idle and lastsave != before:
                if persistence.get("rdb_last_bgsave_status") != "ok":
                    raise BackupError(
                        f"BGSAVE failed (rdb_last_bgsave_status={persistence.get('rdb_last_bgsave_status')})"
                    )
                break
            if idle and persistence.get("rdb_last_bgsave_status") not in (None, "ok"):
                raise BackupError(f"BGSAVE failed after {reply!r} (rdb_last_bgsave_status=err)")
            if time.monotonic() > deadline:
                raise BackupError(f"BGSAVE did not finish within {config['redis']['bgsave_timeout']} s")
            time.sleep(0.2)
    finally:
        client.close()
    taken = from_epoch(lastsave) or now()
    target_dir = Path(config["redis"]["snapshot_dir"])
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = target_dir / f"{SNAPSHOT_PREFIX}{taken:%Y%m%dT%H%M%SZ}{SNAPSHOT_SUFFIX}"
    digest = hashlib.sha256()
    # Redis writes the RDB to a temporary file and renames it: the file opened here stays whole.
    with open(source, "rb") as reader:
        if reader.read(5) != b"REDIS":
            raise BackupError(f"{source} is not an RDB file")
        reader.seek(0)
        with tempfile.NamedTemporaryFile("wb", dir=target_dir, prefix=".partial-", delete=False) as writer:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    os.chmod(writer.name, 0o600)
    os.replace(writer.name, target)
    removed = expire_redis_snapshots(config)
    result = {
        "file": str(target),
        "taken_at": iso(taken),
        "size_bytes": target.stat().st_size,
        "sha256": digest.hexdigest(),
        "expired": removed,
        "remote_copy": None,
    }
    if remote(config):
        try:
            result |= copy_snapshot_to_backup_host(config, target)
        except BackupError as error:
            raise BackupError(
                f"snapshot {target} kept on this host, but not copied to the backup host: {error}"
            ) from error
    return {"redis": result}


def expire_redis_snapshots(config: dict[str, Any]) -> list[str]:
    """Drop snapshots older than the retention, but always keep the newest one."""
    cutoff = now() - dt.timedelta(days=float(config["redis"]["retention_days"]))
    snapshots = redis_snapshots(config)
    removed = []
    for snapshot in snapshots[:-1]:
        if dt.datetime.fromisoformat(snapshot["taken_at"]) < cutoff:
            Path(snapshot["file"]).unlink()
            removed.append(snapshot["file"])
    return removed


def cmd_redis_restore(config: dict[str, Any], target_time: str | None, dry_run: bool) -> dict[str, Any]:
    snapshots = redis_snapshots(config)
    if remote(config):
        # After a lost disk only the backup host has them: those not here can be fetched.
        here = {dt.datetime.fromisoformat(snap["taken_at"]) for snap in snapshots}
        far = [
            snap
            for snap in remote_snapshots(config)
            if dt.datetime.fromisoformat(snap["taken_at"]) not in here
        ]
        snapshots = sorted(snapshots + far, key=lambda snap: snap["taken_at"])
    if target_time:
        limit = parse_time(target_time)
        snapshots = [snap for snap in snapshots if dt.datetime.fromisoformat(snap["taken_at"]) <= limit]
    if not snapshots:
        raise BackupError("no Redis snapshot" + (f" taken at or before {target_time}" if target_time else ""))
    chosen = snapshots[-1]
    client = redis_connect(config)
    try:
        settings = {
            name: redis_config_get(client, name)
            for name in ("dir", "dbfilename", "appendonly", "appenddirname", "appendfilename")
        }
    finally:
        client.close()
    plan = {"snapshot": chosen, "appendonly": settings["appendonly"]}
    if dry_run:
        return {"redis_restore": plan, "dry_run": True}
    if "remote_file" in chosen:
        target_dir = Path(config["redis"]["snapshot_dir"])
        target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fetched = target_dir / chosen["name"]
        with tempfile.NamedTemporaryFile("wb", dir=target_dir, prefix=".fetch-", delete=False) as writer:
            command = [*ssh_command(config, as_postgres=False), f"cat {chosen['remote_file']}"]
            done = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, timeout=600, check=False)
        if done.returncode != 0:
            os.unlink(writer.name)
            raise BackupError(
                f"cannot fetch {chosen['remote_file']} from the backup host: {done.stderr.decode()[-300:]}"
            )
        os.chmod(writer.name, 0o600)
        os.replace(writer.name, fetched)
        chosen = {"file": str(fetched), "taken_at": chosen["taken_at"], "fetched_from": chosen["remote_file"]}
        plan["snapshot"] = chosen
    directory = Path(settings["dir"])
    redis_user = pwd.getpwnam("redis")
    run(["systemctl", "stop", config["redis"]["unit"]], timeout=120)

    def place(source: str, dest: Path) -> None:
        temporary = dest.with_name(f".{dest.name}.restore")
        shutil.copyfile(source, temporary)
        os.chown(temporary, redis_user.pw_uid, redis_user.pw_gid)
        os.chmod(temporary, 0o660)
        os.replace(temporary, dest)

    place(chosen["file"], directory / settings["dbfilename"])
    if settings["appendonly"] == "yes":
        # Redis 7+ reads a multi-part AOF whose base may be an RDB: the snapshot becomes that base,
        # with an empty increment, so Redis starts from exactly the snapshot.
        aof_dir = directory / (settings["appenddirname"] or "appendonlydir")
        name = settings["appendfilename"] or "appendonly.aof"
        if aof_dir.exists():
            shutil.rmtree(aof_dir)
        aof_dir.mkdir(mode=0o750)
        os.chown(aof_dir, redis_user.pw_uid, redis_user.pw_gid)
        place(chosen["file"], aof_dir / f"{name}.1.base.rdb")
        incr = aof_dir / f"{name}.1.incr.aof"
        incr.write_bytes(b"")
        manifest = aof_dir / f"{name}.manifest"
        manifest.write_text(f"file {name}.1.base.rdb seq 1 type b\nfile {name}.1.incr.aof seq 1 type i\n")
        for path in (incr, manifest):
            os.chown(path, redis_user.pw_uid, redis_user.pw_gid)
            os.chmod(path, 0o660)
    run(["systemctl", "start", config["redis"]["unit"]], timeout=120)
    deadline = time.monotonic() + 60
    while True:
        try:
            client = redis_connect(config)
            loading = redis_info(client, "persistence").get("loading")
            keys = client.call("DBSIZE")
            client.close()
            if loading == "0":
                break
        except (BackupError, OSError):
            pass
        if time.monotonic() > deadline:
            raise BackupError("Redis did not come back within 60 s after the restore")
        time.sleep(0.5)
    return {"redis_restore": plan | {"keys_in_db0": keys}}


def cmd_list(config: dict[str, Any], target_time: str | None = None) -> dict[str, Any]:
    """Backups and snapshots; with a target time, also which backup a restore to it starts from."""
    result: dict[str, Any] = {}
    if config["postgresql"]["enabled"]:
        info = pg_info(config)
        backups = [backup for backup in pg_backups(config, info) if not backup["error"]]
        result["postgresql"] = {
            "stanza": config["postgresql"]["stanza"],
            "status": info.get("status", {}).get("message"),
            "wal_min": (info.get("archive") or [{}])[0].get("min"),
            "wal_max": (info.get("archive") or [{}])[0].get("max"),
            "backups": backups,
        }
        if target_time and not backups:
            raise BackupError("the repository holds no backup to restore from")
        if target_time:
            # A point in time is reachable from a backup that ended before it, and not in the future.
            target = parse_time(target_time)
            usable = [b for b in backups if dt.datetime.fromisoformat(b["finished_at"]) <= target]
            if not usable:
                raise BackupError(
                    f"{target_time} is before the end of the oldest backup ({backups[0]['finished_at']}):"
                    " no backup can restore to it"
                )
            if target > now():
                raise BackupError(f"{target_time} is in the future (for the latest state, give no target)")
            result["postgresql"]["restore_from"] = usable[-1]["label"]
    if config["redis"]["enabled"]:
        result["redis"] = {
            "snapshot_dir": config["redis"]["snapshot_dir"],
            "snapshots": redis_snapshots(config),
        }
    return result


def cmd_drill(config: dict[str, Any]) -> dict[str, Any]:
    """Restore the latest backup into a scratch cluster on another port and compare it with the live one."""
    pg = config["postgresql"]
    drill = config["drill"]
    scratch = Path(drill["path"])
    bindir = f"/usr/lib/postgresql/{pg['version']}/bin"
    started = time.monotonic()
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(mode=0o700)
    postgres = pwd.getpwnam("postgres")
    os.chown(scratch, postgres.pw_uid, postgres.pw_gid)
    ctl = [f"{bindir}/pg_ctl", "-D", str(scratch), "-w", "-t", "600"]
    try:
        # archive-mode=off: the scratch cluster must never push WAL into the real repository.
        run(
            [
                "pgbackrest",
                f"--stanza={pg['stanza']}",
                f"--pg1-path={scratch}",
                "--archive-mode=off",
                "--type=immediate",
                "--target-action=promote",
                "restore",
            ],
            user="postgres",
        )
        (scratch / "postgresql.conf").write_text("# barestack restore drill: scratch cluster\n")
        (scratch / "pg_hba.conf").write_text("local all postgres peer\n")
        (scratch / "pg_ident.conf").write_text("")
        for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
            os.chown(scratch / name, postgres.pw_uid, postgres.pw_gid)
        options = (
            f"-c port={drill['port']} -c listen_addresses='' -c unix_socket_directories='{scratch}'"
            # max_connections and the like keep the primary's values: recovery refuses lower ones.
            " -c archive_mode=off -c shared_buffers=32MB"
            f" -c hba_file='{scratch}/pg_hba.conf' -c ident_file='{scratch}/pg_ident.conf'"
        )
        try:
            run([*ctl, "-o", options, "-l", str(scratch / "drill.log"), "start"], user="postgres")
        except BackupError as error:
            log = (scratch / "drill.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise BackupError(f"{error}; server log: {' | '.join(log)}") from error
        deadline = time.monotonic() + 600
        query = ["psql", "-XAt", "-h", str(scratch), "-p", str(drill["port"]), "-d", pg["database"]]
        while run([*query, "-c", "SELECT pg_is_in_recovery()"], user="postgres").strip() != "f":
            if time.monotonic() > deadline:
                raise BackupError("the scratch cluster stayed in recovery")
            time.sleep(1)
        restored = run([*query, "-c", drill["count_query"]], user="postgres").strip()
        live_query = ["psql", "-XAt", "-p", str(pg["port"]), "-d", pg["database"], "-c", drill["count_query"]]
        live = run(live_query, user="postgres").strip()
        if not restored:
            raise BackupError(f"the restored cluster answered nothing to {drill['count_query']!r}")
        elapsed = round(time.monotonic() - started, 1)
        return {
            "drill": {
                "restored": restored,
                "live": live,
                "matches_live": restored == live,
                "seconds": elapsed,
                "port": drill["port"],
                "path": str(scratch),
            }
        }
    finally:
        with contextlib.suppress(BackupError):
            run([*ctl, "-m", "fast", "stop"], user="postgres")
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="barestack-backup", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("pg-backup", help="a pgBackRest backup")
    backup.add_argument("--type", choices=["full", "diff", "incr"], required=True)
    commands.add_parser("redis-snapshot", help="a consistent Redis snapshot, kept dated")
    commands.add_parser("check", help="pgbackrest check: WAL archiving works end to end")
    commands.add_parser("status", help="refresh and print the status file")
    listing = commands.add_parser("list", help="backups and snapshots, as JSON")
    listing.add_argument("--target-time", help="also check that a restore can reach this time")
    restore = commands.add_parser("redis-restore", help="put back a Redis snapshot (stops and starts Redis)")
    restore.add_argument("--target-time", help="the newest snapshot taken at or before this time")
    restore.add_argument("--dry-run", action="store_true", help="only say which snapshot it would put back")
    commands.add_parser("drill", help="restore into a scratch cluster on another port and report")
    arguments = parser.parse_args()

    try:
        config = load_config()
    except BackupError as error:
        print(f"barestack-backup: {error}", file=sys.stderr)
        return 2
    started = now()
    part, kind = {
        "pg-backup": ("postgresql", getattr(arguments, "type", "")),
        "redis-snapshot": ("redis", "snapshot"),
        "drill": ("drill", "drill"),
    }.get(arguments.command, ("", ""))
    try:
        if arguments.command == "pg-backup":
            result = cmd_pg_backup(config, arguments.type)
        elif arguments.command == "redis-snapshot":
            result = cmd_redis_snapshot(config)
        elif arguments.command == "check":
            result = cmd_check(config)
        elif arguments.command == "status":
            result = refresh_status(config)
        elif arguments.command == "list":
            result = cmd_list(config, arguments.target_time)
        elif arguments.command == "redis-restore":
            result = cmd_redis_restore(config, arguments.target_time, arguments.dry_run)
        else:
            result = cmd_drill(config)
    except (BackupError, OSError, ValueError, KeyError) as error:
        message = f"{type(error).__name__}: {error}" if not isinstance(error, BackupError) else str(error)
        if part:
            record_run(config, part, kind, started, message)
        print(f"barestack-backup {arguments.command}: FAILED: {message}", file=sys.stderr)
        return 1
    if part:
        record_run(config, part, kind, started, None, result.get(part))
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
