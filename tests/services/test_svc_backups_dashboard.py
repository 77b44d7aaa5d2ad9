"""The dashboard's Backups section, against the real stack and real status files in temporary directories.

The files are written the way roles/backup/files/barestack_backup.py writes them (format 2): the
collector reads them in the background, the page, /health and /metrics show what it read.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from barestack_infrastructure.app import create_app
from barestack_infrastructure.backups import read_backup_status
from barestack_infrastructure.settings import Settings
from flask.testing import FlaskClient
from svc_testkit.accounts import OPERATOR, session_cookie

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Each test's statuses are written relative to its own start: ages are printed to the minute,
    and the full suite reaches these tests minutes after the module was imported."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def label(moment: datetime, suffix: str = "F") -> str:
    return moment.strftime("%Y%m%d-%H%M%S") + suffix


def good(moment: datetime, kind: str, full_at: datetime | None = None) -> dict[str, Any]:
    name = label(moment) if kind == "full" else f"{label(full_at or moment)}_{label(moment, kind[0].upper())}"
    return {
        "label": name,
        "started_at": iso(moment - timedelta(minutes=1)),
        "finished_at": iso(moment),
        "duration_seconds": 60.0,
        "size_bytes": 3727840 if kind == "full" else 52000,
        "database_size_bytes": 31280261,
    }


def ran(moment: datetime, kind: str, ok: bool = True, error: str | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "ok": ok,
        "error": error,
        "started_at": iso(moment - timedelta(minutes=1)),
        "finished_at": iso(moment),
        "duration_seconds": 60.0,
    }


def status_file(
    *,
    full_at: datetime,
    diff_at: datetime | None,
    snapshot_at: datetime,
    archived_at: datetime | None = None,
    check_ok: bool = True,
    drill_ok: bool = True,
    warnings: list[str] | None = None,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A format-2 status as the backup job leaves it: per type the newest good backup and the last run."""
    types: dict[str, Any] = {
        "full": {"last_good": good(full_at, "full"), "last_run": ran(full_at, "full")},
        "diff": {"last_good": None, "last_run": None},
    }
    if diff_at is not None:
        types["diff"] = {"last_good": good(diff_at, "diff", full_at), "last_run": ran(diff_at, "diff")}
    archived_at = archived_at or NOW - timedelta(minutes=1)
    return {
        "format": 2,
        "host": "db1",
        "updated_at": iso(NOW),
        "ok": not warnings,
        "warnings": warnings or [],
        "thresholds": thresholds
        or {"full_hours": 194.0, "diff_hours": 26.0, "redis_hours": 26.0, "archive_minutes": 120.0},
        "postgresql": {
            "stanza": "barestack",
            "repository": "local",
            "backups_count": 2,
            "repository_error": None,
            "types": types,
            "archive": {
                "last_archived_wal": "000000010000000000000042",
                "last_archived_at": iso(archived_at),
                "age_seconds": 60,
                "size_bytes": 16777216,
                "ok": check_ok,
                "check_ok": check_ok,
                "check_error": None if check_ok else "archive-push timed out",
                "checked_at": iso(NOW - timedelta(minutes=30)),
                "duration_seconds": 2.5,
            },
        },
        "redis": {
            "snapshots_count": 3,
            "last_run": {"kind": "snapshot", "ok": True, "error": None, "finished_at": iso(snapshot_at)},
            "last_good_snapshot": {
                "file": f"/var/backups/barestack/redis/redis-{snapshot_at:%Y%m%dT%H%M%SZ}.rdb",
                "taken_at": iso(snapshot_at),
                "size_bytes": 88,
                "duration_seconds": 0.4,
            },
        },
        "drill": {
            "last_run": {
                "kind": "drill",
                "ok": drill_ok,
                "error": None if drill_ok else "the scratch cluster stayed in recovery",
                "finished_at": iso(NOW - timedelta(days=3)),
            }
        },
    }


def fresh() -> dict[str, Any]:
    return status_file(
        full_at=NOW - timedelta(days=3),
        diff_at=NOW - timedelta(hours=5),
        snapshot_at=NOW - timedelta(hours=2),
    )


def dashboard(infra_env: dict[str, str], path: Path, **extra: str) -> FlaskClient:
    env = {**infra_env, "BARESTACK_BACKUP_STATUS_FILE": str(path), **extra}
    app = create_app(Settings.from_env(env))
    app.testing = True
    client = app.test_client()
    client.set_cookie("barestack_session", session_cookie(env, OPERATOR), path="/")
    return client


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def backup_metrics(client: FlaskClient) -> list[str]:
    text = client.get("/metrics").get_data(as_text=True)
    return [line for line in text.splitlines() if line.startswith("barestack_backup_")]


