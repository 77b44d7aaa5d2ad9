"""Part 7: backups. Full and differential backup time, restore time and repository size for a
generated database (1 GiB by default), and the RPO that WAL archiving gives.

It runs on a machine of its own (``bench-backup`` by default): it loads the database with a
gigabyte of rows and restores it, which the other parts' machine should not carry. Every time is
taken on the machine (the bench's timing wrapper around ``barestack-backup``), not over SSH.

- backup: ``barestack-backup pg-backup --type full`` (what the weekly timer runs), then a
  differential after a small write (what the daily timer runs); sizes from pgBackRest's own record
  of each backup and ``du`` of the whole repository.
- restore: ``barestack-backup drill``: the latest backup restored into an empty scratch data
  directory, the scratch cluster started, recovered to consistency and queried (what a restore after
  a lost disk does before the application starts).
- RPO: a transaction commits; the time until the WAL holding it is in the repository
  (``pg_stat_archiver.last_archived_wal`` reaches its segment). Until then, losing the host loses it:
  the newest restorable transaction is at most that old.
"""

from __future__ import annotations

import json
import shlex

from barestack_bench.hosts import Host, disk_usage_bytes, run_timed
from barestack_bench.machines import BenchMachine, write_inventory
from barestack_bench.results import Figure, PartResult, Target
from barestack_bench.session import Session, Stack

TITLE = "Backups: backup and restore time, repository size, RPO of WAL archiving"
TOOL = "/usr/local/sbin/barestack-backup"
REPOSITORY = "/var/backups/barestack/pgbackrest"
# One generated row: an id and four md5 hex strings (text that compresses like real data, not zeros).
ROW_BYTES = 176
RPO_DEADLINE_S = 300


def psql(host: Host, sql: str, *, timeout: float = 3600) -> str:
    """Run SQL as postgres in the application database; its unaligned output."""
    command = f"psql -XAt -v ON_ERROR_STOP=1 -d barestack -c {shlex.quote(sql)}"
    argv = ["runuser", "-u", "postgres", "--", "bash", "-c", command]
    return host.run(argv, timeout=timeout).stdout.strip()


def generate(host: Host, size_mb: int) -> tuple[int, float]:
    """Fill bench_backup.filler with about ``size_mb`` MiB; (database bytes, seconds it took)."""
    rows = size_mb * 1024 * 1024 // ROW_BYTES
    sql = (
        "DROP SCHEMA IF EXISTS bench_backup CASCADE; CREATE SCHEMA bench_backup;"
        " CREATE TABLE bench_backup.filler (id bigint PRIMARY KEY, a text, b text, c text, d text);"
        " INSERT INTO bench_backup.filler SELECT i, md5(i::text), md5((-i)::text), md5((i * 3)::text),"
        f" md5((i * 7)::text) FROM generate_series(1, {rows}) AS i;"
        " CREATE TABLE bench_backup.rpo (at timestamptz NOT NULL); CHECKPOINT;"
    )
    command = f"psql -XAt -v ON_ERROR_STOP=1 -d barestack -c {shlex.quote(sql)}"
    timed = run_timed(host, ["runuser", "-u", "postgres", "--", "bash", "-c", command], timeout=7200)
    size = int(psql(host, "SELECT pg_database_size('barestack')"))
    return size, timed.elapsed_s or 0.0


def backup(host: Host, kind: str) -> tuple[float, dict[str, object]]:
    """One backup through the tool the timers run; (seconds on the host, pgBackRest's record)."""
    timed = run_timed(host, [TOOL, "pg-backup", "--type", kind], timeout=7200)
    record = json.loads(timed.stdout)["postgresql"]
    return timed.elapsed_s or 0.0, record


def restore(host: Host) -> tuple[float, dict[str, object]]:
    timed = run_timed(host, [TOOL, "drill"], timeout=7200)
    return timed.elapsed_s or 0.0, json.loads(timed.stdout)["drill"]


# On the host: commit a row, note its WAL segment, wait until pg_stat_archiver has archived it.
RPO_SCRIPT = r"""
set -euo pipefail
q() { runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d barestack -c "$1"; }
q "INSERT INTO bench_backup.rpo VALUES (now())" >/dev/null
start=$(date +%s.%N)
segment=$(q "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
while :; do
  archived=$(q "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
  if [[ -n "$archived" && ! "$archived" < "$segment" ]]; then break; fi
  if (( $(date +%s) - ${start%.*} > DEADLINE )); then echo "not archived: $segment" >&2; exit 1; fi
  sleep 0.5
done
echo "$(date +%s.%N) $start $segment"
"""


def rpo_seconds(host: Host) -> float:
    script = RPO_SCRIPT.replace("DEADLINE", str(RPO_DEADLINE_S))
    line = host.run(["bash", "-c", script], timeout=RPO_DEADLINE_S + 60).stdout.strip().splitlines()[-1]
    archived, committed, _segment = line.split()
    return float(archived) - float(committed)


