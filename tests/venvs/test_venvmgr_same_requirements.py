"""Venvs with the same requirements: uv builds each distinct set once per run, the others get a
hardlinked copy, which must be what uv would have built at their own path.

uv is the real one, behind a shell script that logs each call, so the tests count real builds.
"""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from venvmgr_testkit import Layout, make_layout, write_module

# A tree of 7 venvs but 4 distinct requirement sets: the two services have no requirements file
# (both empty venvs), three modules pin packaging==24.2, one packaging==23.2.
SHARED_24 = ["backend/a-001", "backend/a-002", "frontend/ui-001"]
TREE = {
    "backend/a-001": ["packaging==24.2"],
    "backend/a-002": ["packaging==24.2"],
    "frontend/ui-001": ["packaging==24.2"],
    "backend/a-003": ["packaging==23.2"],
    "frontend/ui-002": ["six==1.17.0", "idna==3.10"],
}
ALL_KEYS = sorted([*TREE, "backend", "frontend"])
TEMP_NAME_RE = re.compile(r"/\.tmp-(?P<name>[^/]+)-\d+-[0-9a-f]{8}$")


class LoggedUv:
    """The real uv behind a script that appends each call's arguments to a log first."""

    def __init__(self, directory: Path, real_uv: Path) -> None:
        self.path = directory / "uv"
        self.log = directory / "uv-calls.log"
        self.path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.log}"\nexec "{real_uv}" "$@"\n')
        self.path.chmod(0o755)

    def calls(self) -> list[str]:
        calls = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)  # the next read sees the next run's calls only
        return calls


def venvs_created(calls: list[str]) -> list[str]:
    """Folder name (module name, or _service) of each ``uv venv`` call, from its temp path."""
    names = []
    for call in calls:
        if call.startswith("venv "):
            match = TEMP_NAME_RE.search(call)
            assert match, call
            names.append(match["name"])
    return sorted(names)


def installs(calls: list[str]) -> int:
    return sum(call.startswith("pip install ") for call in calls)