def health(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/health")
    # Backups never decide the stack's health: the deploy's health gate must not fail on them.
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    return body["backups"]


def test_a_missing_file_says_backups_run_on_the_postgres_host(
    infra_env: dict[str, str], tmp_path: Path
) -> None:
    client = dashboard(infra_env, tmp_path / "backup-status.json")
    backups = health(client)
    assert backups["state"] == "missing" and backups["warning"] is True
    assert backups["message"] == "no backup status on this host: backups run on the postgres host"
    html = client.get("/").get_data(as_text=True)
    assert "No backup status on this host: backups run on the postgres host." in html
    assert 'id="backups-badge">warning<' in html
    assert backup_metrics(client) == []


def test_a_dashboard_on_another_host_says_so(tmp_path: Path) -> None:
    url = "postgresql://app:Secret-pw@db1.example.net:5432/barestack"
    status = read_backup_status(str(tmp_path / "backup-status.json"), url)
    assert status.state == "missing"
    assert "backups run on the postgres host (db1.example.net)" in status.message
    assert "another host" in status.message and "Secret-pw" not in status.message
    local = read_backup_status(str(tmp_path / "x.json"), "postgresql://app:pw@127.0.0.1:5432/barestack")
    assert "another host" not in local.message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"format": 1, "postgresql": {', "Expecting"),
        ("[1, 2]", "not a JSON object"),
        ({"format": 1, "postgresql": {}}, "format 1, expected 2"),
        ({"format": 2, "postgresql": "yes"}, "'postgresql' is not an object"),
        ({"format": 2, "redis": {"last_good_snapshot": {"taken_at": 12}}}, "not a time: 12"),
        ({"format": 2, "redis": {"last_good_snapshot": {"size_bytes": "big"}}}, "not a number: 'big'"),
        (
            {"format": 2, "thresholds": {"full_hours": -1}, "redis": {}},
            "threshold full_hours must be positive",
        ),
        ({"format": 2, "postgresql": {"types": {"full": []}}}, "'full' is not an object"),
        ({"format": 2}, "neither a 'postgresql' nor a 'redis' section"),
        (None, "Is a directory"),
    ],
)
def test_an_invalid_file_is_a_state_not_an_error(
    infra_env: dict[str, str], tmp_path: Path, content: Any, reason: str
) -> None:
    path = tmp_path / "backup-status.json"
    if content is None:
        path.mkdir()
    else:
        write(path, content)
    client = dashboard(infra_env, path)
    backups = health(client)
    assert backups["state"] == "invalid" and backups["warning"] is True
    assert reason in backups["message"], backups["message"]
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "The backup status cannot be used:" in html and 'id="backups-badge">warning<' in html
    assert backup_metrics(client) == []


