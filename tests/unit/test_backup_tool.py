"""roles/backup/files/barestack_backup.py against a real redis-server (ACL user, unix socket).

The snapshot must hold exactly the keys written before it (read back by a second redis-server
started from the copy), a wrong password must fail the run and show in the status file, and
retention must drop old copies but never the newest. PostgreSQL parts run on the test machines
(make drill), since they need pgBackRest and a cluster with WAL archiving.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis

TOOL = Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "barestack_backup.py"
PASSWORD = "backup-test-password-0123456789"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("barestack_backup", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_redis(directory: Path, dbfilename: str = "dump.rdb") -> subprocess.Popen[bytes]:
    conf = directory / "redis.conf"
    conf.write_text(
        f"port 0\nunixsocket {directory}/redis.sock\nunixsocketperm 700\ndir {directory}\n"
        f'dbfilename {dbfilename}\nsave ""\nappendonly no\nloglevel warning\n'
        f"user default off\nuser admin on >{PASSWORD} ~* &* +@all\n"
    )
    process = subprocess.Popen(
        ["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            client(directory).ping()
            return process
        except (redis.ConnectionError, FileNotFoundError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def client(directory: Path) -> redis.Redis:
    return redis.Redis(
        unix_socket_path=str(directory / "redis.sock"),
        username="admin",
        password=PASSWORD,
        decode_responses=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, dict, Path]]:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    process = start_redis(server_dir)
    password_file = tmp_path / "redis-password"
    password_file.write_text(PASSWORD + "\n")
    config = {
        "postgresql": {
            "enabled": False,
            "stanza": "barestack",
            "version": "17",
            "port": 5432,
            "database": "x",
        },
        "redis": {
            "enabled": True,
            "socket": str(server_dir / "redis.sock"),
            "user": "admin",
            "password_file": str(password_file),
            "snapshot_dir": str(tmp_path / "snapshots"),
            "retention_days": 7,
            "bgsave_timeout": 30,
            "unit": "redis-server",
        },
        "drill": {"path": str(tmp_path / "drill"), "port": 5499, "count_query": "SELECT 1"},
        "status_file": str(tmp_path / "status" / "backup-status.json"),
        "thresholds": {"full_hours": 194, "diff_hours": 26, "redis_hours": 26, "archive_minutes": 120},
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    monkeypatch.setenv("BARESTACK_BACKUP_CONFIG", str(config_path))
    try:
        yield load_tool(), config, server_dir
    finally:
        stop(process)


def run_main(tool: ModuleType, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["barestack-backup", *args])
    return tool.main()


def test_snapshot_holds_exactly_the_keys_written_before_it(
    setup: tuple[ModuleType, dict, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, config, server_dir = setup
    live = client(server_dir)
    live.mset({f"before:{i}": f"value-{i}" for i in range(200)})
    live.set("overwritten", "old")

    assert run_main(tool, monkeypatch, "redis-snapshot") == 0
    live.set("after:1", "late")
    live.set("overwritten", "new")

    snapshots = sorted(Path(config["redis"]["snapshot_dir"]).glob("redis-*.rdb"))
    assert len(snapshots) == 1
    assert snapshots[0].read_bytes()[:5] == b"REDIS"
    assert oct(snapshots[0].stat().st_mode & 0o777) == "0o600"

    # Read the copy back with a second, real redis-server.
    check_dir = tmp_path / "check"
    check_dir.mkdir()
    shutil.copy(snapshots[0], check_dir / "restored.rdb")
    process = start_redis(check_dir, "restored.rdb")
    try:
        restored = client(check_dir)
        assert restored.dbsize() == 201
        assert restored.get("before:7") == "value-7"
        assert restored.get("overwritten") == "old"
        assert restored.get("after:1") is None
    finally:
        stop(process)

    status = json.loads(Path(config["status_file"]).read_text())
    assert status["ok"] is True, status["warnings"]
    assert status["redis"]["last_run"]["ok"] is True
    assert status["redis"]["last_good_snapshot"]["file"] == str(snapshots[0])
    # Format 2: time, result, duration and size of the snapshot; the thresholds it was judged by.
    assert status["format"] == 2
    assert status["thresholds"] == config["thresholds"]
    good = status["redis"]["last_good_snapshot"]
    assert good["size_bytes"] == snapshots[0].stat().st_size == status["redis"]["last_run"]["size_bytes"]
    assert 0 < good["duration_seconds"] == status["redis"]["last_run"]["duration_seconds"] < 30
    assert good["remote_copy"] is None  # no backup host here
    assert "postgresql" not in status
    assert PASSWORD not in Path(config["status_file"]).read_text()
    assert oct(Path(config["status_file"]).stat().st_mode & 0o777) == "0o644"


def test_wrong_password_fails_the_run_and_the_status_says_so(
    setup: tuple[ModuleType, dict, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, config, _ = setup
    Path(config["redis"]["password_file"]).write_text("not-the-password\n")
    assert run_main(tool, monkeypatch, "redis-snapshot") == 1
    status = json.loads(Path(config["status_file"]).read_text())
    assert status["ok"] is False
    assert status["redis"]["last_run"]["ok"] is False
    assert "WRONGPASS" in status["redis"]["last_run"]["error"]
    assert status["redis"]["last_run"]["duration_seconds"] >= 0
    assert "not-the-password" not in Path(config["status_file"]).read_text()


def test_retention_drops_old_copies_but_keeps_the_newest(
    setup: tuple[ModuleType, dict, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, config, _ = setup
    assert run_main(tool, monkeypatch, "redis-snapshot") == 0
    directory = Path(config["redis"]["snapshot_dir"])
    (newest,) = directory.glob("redis-*.rdb")
    old = directory / "redis-20200101T000000Z.rdb"
    shutil.copy(newest, old)
    assert tool.expire_redis_snapshots(config) == [str(old)]
    assert sorted(directory.glob("redis-*.rdb")) == [newest]

    # Alone and old, the newest copy still stays.
    newest.rename(old)
    assert tool.expire_redis_snapshots(config) == []
    assert old.exists()


def test_target_times_need_an_offset() -> None:
    tool = load_tool()
    assert tool.parse_time("2026-11-27 07:40:00+00") == dt.datetime(2026, 11, 27, 7, 40, tzinfo=dt.UTC)
    assert tool.parse_time("2026-11-27 07:40:00.5+01:00").utcoffset() == dt.timedelta(hours=1)
    with pytest.raises(tool.BackupError, match="offset"):
        tool.parse_time("2026-11-27 07:40:00")