def snapshot(venv: Path) -> dict[str, tuple[str, ...]]:
    """Everything about a venv but inodes and times: each entry's type, mode, and content or target."""
    entries: dict[str, tuple[str, ...]] = {}
    for path in sorted(venv.rglob("*")):
        relative = str(path.relative_to(venv))
        info = path.lstat()
        mode = oct(stat.S_IMODE(info.st_mode))
        if stat.S_ISLNK(info.st_mode):
            entries[relative] = ("symlink", mode, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            entries[relative] = ("dir", mode)
        else:
            entries[relative] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def imports_from_itself(venv: Path, module: str) -> dict[str, str]:
    """Import ``module`` with the venv's own python: where it comes from, and the venv's prefix."""
    code = f"import json, sys, {module}; print(json.dumps([sys.prefix, {module}.__file__]))"
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    prefix, file = json.loads(completed.stdout)
    return {"prefix": prefix, "file": file}


@pytest.fixture
def logged_uv(tmp_path: Path, uv_binary: Path) -> LoggedUv:
    return LoggedUv(tmp_path, uv_binary)


@pytest.fixture
def layout(tmp_path: Path, wheelhouse: Path, logged_uv: LoggedUv, uv_cache: Path) -> Layout:
    services = tmp_path / "services"
    for key, requirements in TREE.items():
        write_module(services, key, requirements)
    return make_layout(tmp_path, services, wheelhouse, logged_uv.path, uv_cache)


@pytest.mark.slow
def test_each_requirement_set_is_built_once_and_copies_work_where_they_are(
    layout: Layout, logged_uv: LoggedUv
) -> None:
    report, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    assert report["created"] == ALL_KEYS and report["failed"] == []

    calls = logged_uv.calls()
    # One uv venv per distinct set (the empty one included), one install per non-empty set.
    built = venvs_created(calls)
    assert len(built) == 4, calls
    assert installs(calls) == 3, calls
    assert built.count("_service") == 1
    assert len({key.split("/")[1] for key in SHARED_24} & set(built)) == 1

    mapping = layout.mapping_document()["venvs"]
    for key in ALL_KEYS:
        expected = dict(requirement.split("==") for requirement in TREE.get(key, []))
        assert mapping[key]["packages"] == expected, key
    for key in SHARED_24:
        venv = Path(mapping[key]["venv"])
        # Each copy runs from where it is, not from the venv it was copied from.
        found = imports_from_itself(venv, "packaging")
        assert found["prefix"] == str(venv)
        assert found["file"].startswith(f"{venv}/lib/")
        assert json.loads(layout.run_module(key).stdout) == {"packaging": "24.2"}
    assert json.loads(layout.run_module("frontend/ui-002").stdout) == {"six": "1.17.0", "idna": "3.10"}
    assert [path.name for path in layout.venvs.glob("*/.*")] == []  # no temp dirs left behind


@pytest.mark.slow
def test_a_copy_is_what_uv_builds_at_that_path(layout: Layout, logged_uv: LoggedUv) -> None:
    _, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    built = venvs_created(logged_uv.calls())
    copied = next(key for key in SHARED_24 if key.split("/")[1] not in built)
    venv = layout.venvs / copied
    as_copied = snapshot(venv)
    # It holds the packages' files themselves, linked from the shared uv cache like a build's.
    installed = next(venv.glob("lib/python*/site-packages/packaging/version.py"))
    assert installed.stat().st_ino in {path.stat().st_ino for path in layout.cache.rglob("version.py")}

    # Deleted by hand, it is rebuilt alone, so by uv, at the same path: same files, modes, links.
    shutil.rmtree(venv)
    report, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    assert report["created"] == [copied]
    assert venvs_created(logged_uv.calls()) == [copied.split("/")[1]]
    assert snapshot(venv) == as_copied


@pytest.mark.slow
def test_updates_and_creations_with_one_new_set_build_it_once(layout: Layout, logged_uv: LoggedUv) -> None:
    _, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    logged_uv.calls()

    # An updated venv and a new one end up with the same, new set: one build, one copy.
    write_module(layout.services, "backend/a-003", ["six==1.17.0"])  # its app.py prints six's version
    write_module(layout.services, "frontend/ui-003", ["six==1.17.0"])
    report, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    assert report["updated"] == ["backend/a-003"] and report["created"] == ["frontend/ui-003"]
    calls = logged_uv.calls()
    assert len(venvs_created(calls)) == 1 and installs(calls) == 1, calls
    mapping = layout.mapping_document()["venvs"]
    for key in ("backend/a-003", "frontend/ui-003"):
        assert mapping[key]["packages"] == {"six": "1.17.0"}
        assert json.loads(layout.run_module(key).stdout) == {"six": "1.17.0"}
    assert mapping["backend/a-003"]["hash"] == mapping["frontend/ui-003"]["hash"]


@pytest.mark.slow
def test_a_set_that_cannot_build_fails_every_venv_sharing_it_and_no_other(
    layout: Layout, logged_uv: LoggedUv
) -> None:
    _, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    logged_uv.calls()
    before = layout.mapping_document()["venvs"]

    # An update and a new module share an unsatisfiable set; a healthy new module builds.
    (layout.services / "backend" / "a-003" / "requirements.txt").write_text("packaging==99.0\n")
    write_module(layout.services, "backend/a-009", ["packaging==99.0"])
    write_module(layout.services, "frontend/ui-009", ["idna==3.10"])
    report, exit_code, _ = layout.build()

    assert exit_code == 1
    failed = {failure["venv"]: failure["error"] for failure in report["failed"]}
    assert sorted(failed) == ["backend/a-003", "backend/a-009"]
    for key, error in failed.items():
        assert error.startswith(f"{key}: ") and "packaging==99.0" in error  # uv's own explanation
    assert report["created"] == ["frontend/ui-009"] and report["updated"] == []
    calls = logged_uv.calls()
    assert len(venvs_created(calls)) == 2 and installs(calls) == 2, calls

    after = layout.mapping_document()["venvs"]
    assert "backend/a-009" not in after
    assert after["backend/a-003"] == before["backend/a-003"]  # its old venv is still in place
    assert json.loads(layout.run_module("backend/a-003").stdout) == {"packaging": "23.2"}
    assert not (layout.venvs / "backend" / "a-009").exists()
    assert [path.name for path in layout.venvs.glob("*/.*")] == []
