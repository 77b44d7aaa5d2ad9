"""plugins/action/barestack_apt.py on this (Debian) controller: dpkg answers when everything is
installed, apt itself answers everything else. Check mode throughout: nothing is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .ansible_cli import ROOT

# Installed on every Debian system (essential), and a small package this controller lacks.
INSTALLED = ["dpkg", "coreutils"]
NOT_INSTALLED = "sl"


def run_tasks(tmp_path: Path, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each task's result, from one local check-mode play."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    # Run from tmp_path without ANSIBLE_CONFIG (make exports it): only the plugin comes from the
    # repository, and its timing callback stays out of the JSON.
    env = {name: value for name, value in os.environ.items() if name != "ANSIBLE_CONFIG"}
    env |= {
        "ANSIBLE_ACTION_PLUGINS": str(ROOT / "plugins" / "action"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-c", "local", "-i", "localhost,", "--check"]
    command += ["-e", "ansible_python_interpreter=/usr/bin/python3", str(playbook)]
    completed = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    output = json.loads(completed.stdout)
    return [task["hosts"]["localhost"] for task in output["plays"][0]["tasks"]]


@pytest.fixture
def not_installed() -> str:
    known = subprocess.run(["dpkg-query", "--show", NOT_INSTALLED], capture_output=True, check=False)
    if known.returncode == 0:
        pytest.skip(f"{NOT_INSTALLED} is known to dpkg here; the test needs a package that is not")
    return NOT_INSTALLED


def test_installed_packages_are_answered_by_dpkg_without_apt(tmp_path: Path) -> None:
    results = run_tasks(
        tmp_path,
        [
            {"barestack_apt": {"name": INSTALLED, "update_cache": True, "cache_valid_time": 3600}},
            {"barestack_apt": {"name": ",".join(INSTALLED)}},
        ],
    )
    for result in results:
        assert result["changed"] is False, result
        assert result["msg"] == "already installed: dpkg, coreutils", result
        # apt's own result carries cache_updated; the dpkg answer never does.
        assert "cache_updated" not in result, result


def test_anything_else_goes_to_apt(tmp_path: Path, not_installed: str) -> None:
    missing, pinned, absent = run_tasks(
        tmp_path,
        [
            # One package missing among installed ones: apt installs (here: would install) it.
            {"barestack_apt": {"name": [*INSTALLED, not_installed]}},
            # A version in the name is apt's to compare.
            {"barestack_apt": {"name": "dpkg=0.0-not-a-version"}, "ignore_errors": True},
            {"barestack_apt": {"name": not_installed, "state": "absent"}},
        ],
    )
    assert missing["changed"] is True and "cache_updated" in missing, missing
    assert missing.get("failed") is not True, missing
    assert pinned.get("failed") is True and "0.0-not-a-version" in pinned["msg"], pinned
    assert absent["changed"] is False and "already installed" not in str(absent.get("msg")), absent


def test_only_installed_states_count() -> None:
    """dpkg-query's status letters as it prints them for known packages: only a second letter i
    (installed, held or not) means there is nothing to do."""
    sys.path.insert(0, str(ROOT / "plugins" / "action"))
    try:
        from barestack_apt import all_installed, package_names
    finally:
        sys.path.pop(0)
    assert all_installed(["ii ", "hi "], ["a", "b"])
    for other in ("un ", "rc ", "iU ", "iF ", "pn "):  # unknown, removed (config left), half done
        assert not all_installed(["ii ", other], ["a", "b"]), other
    assert not all_installed(["ii "], ["a", "b"])  # a name dpkg printed nothing for
    assert (
        package_names("a, b,") == ["a", "b"] and package_names(["a"]) == ["a"] and package_names(None) == []
    )
