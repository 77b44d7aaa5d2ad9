"""The dashboard's Backups section, against the real stack and real status files in temporary directories.

The files are written the way roles/backup/files/barestack_backup.py writes them (format 1): the
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


def iso(moment: datetime) -> str:
    return moment.isoformat()


def label(moment: datetime, suffix: str = "F") -> str:
    return moment.strftime("%Y%m%d-%H%M%S") + suffix


def status_file(
    *,
    full_at: datetime,
    diff_at: datetime | None,
    last_run: dict[str, Any],
    snapshot_at: datetime,
    check_ok: bool = True,
    drill_ok: bool = True,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """A format-1 status as the backup job leaves it: the newest good backup and the last run."""
    if diff_at is None:
        good = {"label": label(full_at), "type": "full", "finished_at": iso(full_at)}
    else:
        good = {
            "label": f"{label(full_at)}_{label(diff_at, 'D')}",
            "type": "diff",
            "finished_at": iso(diff_at),
        }
    good["started_at"] = iso(datetime.fromisoformat(good["finished_at"]) - timedelta(minutes=1))
    return {
        "format": 1,
        "host": "db1",
        "updated_at": iso(NOW),
        "ok": not warnings,
        "warnings": warnings or [],
        "warn_after_hours": 26.0,
        "warn_archive_after_minutes": 120.0,
        "postgresql": {
            "stanza": "barestack",
            "backups_count": 2,
            "repository_error": None,
            "last_run": last_run,
            "last_good_backup": good | {"database_size_bytes": 31280261, "error": False},
            "archive": {
                "last_archived_at": iso(NOW - timedelta(minutes=1)),
                "age_seconds": 60,
                "check_ok": check_ok,
                "check_error": None if check_ok else "archive-push timed out",
                "checked_at": iso(NOW - timedelta(minutes=30)),
            },
        },
        "redis": {
            "snapshots_count": 3,
            "last_run": {"kind": "snapshot", "ok": True, "error": None, "finished_at": iso(snapshot_at)},
            "last_good_snapshot": {
                "file": f"/var/backups/barestack/redis/redis-{snapshot_at:%Y%m%dT%H%M%SZ}.rdb",
                "taken_at": iso(snapshot_at),
                "size_bytes": 88,
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
    diff_at = NOW - timedelta(hours=5)
    return status_file(
        full_at=NOW - timedelta(days=3),
        diff_at=diff_at,
        last_run={"kind": "diff", "ok": True, "error": None, "finished_at": iso(diff_at)},
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
        ({"format": 2, "postgresql": {}}, "format 2, expected 1"),
        ({"format": 1, "postgresql": "yes"}, "'postgresql' is not an object"),
        ({"format": 1, "redis": {"last_good_snapshot": {"taken_at": 12}}}, "not a time: 12"),
        ({"format": 1}, "neither a 'postgresql' nor a 'redis' section"),
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
    assert entries["full"]["last_success_at"] == iso(full_at)  # from the differential's label
    assert entries["full"]["last_run_ok"] is None  # the last run was a differential
    assert entries["diff"]["last_success_at"] == iso(NOW - timedelta(hours=5))
    assert entries["diff"]["last_run_ok"] is True
    # NOW was taken at import: a long run (a slow controller) reaches this test minutes later.
    since_now = (datetime.now(UTC) - NOW).total_seconds()
    assert 5 * 3600 <= entries["diff"]["age_s"] <= 5 * 3600 + since_now + 2
    assert entries["check"]["last_run_ok"] is True and entries["drill"]["last_run_ok"] is True
    assert entries["redis"]["last_success_at"] == iso(NOW - timedelta(hours=2))

    html = client.get("/").get_data(as_text=True)
    assert 'id="backups-badge">ok<' in html
    assert "Backups are recent and the last runs succeeded." in html
    diff_row = re.search(r'<tr id="backup-diff">(.*?)</tr>', html, re.S)
    assert diff_row is not None
    assert f"{NOW - timedelta(hours=5):%Y-%m-%d %H:%M:%S}" in diff_row.group(1)
    assert "5 h" in diff_row.group(1) and '<span class="badge up">ok</span>' in diff_row.group(1)
    for kind in ("full", "check", "drill", "redis"):
        assert f'id="backup-{kind}"' in html

    stamp = {
        "full": full_at,
        "diff": NOW - timedelta(hours=5),
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
        'barestack_backup_last_run_ok{kind="redis"} 1',
    ]


def test_old_backups_are_stale_but_the_stack_stays_healthy(infra_env: dict[str, str], tmp_path: Path) -> None:
    diff_at = NOW - timedelta(days=3, hours=1)
    data = status_file(
        full_at=NOW - timedelta(days=9, hours=1),
        diff_at=diff_at,
        last_run={"kind": "diff", "ok": True, "error": None, "finished_at": iso(diff_at)},
        snapshot_at=NOW - timedelta(hours=2),
    )
    client = dashboard(infra_env, write(tmp_path / "backup-status.json", data))
    backups = health(client)
    assert backups["state"] == "warning" and backups["warning"] is True
    assert backups["problems"] == [
        "PostgreSQL: the last full backup is 9 days old",
        "PostgreSQL: no differential or full backup for 3 days",
    ]
    html = client.get("/").get_data(as_text=True)
    assert 'id="backups-badge">warning<' in html
    assert "<li>PostgreSQL: the last full backup is 9 days old</li>" in html
    assert "9.0 days" in html


def test_a_fresh_full_is_not_a_stale_differential(infra_env: dict[str, str], tmp_path: Path) -> None:
    full_at = NOW - timedelta(hours=3)
    data = status_file(
        full_at=full_at,
        diff_at=None,
        last_run={"kind": "full", "ok": True, "error": None, "finished_at": iso(full_at)},
        snapshot_at=NOW - timedelta(hours=2),
    )
    backups = health(dashboard(infra_env, write(tmp_path / "backup-status.json", data)))
    assert backups["state"] == "ok", backups["problems"]
    assert backups["entries"]["diff"]["detail"] == "none since the last full backup"
    assert backups["entries"]["full"]["last_run_ok"] is True


def test_failed_runs_warn_with_their_message(infra_env: dict[str, str], tmp_path: Path) -> None:
    data = fresh()
    data["postgresql"]["last_run"] = {
        "kind": "full",
        "ok": False,
        "error": "pgbackrest: [047]: unable to write to the repository: No space left on device",
        "finished_at": iso(NOW - timedelta(minutes=10)),
    }
    # The job's own warning about the failed run is not repeated; the one about WAL archiving is shown.
    data = data | {
        "warnings": ["postgresql: last backup run failed: ...", "postgresql: WAL archiving is failing"]
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
    assert 'barestack_backup_last_run_ok{kind="drill"} 0' in lines
    assert not any(line.startswith('barestack_backup_last_run_ok{kind="diff"}') for line in lines)
    # A failed drill has no success time; the full keeps the one of its last good backup.
    assert not any('last_success_timestamp_seconds{kind="drill"}' in line for line in lines)
    assert any('last_success_timestamp_seconds{kind="full"}' in line for line in lines)


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
