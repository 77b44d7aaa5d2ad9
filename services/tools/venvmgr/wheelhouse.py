"""The ``wheelhouse`` command (controller side): every wheel the host's venvs will need.

Each distinct requirement set of the services tree is resolved for the target Python and
platform, the pins are unioned (conflicting pins both stay) and exactly those wheels, plus
the uv wheel the host builds venvs with, are downloaded. A stamp keyed on every requirement
set and the target makes an unchanged tree a no-op that needs no network.
"""

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .discovery import discover
from .download import DownloadError, download_wheels
from .errors import VenvManagerError
from .mapping import write_if_changed
from .requirements import RequirementsError, read_requirements
from .resolve import ResolveError, compile_pins
from .targets import Target

STAMP_FILENAME = ".barestack-wheelhouse.json"
WHEELHOUSE_FORMAT = 1
_UV_VERSION_RE = re.compile(r"^uv (\d+\.\d+\.\d+)\b")

RequirementSets = dict[tuple[str, ...], list[str]]


def requirement_sets(services_dir: Path) -> tuple[RequirementSets, list[dict[str, Any]]]:
    """Distinct non-empty requirement sets -> the venv keys using each; plus unreadable files."""
    sets: RequirementSets = {}
    failures: list[dict[str, Any]] = []
    for spec in discover(services_dir):
        try:
            requirements = read_requirements(spec.requirements_file)
        except RequirementsError as error:
            failures.append({"venvs": [spec.key], "error": str(error)})
            continue
        if requirements:
            sets.setdefault(requirements, []).append(spec.key)
    return sets, failures


def uv_version(uv: str) -> str:
    """Version of the controller's uv; the host gets the same uv from the wheelhouse."""
    try:
        output = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise VenvManagerError(f"cannot run {uv} --version: {error}") from None
    match = _UV_VERSION_RE.match(output.stdout.strip())
    if match is None:
        raise VenvManagerError(f"cannot read the uv version from {output.stdout.strip()!r}")
    return match[1]


def wheelhouse_key(sets: RequirementSets, target: Target, uv: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"wheelhouse-format={WHEELHOUSE_FORMAT}\npython={target.python_version}\n".encode())
    digest.update(f"platform={target.platform}\nuv={uv}\n".encode())
    for requirements in sorted(sets):
        digest.update(("\n".join(requirements) + "\n--\n").encode())
    return digest.hexdigest()


def _read_stamp(out: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((out / STAMP_FILENAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _stamp_is_current(out: Path, key: str) -> bool:
    stamp = _read_stamp(out)
    wheels = stamp.get("wheels")
    return (
        stamp.get("key") == key
        and isinstance(wheels, list)
        and all(isinstance(name, str) and (out / name).is_file() for name in wheels)
    )


def _resolve_all(
    uv: str, sets: RequirementSets, target: Target, jobs: int
) -> tuple[dict[str, set[str]], list[dict[str, Any]]]:
    """Union of the pins of every set that resolves; a set that does not is reported, not fatal."""
    pins: dict[str, set[str]] = {}
    failures: list[dict[str, Any]] = []
    ordered: Sequence[tuple[str, ...]] = sorted(sets)

    def resolve(requirements: tuple[str, ...]) -> dict[str, str] | ResolveError:
        try:
            return compile_pins(uv, requirements, target)
        except ResolveError as error:
            return error

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for requirements, outcome in zip(ordered, pool.map(resolve, ordered), strict=True):
            if isinstance(outcome, ResolveError):
                failures.append({"venvs": sorted(sets[requirements]), "error": str(outcome)})
                continue
            for name, version in outcome.items():
                pins.setdefault(name, set()).add(version)
    return pins, failures


def _install_wheels(incoming: Path, out: Path, wheels: list[str]) -> tuple[list[str], list[str]]:
    """Move the new wheels into ``out`` and delete the ones no pin asks for; (added, removed)."""
    added: list[str] = []
    for name in wheels:
        # A file name on PyPI always holds the same bytes, so an existing one is kept as is.
        if not (out / name).is_file():
            (incoming / name).replace(out / name)
            added.append(name)
    removed = sorted(path.name for path in out.glob("*.whl") if path.name not in set(wheels))
    for name in removed:
        (out / name).unlink()
    return sorted(added), removed


def build_wheelhouse(
    services_dir: Path, out: Path, target: Target, uv: str, jobs: int
) -> tuple[dict[str, Any], int]:
    sets, failures = requirement_sets(services_dir)
    version = uv_version(uv)
    key = wheelhouse_key(sets, target, version)
    report: dict[str, Any] = {
        "changed": False,
        "out": str(out),
        "key": key,
        "python_version": target.python_version,
        "platform": target.platform,
        "uv_version": version,
        "requirement_sets": len(sets),
        "added": [],
        "removed": [],
        "failed": failures,
    }
    if not failures and _stamp_is_current(out, key):
        report.update(up_to_date=True, wheels=_read_stamp(out)["wheels"])
        return report, 0

    pins, resolve_failures = _resolve_all(uv, sets, target, jobs)
    failures.extend(resolve_failures)
    pins.setdefault("uv", set()).add(version)
    out.mkdir(parents=True, exist_ok=True)
    incoming = out / ".incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    try:
        wheels = download_wheels(pins, incoming, target)
        added, removed = _install_wheels(incoming, out, wheels)
    except DownloadError as error:
        failures.append({"venvs": [], "error": str(error)})
        report.update(up_to_date=False, wheels=[])
        return report, 1
    finally:
        shutil.rmtree(incoming, ignore_errors=True)

    stamp_path = out / STAMP_FILENAME
    if failures:
        # No stamp: the next run must try the failed sets again instead of calling it done.
        stamp_path.unlink(missing_ok=True)
    else:
        stamp: Mapping[str, Any] = {
            "format": WHEELHOUSE_FORMAT,
            "key": key,
            "python_version": target.python_version,
            "platform": target.platform,
            "uv_version": version,
            "wheels": wheels,
        }
        write_if_changed(stamp_path, json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    report.update(
        changed=bool(added or removed), up_to_date=False, wheels=wheels, added=added, removed=removed
    )
    return report, 1 if failures else 0