def run(session: Session) -> PartResult:
    result = PartResult(name="backup", title=TITLE)
    settings = session.settings
    machine = BenchMachine.create(settings.backup_machine_name, settings.release)
    try:
        inventory = write_inventory(
            session.work_dir / "inventory-backup",
            [machine.entry],
            session.project.local_group_vars,
            session.host_vars(),
        )
        stack = Stack(machine=machine, inventory=inventory)
        session.progress(f"converging {machine.name} for the backup part (not timed)")
        session.site(stack, session.default_tree(), "backup-converge")
        _measure(session, machine, result)
    finally:
        if settings.keep_machine:
            session.progress(f"keeping {machine.name} at {machine.entry.address} (--keep-machine)")
        else:
            machine.destroy()
    return result


def _measure(session: Session, host: BenchMachine, result: PartResult) -> None:
    settings = session.settings
    size, generate_s = generate(host, settings.backup_size_mb)
    session.progress(f"generated {size / 2**20:.0f} MiB in {generate_s:.1f} s")
    full_s: list[float] = []
    full_repo: list[float] = []
    diff_s: list[float] = []
    diff_repo: list[float] = []
    restore_s: list[float] = []
    rpo_s: list[float] = []
    for iteration in range(1, settings.iterations + 1):
        seconds, record = backup(host, "full")
        full_s.append(seconds)
        full_repo.append(float(record["repo_size_bytes"] or 0))  # type: ignore[arg-type]
        psql(host, f"UPDATE bench_backup.filler SET a = md5(a) WHERE id % 1000 = {iteration % 1000}")
        seconds, record = backup(host, "diff")
        diff_s.append(seconds)
        diff_repo.append(float(record["repo_size_bytes"] or 0))  # type: ignore[arg-type]
        seconds, drill = restore(host)
        restore_s.append(seconds)
        if drill.get("restored") in (None, ""):
            raise RuntimeError(f"the restore drill answered nothing: {drill}")
        rpo_s.append(rpo_seconds(host))
        session.progress(
            f"backup {iteration}: full {full_s[-1]:.1f} s, diff {diff_s[-1]:.1f} s, "
            f"restore {restore_s[-1]:.1f} s, commit to archived WAL {rpo_s[-1]:.1f} s"
        )
    repository = disk_usage_bytes(host, [REPOSITORY])
    archive_timeout = psql(host, "SHOW archive_timeout")
    mib = 2**20
    result.add(Figure("database_size", "database size (pg_database_size)", "MiB", [size / mib]))
    result.add(Figure("generate", "generating it (one INSERT ... generate_series)", "s", [generate_s]))
    result.add(Figure("full_backup", "full backup (barestack-backup pg-backup --type full)", "s", full_s))
    result.add(Figure("full_repo", "of which stored in the repository (zst, encrypted)", "MiB",
                      [value / mib for value in full_repo]))  # fmt: skip
    result.add(Figure("diff_backup", "differential backup after updating 0.1 % of the rows", "s", diff_s))
    result.add(Figure("diff_repo", "of which stored in the repository", "MiB", [v / mib for v in diff_repo]))
    result.add(Figure("restore", "restore of the latest backup into an empty data directory, recovered", "s",
                      restore_s))  # fmt: skip
    result.add(Figure("repository", "repository size at the end (du, every backup and WAL of the run)", "MiB",
                      [repository / mib]))  # fmt: skip
    result.add(Figure("rpo", "RPO: from a commit to its WAL in the repository", "s", rpo_s))
    worst = max(rpo_s)
    result.targets.append(
        Target(
            key="rpo_within_archive_timeout",
            label="a committed transaction is restorable within archive_timeout plus a margin",
            goal=f"at most archive_timeout ({archive_timeout}) + 30 s",
            measured=f"{worst:.1f} s at most over {len(rpo_s)} commits",
            met=worst <= _seconds(archive_timeout) + 30,
        )
    )
    result.notes.append(
        f"Database generated as {size // ROW_BYTES:,} rows of four md5 strings (about {ROW_BYTES} bytes each "
        f"on disk), {settings.backup_size_mb} MiB asked. Each of {settings.iterations} runs: a full backup, "
        "an update of 0.1 % of the rows, a differential backup, a restore drill (scratch cluster on another "
        "port), one RPO sample. Times are measured on the machine. The first differential after a bulk load "
        "also carries the hint bits PostgreSQL set while the full backup read the table."
    )
    result.notes.append(
        "RPO: on an idle database a WAL segment is archived when archive_timeout forces a switch, so a "
        f"commit waits up to archive_timeout ({archive_timeout}) before any restore can reach it; a busy "
        "database fills segments sooner. The sample is the wait for one commit at a random moment."
    )


def _seconds(setting: str) -> float:
    """PostgreSQL's SHOW output for a time setting (e.g. 1min, 30s) in seconds."""
    units = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}
    number = setting.rstrip("abcdefghijklmnopqrstuvwxyz")
    return float(number) * units.get(setting[len(number) :], 1)
