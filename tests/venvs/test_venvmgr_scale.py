"""400 generated modules: the first build is quick and small thanks to uv and hardlinks, and a
re-run with nothing changed takes well under a second (it only hashes and compares)."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from generate_modules import generate
from venvmgr_testkit import Layout, make_layout

MODULE_COUNT = 400
SERVICES = ["backend", "frontend", "infrastructure"]


def disk_usage(path: Path) -> str:
    """``du -sh``: hardlinked files count once, which is the point of the shared uv cache."""
    return subprocess.run(
        ["du", "-sh", str(path)], capture_output=True, text=True, check=True
    ).stdout.split()[0]


@pytest.mark.slow
def test_400_modules_build_once_then_nothing_changes(
    tmp_path: Path, wheelhouse: Path, uv_binary: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services = tmp_path / "services"
    generate(services, MODULE_COUNT, SERVICES, seed=0)
    layout: Layout = make_layout(tmp_path, services, wheelhouse, uv_binary, tmp_path / "venvs" / ".uv-cache")
    expected_venvs = MODULE_COUNT + len(SERVICES)

    started = time.monotonic()
    first, exit_code, stderr = layout.build()
    first_seconds = time.monotonic() - started
    assert exit_code == 0, stderr
    assert first["failed"] == [] and len(first["created"]) == expected_venvs
    size = disk_usage(layout.venvs)

    started = time.monotonic()
    second, exit_code, stderr = layout.build()
    second_seconds = time.monotonic() - started
    assert exit_code == 0, stderr
    assert second["changed"] is False and second["mapping_changed"] is False
    assert second["unchanged_count"] == expected_venvs
    assert second["created"] == second["updated"] == second["removed"] == []
    assert second_seconds < 30, f"no-change run took {second_seconds:.1f} s"

    # Spot-check generated modules with conflicting pins: each venv holds exactly its own.
    mapping = layout.mapping_document()["venvs"]
    for version in ("23.2", "24.2"):
        key = next(
            key for key, entry in mapping.items() if entry["requirements"] == [f"packaging=={version}"]
        )
        result = layout.run_module(key, "app.py", "hello")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["packages"] == {"packaging": version}

    with capsys.disabled():
        print(
            f"\n[scale] {expected_venvs} venvs: first build {first_seconds:.1f} s, "
            f"no-change run {second_seconds:.2f} s, venvs dir with uv cache {size}"
        )
