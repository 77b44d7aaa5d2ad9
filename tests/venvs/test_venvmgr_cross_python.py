"""A wheelhouse for another Python than the controller's (trixie's 3.13 from bookworm's 3.11):
compiled wheels must be the target's, and venvs built from them must import them."""

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from venvmgr_testkit import REPO, copy_sample_modules, make_layout, run_manager, run_wheelhouse

# Debian ships one CPython per release (3.11 on 12, 3.13 on 13), so a stock controller has no other.
ONE_PYTHON = (
    "cannot run here: one CPython minor version on this controller (Debian ships one per release); "
    "install another python3.X (3.12-3.15, or under ~/.pyenv) to run it"
)


def other_python() -> tuple[str, str] | None:
    """(path, X.Y.Z) of an installed CPython whose minor version differs from the controller's."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(12, 16)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    for candidate in filter(None, candidates):
        completed = subprocess.run(
            [candidate, "-c", "import sys; print('{}.{}.{}'.format(*sys.version_info[:3]))"],
            capture_output=True,
            text=True,
            check=False,
        )
        version = completed.stdout.strip()
        if completed.returncode == 0 and not version.startswith(f"3.{sys.version_info.minor}."):
            return candidate, version
    return None


@pytest.fixture(scope="module")
def target() -> tuple[str, str]:
    found = other_python()
    if found is None:
        pytest.skip(ONE_PYTHON)
    return found


def test_wheelhouse_and_venvs_for_another_python(target: tuple[str, str], tmp_path: Path) -> None:
    python, version = target
    cp_tag = "cp" + "".join(version.split(".")[:2])
    services = copy_sample_modules(tmp_path / "services")
    wheelhouse = REPO / ".cache" / f"wheelhouse-test-{version}"
    report, exit_code, stderr = run_wheelhouse(services, wheelhouse, version)
    assert exit_code == 0, stderr
    compiled = [name for name in report["wheels"] if "-cp3" in name]
    assert compiled and all(f"-{cp_tag}-" in name for name in compiled), compiled  # psycopg2, markupsafe

    uv = tmp_path / "bin" / "uv"
    assert run_manager("extract-uv", "--wheelhouse", wheelhouse, "--dest", uv)[1] == 0
    layout = make_layout(tmp_path, services, wheelhouse, uv, tmp_path / "venvs" / ".uv-cache")
    report, exit_code, stderr = layout.build("--python", python)
    assert exit_code == 0, f"{report}\n{stderr}"
    assert report["python"] == version

    versions = {}
    for key in ("backend/a-001", "backend/a-002"):
        versions[key] = json.loads(layout.run_module(key).stdout)["packaging"]
    assert versions == {"backend/a-001": "24.2", "backend/a-002": "23.2"}
    imports = subprocess.run(
        [
            str(layout.venvs / "backend" / "a-003" / "bin" / "python"),
            "-c",
            "import psycopg2, sys; print(sys.version)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.startswith(version)
    rendered = layout.run_module("frontend/ui-003", stdin='[{"a": "<b>"}]')
    assert rendered.returncode == 0 and "&lt;b&gt;" in rendered.stdout
