"""The JSON reports: the build's (with its before/after summary for Ansible --diff) and the one
printed when the CLI stops on bad input. The wheelhouse and extract-uv commands build their own."""

from collections.abc import Mapping
from typing import Any

from .plan import UNCHANGED, Plan


def _summary_line(key: str, entry: Mapping[str, Any]) -> str:
    requirements = ", ".join(entry.get("requirements") or []) or "(no requirements)"
    return f"{key} [python {entry.get('python', '?')}]: {requirements}\n"


def diff_summary(
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    touched: set[str],
) -> dict[str, str]:
    """One line per created/updated/removed venv: what it held before and what it holds now."""
    return {
        "before": "".join(_summary_line(key, before[key]) for key in sorted(touched) if key in before),
        "after": "".join(_summary_line(key, after[key]) for key in sorted(touched) if key in after),
    }


def build_report(
    plan: Plan,
    *,
    created: list[str],
    updated: list[str],
    removed: list[str],
    failed: list[dict[str, str]],
    mapping_path: str,
    mapping_changed: bool,
    diff: dict[str, str],
    dry_run: bool,
) -> dict[str, Any]:
    unchanged = plan.keys(UNCHANGED)
    return {
        "changed": bool(created or updated or removed or mapping_changed),
        "dry_run": dry_run,
        "python": plan.python_version,
        "created": sorted(created),
        "updated": sorted(updated),
        "removed": sorted(removed),
        "unchanged": unchanged,
        "unchanged_count": len(unchanged),
        "failed": sorted(failed, key=lambda failure: failure["venv"]),
        "mapping": mapping_path,
        "mapping_changed": mapping_changed,
        "diff": diff,
    }


def error_report(message: str) -> dict[str, Any]:
    """What the CLI prints when it stops before changing anything."""
    return {"changed": False, "failed": [], "error": message}
