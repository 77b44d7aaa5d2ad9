"""One measurement each of our venv step and of the naive way, on any Host.

Ours: the venv manager the app role runs (``venv_manager.py build``), into empty folders with an
empty uv cache (a cold first build), then again with nothing to do. The naive way: an Ansible loop
of ``ansible.builtin.pip`` (``python3 -m venv`` + ``pip install -r``) over modules, timed from
profile_tasks, then the same loop again. Disk is ``du`` of what each leaves behind, where a file
hardlinked into many venvs counts once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barestack_bench.ansible_run import run_playbook
from barestack_bench.hosts import Host, HostCommandError, disk_usage_bytes, run_timed
from barestack_bench.session import Session
from barestack_bench.settings import NAIVE_PLAYBOOK

NAIVE_TASK = r"^Naive venv per module"


@dataclass(frozen=True)
class VenvHost:
    """Paths on the host where the venvs get built (the same the app role uses)."""

    host: Host
    services_dir: str
    manager: str
    wheelhouse: str
    uv: str
    python: str
    scratch: str


@dataclass(frozen=True)
class OursRun:
    first_build_s: float
    venvs_built: int
    nochange_s: float
    nochange_changed: bool
    disk_bytes: int


@dataclass(frozen=True)
class NaiveRun:
    modules: int
    first_build_s: float
    nochange_s: float
    nochange_changed: int
    disk_bytes: int


def _manager_report(result_stdout: str, what: str) -> dict[str, Any]:
    try:
        report = json.loads(result_stdout)
    except json.JSONDecodeError:
        raise HostCommandError(
            f"{what}: the venv manager printed no JSON report: {result_stdout[-500:]}"
        ) from None
    if report.get("error") or report.get("failed"):
        failed = str(report.get("error") or report.get("failed"))
        raise HostCommandError(f"{what}: the venv manager failed: {failed[:1500]}")
    return report


def measure_ours(target: VenvHost, label: str) -> OursRun:
    root = f"{target.scratch}/ours-{label}"
    host = target.host
    host.run(["rm", "-rf", root])
    host.run(["mkdir", "-p", root])
    argv = [
        target.python, "-I", target.manager, "build",
        "--services-dir", target.services_dir,
        "--venvs-dir", f"{root}/venvs",
        "--mapping", f"{root}/venv_mapping.json",
        "--wheelhouse", target.wheelhouse,
        "--uv", target.uv,
        "--cache-dir", f"{root}/uv-cache",
        "--python", target.python,
    ]  # fmt: skip
    try:
        # check=False: exit 1 comes with a JSON report of what failed, which names the venv.
        first = run_timed(host, argv, check=False)
        first_report = _manager_report(first.stdout, f"{host.name}: first build ({label})")
        again = run_timed(host, argv, check=False)
        again_report = _manager_report(again.stdout, f"{host.name}: no-change build ({label})")
        disk = disk_usage_bytes(host, [f"{root}/venvs", f"{root}/uv-cache"])
    finally:
        host.run(["rm", "-rf", root], check=False)
    assert first.elapsed_s is not None and again.elapsed_s is not None
    return OursRun(
        first_build_s=first.elapsed_s,
        venvs_built=len(first_report.get("created", [])),
        nochange_s=again.elapsed_s,
        nochange_changed=bool(again_report.get("changed")),
        disk_bytes=disk,
    )


def naive_modules(tree: Path, services_dir: str, keys: Sequence[str]) -> list[dict[str, str]]:
    """The loop's items: each module's requirements file on the host, or "" when it has none."""
    items = []
    for key in keys:
        has_requirements = (tree / key / "requirements.txt").is_file()
        items.append(
            {"key": key, "requirements": f"{services_dir}/{key}/requirements.txt" if has_requirements else ""}
        )
    return items


def measure_naive(
    session: Session,
    target: VenvHost,
    inventory: Path,
    tree: Path,
    keys: Sequence[str],
    label: str,
    install_venv_package: bool,
) -> NaiveRun:
    root = f"{target.scratch}/naive-{label}"
    host = target.host
    host.run(["rm", "-rf", root])
    extra_vars = {
        "naive_root": root,
        "naive_modules": naive_modules(tree, target.services_dir, keys),
        "naive_wheelhouse": target.wheelhouse,
        "naive_python": target.python,
        "naive_install_venv_package": install_venv_package,
    }
    try:
        first = run_playbook(
            session.project,
            NAIVE_PLAYBOOK,
            inventory,
            session.log_path(f"naive-{label}"),
            session.secrets_dir,
            extra_vars,
        )
        again = run_playbook(
            session.project,
            NAIVE_PLAYBOOK,
            inventory,
            session.log_path(f"naive-{label}-again"),
            session.secrets_dir,
            extra_vars,
        )
        disk = disk_usage_bytes(host, [f"{root}/{key}" for key in keys])
    finally:
        host.run(["rm", "-rf", root], check=False)
    return NaiveRun(
        modules=len(keys),
        first_build_s=first.task_seconds(NAIVE_TASK),
        nochange_s=again.task_seconds(NAIVE_TASK),
        nochange_changed=again.changed,
        disk_bytes=disk,
    )
