"""Decide, without building anything, what a run must create, update, remove or leave alone.

This is the whole of a no-change run: hash the requirement files, compare with the mapping,
stat each venv's python. No uv call and no subprocess per venv, so 400 modules take
milliseconds, and --dry-run (Ansible check mode) shows exactly what a real run would do.

It also owns venv_mapping.json, the record the plan compares against: read it, render it
deterministically, replace it atomically only on change. The backend's /modules endpoint and
run_module.sh read that file, so it is never left half written, and a run that changes nothing
does not touch it (no timestamps in it): an unchanged file is how Ansible reports changed=0.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .discovery import (
    RequirementsError,
    VenvManagerError,
    VenvSpec,
    discover,
    is_valid_key,
    read_requirements,
    venvs_on_disk,
)

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
INVALID = "invalid"
# Bump when the way venvs are built changes, so every host rebuilds its venvs once.
MANAGER_FORMAT_VERSION = 1
MAPPING_FORMAT = 1
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


# --- the hash that decides whether a venv must be (re)built --------------------------------


def python_full_version(python: str) -> str:
    """``X.Y.Z`` of ``python``: one subprocess per run at most (none for our own interpreter)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return "{}.{}.{}".format(*sys.version_info[:3])
    try:
        completed = subprocess.run(
            [python, "-c", "import sys; print('{}.{}.{}'.format(*sys.version_info[:3]))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise VenvManagerError(f"cannot run the venv interpreter {python}: {error}") from None
    version = completed.stdout.strip()
    if completed.returncode != 0 or not _VERSION_RE.match(version):
        raise VenvManagerError(
            f"cannot read the version of the venv interpreter {python}: {completed.stderr.strip()}"
        )
    return version


def venv_hash(requirements: Sequence[str], python_version: str) -> str:
    """sha256 over the normalised requirements, the target Python's X.Y.Z and the format version.

    The Python version is part of it because a venv is tied to its interpreter: a point
    release of python3 on the host must rebuild the venvs (compiled wheels, stdlib paths).
    """
    digest = hashlib.sha256()
    digest.update(f"barestack-venv-format={MANAGER_FORMAT_VERSION}\n".encode())
    digest.update(f"python={python_version}\n".encode())
    for requirement in requirements:
        digest.update(f"{requirement}\n".encode())
    return digest.hexdigest()


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedVenv:
    spec: VenvSpec
    action: str
    venv_path: Path
    requirements: tuple[str, ...] = ()
    hash: str = ""
    error: str = ""

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass
class Plan:
    python_version: str
    venvs: list[PlannedVenv] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)

    def with_action(self, action: str) -> list[PlannedVenv]:
        return [planned for planned in self.venvs if planned.action == action]

    def keys(self, action: str) -> list[str]:
        return sorted(planned.key for planned in self.with_action(action))

    @property
    def builds(self) -> list[PlannedVenv]:
        return [planned for planned in self.venvs if planned.action in (CREATE, UPDATE)]


def _venv_is_usable(venv_path: Path) -> bool:
    # One stat per venv: a venv deleted by hand is rebuilt even though the mapping lists it.
    return (venv_path / "bin" / "python").exists() and (venv_path / "pyvenv.cfg").is_file()


def _plan_one(
    spec: VenvSpec, previous: Mapping[str, Any] | None, venvs_dir: Path, python_version: str
) -> PlannedVenv:
    venv_path = spec.venv_path(venvs_dir)
    try:
        requirements = read_requirements(spec.requirements_file)
    except RequirementsError as error:
        # A broken requirements file fails this venv alone; its current venv stays.
        return PlannedVenv(spec, INVALID, venv_path, error=str(error))
    digest = venv_hash(requirements, python_version)
    if previous is None or not _venv_is_usable(venv_path) or previous.get("venv") != str(venv_path):
        action = CREATE
    elif previous.get("hash") != digest:
        action = UPDATE
    else:
        action = UNCHANGED
    return PlannedVenv(spec, action, venv_path, requirements, digest)


def make_plan(
    specs: list[VenvSpec],
    previous_venvs: Mapping[str, Mapping[str, Any]],
    venvs_dir: Path,
    python_version: str,
    only: Collection[str] = (),
) -> Plan:
    """The plan for ``specs`` against the previous mapping; ``only`` limits it to some keys."""
    wanted = {spec.key: spec for spec in specs}
    known = set(wanted) | set(previous_venvs) | venvs_on_disk(venvs_dir)
    unknown_only = sorted(set(only) - known)
    if unknown_only:
        raise VenvManagerError(f"--only names unknown venvs: {', '.join(unknown_only)}")
    selected = set(only) if only else known

    plan = Plan(python_version=python_version)
    for key, spec in wanted.items():
        if key in selected:
            plan.venvs.append(_plan_one(spec, previous_venvs.get(key), venvs_dir, python_version))
    plan.removals = sorted(selected - set(wanted))
    return plan


def plan_tree(
    services_dir: Path, venvs_dir: Path, mapping: Path, python: str, only: Collection[str] = ()
) -> tuple[Plan, dict[str, dict[str, Any]]]:
    """The plan for a services tree against its mapping file, and that mapping's entries."""
    python_version = python_full_version(python)
    specs = discover(services_dir)
    previous = load_mapping_venvs(mapping)
    return make_plan(specs, previous, venvs_dir, python_version, only), previous


# --- venv_mapping.json -----------------------------------------------------------------------


def load_mapping_venvs(path: Path) -> dict[str, dict[str, Any]]:
    """The ``venvs`` entries of an existing mapping; a missing file means none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise VenvManagerError(f"cannot read mapping {path}: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise VenvManagerError(
            f"mapping {path} is not valid JSON ({error}); remove it to rebuild every venv"
        ) from None
    if not isinstance(document, dict) or document.get("format") != MAPPING_FORMAT:
        raise VenvManagerError(f"mapping {path} is not a format {MAPPING_FORMAT} venv mapping")
    venvs = document.get("venvs")
    if not isinstance(venvs, dict) or not all(isinstance(entry, dict) for entry in venvs.values()):
        raise VenvManagerError(f"mapping {path} has no valid 'venvs' object")
    # Venv paths to delete are derived from keys, so a key must never be able to escape
    # the venvs dir ("../etc").
    bad_keys = sorted(key for key in venvs if not is_valid_key(key))
    if bad_keys:
        raise VenvManagerError(f"mapping {path} has invalid venv keys: {', '.join(bad_keys)}")
    return venvs


def _entry(planned: PlannedVenv, python_version: str, packages: dict[str, str]) -> dict[str, Any]:
    spec = planned.spec
    return {
        "service": spec.service,
        "module": spec.module,
        "kind": spec.kind,
        "source": str(spec.source),
        "venv": str(planned.venv_path),
        "hash": planned.hash,
        "python": python_version,
        "requirements": list(planned.requirements),
        "packages": packages,
    }


def new_mapping_venvs(
    plan: Plan,
    previous: Mapping[str, dict[str, Any]],
    built: Mapping[str, dict[str, str]],
    removed: Collection[str],
) -> dict[str, dict[str, Any]]:
    """Previous entries, with built venvs replaced, unchanged ones refreshed, removed ones dropped.

    ``built`` holds the installed packages of each venv built successfully. A failed build keeps
    its previous entry (the previous venv is still in place), and keys outside --only keep theirs.
    """
    venvs = {key: entry for key, entry in previous.items() if key not in removed}
    for planned in plan.venvs:
        if planned.action == UNCHANGED:
            packages = previous[planned.key].get("packages", {})
            venvs[planned.key] = _entry(planned, plan.python_version, packages)
        elif planned.key in built:
            venvs[planned.key] = _entry(planned, plan.python_version, built[planned.key])
    return venvs


def render_mapping(python_version: str, venvs: dict[str, dict[str, Any]]) -> str:
    """The mapping's exact text: sorted keys so equal content gives equal bytes."""
    document = {"format": MAPPING_FORMAT, "python": python_version, "venvs": venvs}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def current_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace ``path`` with ``text`` unless it already holds exactly that."""
    if current_text(path) == text:
        return False
    # Readers are the services' own users; the file holds paths and versions, no secrets.
    write_atomically(path, text.encode(), 0o644)
    return True


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` by renaming a complete, synced file over it: readers never see half of it.

    Also writes the wheelhouse stamp (through write_if_changed) and the host's uv binary.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
