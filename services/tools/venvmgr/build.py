"""The ``build`` command: plan, build what changed, prune what is gone, rewrite the mapping."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .builder import BuildResult, build_all, build_venv
from .discovery import discover, venv_path_for_key
from .errors import VenvManagerError
from .mapping import current_text, load_mapping_venvs, render_mapping, write_if_changed
from .plan import CREATE, INVALID, UNCHANGED, UPDATE, Plan, PlannedVenv, make_plan
from .python_info import python_full_version
from .report import build_report, diff_summary, planned_keys
from .swap import exclusive_lock, remove_leftovers, remove_venv
from .uv import Uv, find_uv


@dataclass(frozen=True)
class BuildOptions:
    services_dir: Path
    venvs_dir: Path
    mapping: Path
    wheelhouse: Path
    python: str
    uv: str | None
    cache_dir: Path | None
    jobs: int
    dry_run: bool
    only: tuple[str, ...]


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


def _new_mapping(
    plan: Plan,
    previous: dict[str, dict[str, Any]],
    results: dict[str, BuildResult],
    removed: list[str],
) -> dict[str, dict[str, Any]]:
    """Previous entries, with built venvs replaced, unchanged ones refreshed, removed ones dropped.

    A failed build keeps its previous entry (the previous venv is still in place), and keys
    outside --only keep theirs untouched.
    """
    venvs = {key: entry for key, entry in previous.items() if key not in removed}
    for planned in plan.venvs:
        if planned.action == UNCHANGED:
            packages = previous[planned.key].get("packages", {})
            venvs[planned.key] = _entry(planned, plan.python_version, packages)
        elif planned.key in results and results[planned.key].ok:
            venvs[planned.key] = _entry(planned, plan.python_version, results[planned.key].packages)
    return venvs


def _plan_for(options: BuildOptions) -> tuple[Plan, dict[str, dict[str, Any]]]:
    python_version = python_full_version(options.python)
    specs = discover(options.services_dir)
    previous = load_mapping_venvs(options.mapping)
    plan = make_plan(specs, previous, options.venvs_dir, python_version, options.only)
    return plan, previous


def _invalid_failures(plan: Plan) -> list[dict[str, str]]:
    return [
        {"venv": planned.key, "error": f"{planned.key}: {planned.error}"}
        for planned in plan.with_action(INVALID)
    ]


def _dry_run_report(options: BuildOptions, plan: Plan, previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    created = planned_keys(plan, CREATE)
    updated = planned_keys(plan, UPDATE)
    would_build = {planned.key: BuildResult(planned.key) for planned in plan.builds}
    after = _new_mapping(plan, previous, would_build, plan.removals)
    if created or updated or plan.removals:
        mapping_changed = True
    else:
        mapping_changed = current_text(options.mapping) != render_mapping(plan.python_version, after)
    touched = set(created) | set(updated) | set(plan.removals)
    return build_report(
        plan,
        created=created,
        updated=updated,
        removed=plan.removals,
        failed=_invalid_failures(plan),
        mapping_path=str(options.mapping),
        mapping_changed=mapping_changed,
        diff=diff_summary(previous, after, touched),
        dry_run=True,
    )


def _check_build_inputs(options: BuildOptions, plan: Plan) -> Uv | None:
    """Fail before touching anything if the builds this plan needs cannot possibly run."""
    if not plan.builds:
        return None
    if any(planned.requirements for planned in plan.builds) and not options.wheelhouse.is_dir():
        raise VenvManagerError(f"wheelhouse {options.wheelhouse} does not exist")
    cache_dir = options.cache_dir or options.venvs_dir / ".uv-cache"
    return Uv(binary=find_uv(options.uv), cache_dir=Path(os.path.abspath(cache_dir)))


def run_build(options: BuildOptions) -> tuple[dict[str, Any], int]:
    """Report and exit code (0 all good, 1 some venv failed). Raises VenvManagerError on bad input."""
    plan, previous = _plan_for(options)
    if options.dry_run:
        report = _dry_run_report(options, plan, previous)
        return report, 1 if report["failed"] else 0

    uv = _check_build_inputs(options, plan)
    # The venvs are read by the services' users; do not inherit a restrictive umask.
    os.umask(0o022)
    results: dict[str, BuildResult] = {}
    removed: list[str] = []
    with exclusive_lock(options.venvs_dir):
        remove_leftovers(options.venvs_dir)
        if uv is not None:
            results = build_all(
                plan.builds,
                options.jobs,
                lambda planned: build_venv(planned, uv, options.python, options.wheelhouse),
            )
        for key in plan.removals:
            remove_venv(venv_path_for_key(options.venvs_dir, key))
            removed.append(key)
        after = _new_mapping(plan, previous, results, removed)
        mapping_changed = write_if_changed(options.mapping, render_mapping(plan.python_version, after))

    succeeded = {key for key, result in results.items() if result.ok}
    created = [key for key in planned_keys(plan, CREATE) if key in succeeded]
    updated = [key for key in planned_keys(plan, UPDATE) if key in succeeded]
    failed = _invalid_failures(plan) + [
        {"venv": key, "error": f"{key}: {result.error}"} for key, result in results.items() if not result.ok
    ]
    report = build_report(
        plan,
        created=created,
        updated=updated,
        removed=removed,
        failed=failed,
        mapping_path=str(options.mapping),
        mapping_changed=mapping_changed,
        diff=diff_summary(previous, after, set(created) | set(updated) | set(removed)),
        dry_run=False,
    )
    return report, 1 if failed else 0
