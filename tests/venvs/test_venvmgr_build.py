"""Building the sample modules' venvs for real: offline from the wheelhouse, with the host's uv."""

import json
import os
import shutil
from pathlib import Path
from typing import Any

from venvmgr_testkit import Layout

SAMPLE_KEYS = [
    "backend",
    "backend/a-001",
    "backend/a-002",
    "backend/a-003",
    "backend/a-004",
    "frontend",
    "frontend/ui-001",
    "frontend/ui-002",
    "frontend/ui-003",
    "infrastructure",
    "infrastructure/infra-001",
    "infrastructure/infra-002",
]


def test_first_build_creates_every_venv_and_the_mapping(
    built_samples: tuple[Layout, dict[str, Any]], target_python_version: str
) -> None:
    layout, report = built_samples
    assert report["failed"] == []
    assert report["created"] == SAMPLE_KEYS
    assert report["changed"] is True and report["mapping_changed"] is True
    assert report["python"] == target_python_version

    document = layout.mapping_document()
    assert document["format"] == 1 and document["python"] == target_python_version
    assert sorted(document["venvs"]) == SAMPLE_KEYS
    a001 = document["venvs"]["backend/a-001"]
    assert a001 == {
        "service": "backend",
        "module": "a-001",
        "kind": "module",
        "source": str(layout.services / "backend" / "a-001"),
        "venv": str(layout.venvs / "backend" / "a-001"),
        "hash": a001["hash"],
        "python": target_python_version,
        "requirements": ["packaging==24.2"],
        "packages": {"packaging": "24.2"},
    }
    assert len(a001["hash"]) == 64
    service = document["venvs"]["backend"]
    assert service["kind"] == "service" and service["module"] is None
    assert service["venv"] == str(layout.venvs / "backend" / "_service")
    assert service["packages"] == {}  # the copied tree has no service requirements: still a venv
    assert document["venvs"]["backend/a-004"]["packages"]["redis"] == "8.1.0"
    for entry in document["venvs"].values():
        assert os.access(Path(entry["venv"]) / "bin" / "python", os.X_OK)
    assert oct(layout.mapping.stat().st_mode & 0o777) == oct(0o644)


def test_conflicting_pins_each_see_their_own_version(built_samples: tuple[Layout, dict[str, Any]]) -> None:
    layout, _ = built_samples
    newer = layout.run_module("backend/a-001", "app.py", "1.10", "1.9", "2.0rc1")
    older = layout.run_module("backend/a-002")
    assert newer.returncode == 0, newer.stderr
    assert older.returncode == 0, older.stderr
    assert json.loads(newer.stdout) == {
        "packaging": "24.2",
        "sorted": ["1.9", "1.10", "2.0rc1"],
        "invalid": [],
    }
    assert json.loads(older.stdout)["packaging"] == "23.2"


def test_venvs_hardlink_their_files_from_the_shared_uv_cache(
    built_samples: tuple[Layout, dict[str, Any]],
) -> None:
    layout, _ = built_samples
    installed = next((layout.venvs / "backend" / "a-004").glob("lib/python*/site-packages/redis/client.py"))
    assert installed.stat().st_nlink >= 2
    cache_inodes = {path.stat().st_ino for path in layout.cache.rglob("client.py")}
    assert installed.stat().st_ino in cache_inodes


def test_second_run_changes_nothing_and_needs_neither_uv_nor_wheels(
    built_samples: tuple[Layout, dict[str, Any]],
) -> None:
    layout, _ = built_samples
    before = layout.mapping.stat()
    # A no-change run only hashes and compares: a missing uv and wheelhouse cannot matter.
    report, exit_code, stderr = layout.build(
        "--uv", layout.venvs / "no-such-uv", "--wheelhouse", layout.venvs / "no-such-wheelhouse"
    )
    assert exit_code == 0, stderr
    assert report["changed"] is False and report["mapping_changed"] is False
    assert report["created"] == report["updated"] == report["removed"] == report["failed"] == []
    assert report["unchanged"] == SAMPLE_KEYS and report["unchanged_count"] == len(SAMPLE_KEYS)
    assert report["diff"] == {"before": "", "after": ""}
    after = layout.mapping.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_pin_updates_and_deleted_module_is_removed(sample_layout: Layout) -> None:
    layout = sample_layout
    _, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    old_hash = layout.mapping_document()["venvs"]["backend/a-001"]["hash"]
    (layout.services / "backend" / "a-001" / "requirements.txt").write_text("packaging==23.2\n")
    shutil.rmtree(layout.services / "frontend" / "ui-002")

    planned, exit_code, _ = layout.build("--dry-run")
    assert exit_code == 0
    assert (planned["updated"], planned["removed"], planned["created"]) == (
        ["backend/a-001"],
        ["frontend/ui-002"],
        [],
    )
    assert layout.mapping_document()["venvs"]["backend/a-001"]["hash"] == old_hash  # dry run changed nothing
    assert (layout.venvs / "frontend" / "ui-002").is_dir()

    report, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    assert report["updated"] == ["backend/a-001"] and report["removed"] == ["frontend/ui-002"]
    assert report["created"] == [] and report["unchanged_count"] == 10
    assert report["diff"]["before"].startswith("backend/a-001 [python ")
    assert "packaging==24.2" in report["diff"]["before"] and "frontend/ui-002" in report["diff"]["before"]
    assert "packaging==23.2" in report["diff"]["after"] and "frontend/ui-002" not in report["diff"]["after"]
    venvs = layout.mapping_document()["venvs"]
    assert venvs["backend/a-001"]["packages"] == {"packaging": "23.2"}
    assert venvs["backend/a-001"]["hash"] != old_hash
    assert "frontend/ui-002" not in venvs
    assert not (layout.venvs / "frontend" / "ui-002").exists()
    assert json.loads(layout.run_module("backend/a-001").stdout)["packaging"] == "23.2"
    gone = layout.run_module("frontend/ui-002")
    assert gone.returncode == 2
    assert gone.stderr.strip() == f"run_module.sh: unknown module 'frontend/ui-002' (not in {layout.mapping})"
    leftovers = [path.name for path in layout.venvs.glob("*/.*")]
    assert leftovers == []


def test_venv_deleted_by_hand_is_rebuilt(sample_layout: Layout) -> None:
    layout = sample_layout
    layout.build()
    shutil.rmtree(layout.venvs / "infrastructure" / "infra-001")
    report, exit_code, _ = layout.build()
    assert exit_code == 0
    assert report["created"] == ["infrastructure/infra-001"] and report["unchanged_count"] == 11
    assert report["mapping_changed"] is False  # same venv, same content: the file stays as it was
    assert layout.run_module("infrastructure/infra-001", "app.py", "--max-percent", "100").returncode == 0


def test_only_builds_just_the_named_venv(sample_layout: Layout) -> None:
    layout = sample_layout
    report, exit_code, _ = layout.build("--only", "backend/a-002")
    assert exit_code == 0
    assert report["created"] == ["backend/a-002"]
    assert sorted(layout.mapping_document()["venvs"]) == ["backend/a-002"]
    assert sorted(path.name for path in (layout.venvs / "backend").iterdir()) == ["a-002"]