def test_fresh_backups_are_ok_and_shown_with_their_times(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = fresh()
    client = dashboard(infra_env, write(tmp_path / "backup-status.json", data))
    backups = health(client)
    assert backups["state"] == "ok" and backups["warning"] is False, backups
    assert backups["problems"] == [] and backups["host"] == "db1"
    entries = backups["entries"]
    full_at = NOW - timedelta(days=3)
    assert list(entries) == ["full", "diff", "wal", "check", "drill", "redis"]  # no incremental used
    assert entries["full"]["last_success_at"] == iso(full_at)
    assert entries["full"]["last_run_ok"] is True
    assert entries["full"]["duration_s"] == 60.0 and entries["full"]["size_bytes"] == 3727840
    assert entries["full"]["max_age_s"] == 194 * 3600
    assert entries["diff"]["last_success_at"] == iso(NOW - timedelta(hours=5))
    assert entries["diff"]["last_run_ok"] is True and entries["diff"]["size_bytes"] == 52000
    # NOW was taken when this test started.
    since_import = (datetime.now(UTC) - NOW).total_seconds()
    assert 5 * 3600 <= entries["diff"]["age_s"] <= 5 * 3600 + since_import + 5
    assert entries["wal"]["last_success_at"] == iso(NOW - timedelta(minutes=1))
    assert entries["wal"]["size_bytes"] == 16777216 and entries["wal"]["duration_s"] == 2.5
    assert entries["wal"]["max_age_s"] == 120 * 60 and entries["wal"]["detail"] == "000000010000000000000042"
    assert entries["check"]["last_run_ok"] is True and entries["drill"]["last_run_ok"] is True
    assert entries["redis"]["last_success_at"] == iso(NOW - timedelta(hours=2))
    assert entries["redis"]["duration_s"] == 0.4 and entries["redis"]["size_bytes"] == 88

    html = client.get("/").get_data(as_text=True)
    assert 'id="backups-badge">ok<' in html
    assert "Backups are recent and the last runs succeeded." in html
    diff_row = re.search(r'<tr id="backup-diff">(.*?)</tr>', html, re.S)
    assert diff_row is not None
    assert f"{NOW - timedelta(hours=5):%Y-%m-%d %H:%M:%S}" in diff_row.group(1)
    assert "5 h" in diff_row.group(1) and '<span class="badge up">ok</span>' in diff_row.group(1)
    assert "60.0 s" in diff_row.group(1) and "50.8 KiB" in diff_row.group(1)
    wal_row = re.search(r'<tr id="backup-wal">(.*?)</tr>', html, re.S)
    assert wal_row is not None and "16.0 MiB" in wal_row.group(1) and "<td>2 h</td>" in wal_row.group(1)
    assert "too old" not in html
    for kind in ("full", "check", "drill", "redis"):
        assert f'id="backup-{kind}"' in html

    stamp = {
        "full": full_at,
        "diff": NOW - timedelta(hours=5),
        "wal": NOW - timedelta(minutes=1),
        "check": NOW - timedelta(minutes=30),
        "drill": NOW - timedelta(days=3),
        "redis": NOW - timedelta(hours=2),
    }
    lines = backup_metrics(client)
    for kind, moment in stamp.items():
        expected = (
            f'barestack_backup_last_success_timestamp_seconds{{kind="{kind}"}} {moment.timestamp():.0f}'
        )
        assert expected in lines
    assert sorted(line for line in lines if line.startswith("barestack_backup_last_run_ok")) == [
        'barestack_backup_last_run_ok{kind="check"} 1',
        'barestack_backup_last_run_ok{kind="diff"} 1',
        'barestack_backup_last_run_ok{kind="drill"} 1',
        'barestack_backup_last_run_ok{kind="full"} 1',
        'barestack_backup_last_run_ok{kind="redis"} 1',
        'barestack_backup_last_run_ok{kind="wal"} 1',
    ]
    assert 'barestack_backup_size_bytes{kind="full"} 3727840' in lines
    assert 'barestack_backup_duration_seconds{kind="diff"} 60' in lines
    assert 'barestack_backup_max_age_seconds{kind="wal"} 7200' in lines


def test_old_backups_are_stale_but_the_stack_stays_healthy(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = status_file(
        full_at=NOW - timedelta(days=9, hours=1),
        diff_at=NOW - timedelta(days=3, hours=1),
        snapshot_at=NOW - timedelta(hours=30),
        archived_at=NOW - timedelta(hours=3),
    )
    client = dashboard(infra_env, write(tmp_path / "backup-status.json", data))
    backups = health(client)
    assert backups["state"] == "warning" and backups["warning"] is True
    assert backups["problems"] == [
        "PostgreSQL: the last full backup is 9 days old",
        "PostgreSQL: no differential or full backup for 3 days",
        "PostgreSQL: the last WAL archive is 180 min old",
        "Redis: the last snapshot is 30 h old",
    ]
    html = client.get("/").get_data(as_text=True)
    assert 'id="backups-badge">warning<' in html
    assert "<li>PostgreSQL: the last full backup is 9 days old</li>" in html
    assert "9.0 days" in html
    for kind in ("full", "wal", "redis"):
        row = re.search(rf'<tr id="backup-{kind}">(.*?)</tr>', html, re.S)
        assert row is not None and '<span class="badge down">too old</span>' in row.group(1), kind


def test_the_thresholds_are_the_roles_variables(infra_env: dict[str, str], tmp_path: Path) -> None:
    # The same ages under stricter thresholds (backup_warn_*) turn into warnings; under looser ones not.
    strict = {"full_hours": 48.0, "diff_hours": 4.0, "redis_hours": 1.0, "archive_minutes": 0.5}
    data = fresh() | {"thresholds": strict}
    backups = health(dashboard(infra_env, write(tmp_path / "backup-status.json", data)))
    assert backups["problems"] == [
        "PostgreSQL: the last full backup is 3 days old",
        "PostgreSQL: no differential or full backup for 5 h",
        "PostgreSQL: the last WAL archive is 1 min old",
        "Redis: the last snapshot is 2 h old",
    ]
    assert backups["entries"]["redis"]["max_age_s"] == 3600
    loose = fresh() | {"thresholds": {"full_hours": 1000.0}}  # the others: the role's defaults
    assert health(dashboard(infra_env, write(tmp_path / "loose.json", loose)))["state"] == "ok"


def test_an_incremental_shows_when_used(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = fresh()
    incr_at = NOW - timedelta(hours=1)
    data["postgresql"]["types"]["incr"] = {
        "last_good": good(incr_at, "incr", NOW - timedelta(days=3)),
        "last_run": ran(incr_at, "incr"),
    }
    backups = health(dashboard(infra_env, write(tmp_path / "backup-status.json", data)))
    assert backups["state"] == "ok"
    assert backups["entries"]["incr"]["last_success_at"] == iso(incr_at)
    assert backups["entries"]["incr"]["size_bytes"] == 52000


def test_a_fresh_full_is_not_a_stale_differential(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = status_file(full_at=NOW - timedelta(hours=3), diff_at=None, snapshot_at=NOW - timedelta(hours=2))
    backups = health(dashboard(infra_env, write(tmp_path / "backup-status.json", data)))
    assert backups["state"] == "ok", backups["problems"]
    assert backups["entries"]["diff"]["detail"] == "none since the last full backup"
    assert backups["entries"]["full"]["last_run_ok"] is True


def test_failed_runs_warn_with_their_message(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = fresh()
    # A failed full keeps the time of its last good full; the diff's own run succeeded.
    data["postgresql"]["types"]["full"]["last_run"] = ran(NOW - timedelta(minutes=10), "full") | {
        "ok": False,
        "error": "pgbackrest: [047]: unable to write to the repository: No space left on device",
    }
    # The job's own warning about the failed run is not repeated; the one about WAL archiving is shown.
    data = data | {
        "warnings": ["postgresql: last full backup run failed: ...", "postgresql: WAL archiving is failing"]
    }
    data["drill"]["last_run"] |= {"ok": False, "error": "the scratch cluster stayed in recovery"}
    client = dashboard(infra_env, write(tmp_path / "backup-status.json", data))
    backups = health(client)
    assert backups["state"] == "warning"
    assert backups["problems"] == [
        "PostgreSQL: last full backup: failed: pgbackrest: [047]: unable to write to the repository:"
        " No space left on device",
        "PostgreSQL: last restore drill: failed: the scratch cluster stayed in recovery",
        "backup job: postgresql: WAL archiving is failing",
    ]
    html = client.get("/").get_data(as_text=True)
    full_row = re.search(r'<tr id="backup-full">(.*?)</tr>', html, re.S)
    assert full_row is not None
    assert '<span class="badge down">failed</span> pgbackrest: [047]: unable to write' in full_row.group(1)
    lines = backup_metrics(client)
    assert 'barestack_backup_last_run_ok{kind="full"} 0' in lines
    assert 'barestack_backup_last_run_ok{kind="diff"} 1' in lines
    assert 'barestack_backup_last_run_ok{kind="drill"} 0' in lines
    # A failed drill has no success time; the full keeps the one of its last good backup.
    assert not any('last_success_timestamp_seconds{kind="drill"}' in line for line in lines)
    assert any('last_success_timestamp_seconds{kind="full"}' in line for line in lines)


def test_a_failing_archive_warns(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = fresh()
    data["postgresql"]["archive"] |= {"ok": False, "check_ok": False, "check_error": "ssh: connect: No route"}
    backups = health(dashboard(infra_env, write(tmp_path / "backup-status.json", data)))
    assert backups["problems"] == ["PostgreSQL: last archive check: failed: ssh: connect: No route"]
    assert backups["entries"]["wal"]["last_run_ok"] is False
    assert backups["entries"]["wal"]["error"] == "ssh: connect: No route"


def test_the_file_is_read_by_the_collector_not_per_page_view(
    infra_env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path / "backup-status.json", fresh())
    client = dashboard(infra_env, path, BARESTACK_COLLECT_INTERVAL="60")
    assert health(client)["state"] == "ok"
    path.unlink()  # within the collect interval a page view serves the snapshot: it reads no file
    assert 'id="backups-badge">ok<' in client.get("/").get_data(as_text=True)
    assert health(client)["state"] == "ok"
    # A new collection (another process, here a new app) sees the file gone.
    assert health(dashboard(infra_env, path))["state"] == "missing"
