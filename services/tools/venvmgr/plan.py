"""Decide, without building anything, what a run must create, update, remove or leave alone.

This is the whole of a no-change run: hash the requirement files, compare with the mapping,
stat each venv's python. No uv call and no subprocess per venv, so 400 modules take
milliseconds, and --dry-run (Ansible check mode) shows exactly what a real run would do.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .discovery import VenvSpec, venvs_on_disk
from .errors import VenvManagerError
from .hashing import venv_hash
from .requirements import RequirementsError, read_requirements

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
INVALID = "invalid"


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
