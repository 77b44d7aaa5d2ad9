"""The app role's barestack_venvs Ansible module, run by ansible itself against this machine.

It is the one task that builds every venv of a release (docs/ARCHITECTURE.md, "One task for all
modules"), so its contract is tested here without a test machine: check mode changes nothing, a
second run reports no change, and a new release seeded from the previous one rebuilds only what
changed.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from venvmgr_testkit import SERVICES, TARGET_PYTHON, copy_sample_modules

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "roles" / "app" / "library"


def make_release(root: Path, name: str) -> Path:
    release = root / "releases" / name
    copy_sample_modules(release / "services")
    tools = release / "services" / "tools"
    shutil.copytree(SERVICES / "tools", tools, ignore=shutil.ignore_patterns("__pycache__"))
    return release


def run_module(args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    """Run barestack_venvs through ansible's ad-hoc command and return its result."""
    # Outside the repo and without ANSIBLE_CONFIG (make exports it), so the repo's ansible.cfg and
    # its text-printing timing callback stay out of the JSON.
    workdir = Path(args["release_dir"]).parent
    env = {
        **{name: value for name, value in os.environ.items() if name != "ANSIBLE_CONFIG"},
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LIBRARY": str(LIBRARY),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
    }
    command = ["ansible", "localhost", "-c", "local", "-e", f"ansible_python_interpreter={TARGET_PYTHON}"]
    command += ["-m", "barestack_venvs", "-a", json.dumps(args), "--diff"]
    if check:
        command.append("--check")
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=workdir, timeout=600, check=False
    )
    output = json.loads(completed.stdout)
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture
def module_args(tmp_path: Path, wheelhouse: Path, uv_binary: Path, uv_cache: Path) -> dict[str, Any]:
    return {
        "release_dir": str(make_release(tmp_path, "r1")),
        "wheelhouse": str(wheelhouse),
        "uv": str(uv_binary),
        "cache_dir": str(uv_cache),
        "python": TARGET_PYTHON,
    }


def test_check_mode_reports_the_build_and_changes_nothing(module_args: dict[str, Any]) -> None:
    result = run_module(module_args, check=True)
    assert result["changed"] is True, result
    assert "backend/a-001" in result["report"]["created"]
    assert "backend/a-001" in result["diff"]["after"]
    assert not Path(module_args["release_dir"], "venvs").exists()


def test_build_then_nothing_to_do(module_args: dict[str, Any]) -> None:
    first = run_module(module_args)
    assert first["changed"] is True, first.get("msg")
    assert first["report"]["failed"] == []
    second = run_module(module_args)
    assert second["changed"] is False
    assert second["report"]["created"] == [] and second["report"]["updated"] == []


def test_new_release_seeded_from_previous_rebuilds_only_what_changed(
    module_args: dict[str, Any], tmp_path: Path
) -> None:
    assert run_module(module_args)["changed"] is True
    previous = Path(module_args["release_dir"])
    release = make_release(tmp_path, "r2")
    (release / "services" / "backend" / "a-002" / "requirements.txt").write_text("packaging==24.2\n")

    result = run_module({**module_args, "release_dir": str(release), "seed_from": str(previous)})

    assert result["changed"] is True, result.get("msg")
    assert result["report"]["created"] == []
    assert result["report"]["updated"] == ["backend/a-002"]
    mapping = json.loads((release / "venv_mapping.json").read_text())
    venvs = [entry["venv"] for entry in mapping["venvs"].values()]
    assert venvs and all(path.startswith(str(release) + "/") for path in venvs)
    # The previous release keeps its own venvs for a rollback.
    old_mapping = json.loads((previous / "venv_mapping.json").read_text())
    assert old_mapping["venvs"]["backend/a-002"]["packages"]["packaging"] == "23.2"
    assert mapping["venvs"]["backend/a-002"]["packages"]["packaging"] == "24.2"


def test_a_module_that_cannot_build_fails_the_task_naming_it(module_args: dict[str, Any]) -> None:
    module_dir = Path(module_args["release_dir"], "services", "backend", "a-009")
    module_dir.mkdir()
    (module_dir / "app.py").write_text("print('never runs')\n")
    (module_dir / "requirements.txt").write_text("no-such-package-anywhere==1.0\n")
    result = run_module(module_args)
    assert result.get("failed") is True
    assert "backend/a-009" in result["msg"]
    assert "backend/a-001" in result["report"]["created"]
