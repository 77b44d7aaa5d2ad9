"""The host side: build the venvs a plan asks for with uv, swap them in, prune, rewrite the mapping.

Also ``extract-uv``, which puts the uv binary these builds use in place. Runs under the host's
system python3 before any venv exists: stdlib only.

Builds happen in a temp folder beside the final path (same filesystem, so rename is atomic);
the old venv is renamed aside before the new one is renamed in, and only then deleted. Each
distinct requirement set (venv hash) is built with uv once per run; the other venvs with that
hash get a hardlinked copy of it, which is byte for byte what uv would build at their path (the
venvs are --relocatable and hold no path of their own). A venv fails alone, or with the venvs
sharing its set when that set cannot build: on any failure its previous venv and mapping entry
stay as they were.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .discovery import VenvManagerError, canonical_name, venv_path_for_key
from .plan import (
    CREATE,
    INVALID,
    UPDATE,
    Plan,
    PlannedVenv,
    current_text,
    new_mapping_venvs,
    plan_tree,
    render_mapping,
    write_atomically,
    write_if_changed,
)
from .report import build_report, diff_summary

TEMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
LOCK_FILENAME = ".lock"
# Enough of uv's stderr to name the unsatisfiable requirement, small enough for a report.
MAX_ERROR_CHARS = 4000
UV_TIMEOUT_SECONDS = 900
_UV_WHEEL_GLOB = "uv-*.whl"
_UV_MEMBER_RE = re.compile(r"^uv-[^/]+\.data/scripts/uv$")


# --- the build command -----------------------------------------------------------------------


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


@dataclass(frozen=True)
class BuildResult:
    key: str
    error: str | None = None
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_build(options: BuildOptions) -> tuple[dict[str, Any], int]:
    """Report and exit code (0 all good, 1 some venv failed). Raises VenvManagerError on bad input."""
    plan, previous = plan_tree(
        options.services_dir, options.venvs_dir, options.mapping, options.python, options.only
    )
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
            results = build_all(plan.builds, uv, options)
        for key in plan.removals:
            remove_venv(venv_path_for_key(options.venvs_dir, key))
            removed.append(key)
        built = {key: result.packages for key, result in results.items() if result.ok}
        after = new_mapping_venvs(plan, previous, built, removed)
        mapping_changed = write_if_changed(options.mapping, render_mapping(plan.python_version, after))

    created = [key for key in plan.keys(CREATE) if key in built]
    updated = [key for key in plan.keys(UPDATE) if key in built]
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


def _invalid_failures(plan: Plan) -> list[dict[str, str]]:
    return [
        {"venv": planned.key, "error": f"{planned.key}: {planned.error}"}
        for planned in plan.with_action(INVALID)
    ]


def _dry_run_report(options: BuildOptions, plan: Plan, previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    created = plan.keys(CREATE)
    updated = plan.keys(UPDATE)
    after = new_mapping_venvs(plan, previous, {planned.key: {} for planned in plan.builds}, plan.removals)
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


def _check_build_inputs(options: BuildOptions, plan: Plan) -> "Uv | None":
    """Fail before touching anything if the builds this plan needs cannot possibly run."""
    if not plan.builds:
        return None
    if any(planned.requirements for planned in plan.builds) and not options.wheelhouse.is_dir():
        raise VenvManagerError(f"wheelhouse {options.wheelhouse} does not exist")
    cache_dir = options.cache_dir or options.venvs_dir / ".uv-cache"
    return Uv(binary=find_uv(options.uv), cache_dir=Path(os.path.abspath(cache_dir)))


def build_all(builds: list[PlannedVenv], uv: "Uv", options: BuildOptions) -> dict[str, BuildResult]:
    """Results by key. uv does the work in subprocesses, so threads are enough to use the cores.

    Venvs with the same hash would get the same files: uv builds the first of each such set,
    the others are hardlinked copies of it, made in the same pool once it is in place.
    """
    if not builds:
        return {}
    results: dict[str, BuildResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        sources = {
            pool.submit(build_venv, same[0], uv, options.python, options.wheelhouse): same
            for same in same_hash_groups(builds)
        }
        copies: list[Future[BuildResult]] = []
        for done in as_completed(sources):
            source, *others = sources[done]
            built = done.result()
            results[built.key] = built
            for planned in others:
                if built.ok:
                    copies.append(pool.submit(copy_venv, source.venv_path, planned, built.packages))
                else:
                    # Same requirements, same wheelhouse: uv would fail the same way for these.
                    results[planned.key] = BuildResult(planned.key, error=built.error)
        for copied in copies:
            result = copied.result()
            results[result.key] = result
    return results


def same_hash_groups(builds: list[PlannedVenv]) -> list[list[PlannedVenv]]:
    """The builds grouped by venv hash, in plan order: the first of each group is the one uv builds."""
    groups: dict[str, list[PlannedVenv]] = {}
    for planned in builds:
        groups.setdefault(planned.hash, []).append(planned)
    return list(groups.values())


def build_venv(planned: PlannedVenv, uv: "Uv", python: str, wheelhouse: Path) -> BuildResult:
    """Build one venv into a temp dir and swap it in; on any failure the old venv stays."""
    final = planned.venv_path
    temp = _path_beside(final, TEMP_PREFIX)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        uv.create_venv(temp, python)
        if planned.requirements:
            uv.install(temp, planned.requirements, wheelhouse)
        swap_in(temp, final)
    except (UvError, OSError) as error:
        shutil.rmtree(temp, ignore_errors=True)
        return BuildResult(planned.key, error=str(error))
    return BuildResult(planned.key, packages=installed_packages(final))


def copy_venv(source: Path, planned: PlannedVenv, packages: dict[str, str]) -> BuildResult:
    """Give ``planned`` a hardlinked copy of ``source`` (a venv just built with the same hash),
    whose ``packages`` (read from ``source`` once) the copy reports as its own: same files.

    uv's --relocatable venvs carry no path of their own (pyvenv.cfg names the base Python, the
    activate and console scripts find the venv from their own location, RECORD paths are
    relative, bin/python links to the base interpreter), and their files are already hardlinks
    into the uv cache, so linking the files again gives what uv would build here. Symlinks stay
    symlinks with the same target. Like a build: temp dir beside the final path, then swap_in.
    """
    final = planned.venv_path
    temp = _path_beside(final, TEMP_PREFIX)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, temp, symlinks=True, copy_function=os.link)
        swap_in(temp, final)
    except OSError as error:  # shutil.Error (copytree's) is an OSError
        shutil.rmtree(temp, ignore_errors=True)
        return BuildResult(planned.key, error=f"hardlinking a copy of {source} (same requirements): {error}")
    return BuildResult(planned.key, packages=dict(packages))


def installed_packages(venv: Path) -> dict[str, str]:
    """Canonical distribution name -> version of every package in the venv (no subprocess per venv)."""
    packages: dict[str, str] = {}
    site_packages = [str(path) for path in sorted(venv.glob("lib/python*/site-packages"))]
    for distribution in importlib.metadata.distributions(path=site_packages):
        metadata = distribution.metadata  # empty, or None on newer Pythons, without a METADATA file
        name, version = (metadata.get("Name"), metadata.get("Version")) if metadata else (None, None)
        if name and version:
            packages[canonical_name(name)] = version
    return dict(sorted(packages.items()))


# --- uv ------------------------------------------------------------------------------------


class UvError(Exception):
    """A uv command failed; the message is uv's own stderr."""


def find_uv(requested: str | None) -> str:
    """Path of the uv binary: the one given, else ``uv`` on PATH, else the one beside our Python."""
    if requested:
        found = shutil.which(requested)
        if found is None:
            raise VenvManagerError(f"uv binary {requested!r} not found or not executable")
        return found
    found = shutil.which("uv")
    if found is not None:
        return found
    beside_python = Path(sys.executable).parent / "uv"
    if os.access(beside_python, os.X_OK):
        return str(beside_python)
    raise VenvManagerError("no uv binary: pass --uv PATH (extract it from the wheelhouse with extract-uv)")


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_ERROR_CHARS else "…" + text[-MAX_ERROR_CHARS:]


@dataclass(frozen=True)
class Uv:
    """The uv binary, run offline against one shared cache."""

    binary: str
    cache_dir: Path

    def _environment(self) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            # A stray UV_INDEX_URL or UV_PYTHON from the caller must not steer an offline build.
            if not key.startswith("UV_")
        }
        environment.update(
            {
                "UV_CACHE_DIR": str(self.cache_dir),
                "UV_OFFLINE": "1",
                "UV_NO_CONFIG": "1",
                "UV_PYTHON_DOWNLOADS": "never",
                "UV_NO_PROGRESS": "1",
                "NO_COLOR": "1",
            }
        )
        return environment

    def _run(self, arguments: list[str]) -> None:
        try:
            completed = subprocess.run(
                [self.binary, *arguments],
                capture_output=True,
                text=True,
                env=self._environment(),
                timeout=UV_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UvError(f"uv {arguments[0]} timed out after {UV_TIMEOUT_SECONDS} s") from None
        except OSError as error:
            raise UvError(f"cannot run uv: {error}") from None
        if completed.returncode != 0:
            raise UvError(_tail(completed.stderr) or f"uv exited with {completed.returncode}")

    def create_venv(self, path: Path, python: str) -> None:
        # --relocatable: the venv is built in a temp dir and renamed into place.
        self._run(["venv", "--relocatable", "--quiet", "--python", python, str(path)])

    def install(self, venv: Path, requirements: Sequence[str], wheelhouse: Path) -> None:
        # The normalised requirements (exactly what was hashed) go on the command line.
        # hardlink from one shared cache: 400 venvs of the same wheels cost the disk once.
        self._run(
            [
                "pip",
                "install",
                "--quiet",
                "--offline",
                "--no-index",
                "--no-build",
                "--find-links",
                str(wheelhouse),
                "--link-mode",
                "hardlink",
                "--python",
                str(venv / "bin" / "python"),
                "--",
                *requirements,
            ]
        )


# --- putting venvs in place and taking them away -----------------------------------------------


def _path_beside(final: Path, prefix: str) -> Path:
    """A fresh, not yet existing path next to ``final`` (same filesystem: rename is atomic)."""
    return final.parent / f"{prefix}{final.name}-{os.getpid()}-{secrets.token_hex(4)}"


def swap_in(built: Path, final: Path) -> None:
    """Replace ``final`` with ``built``; on failure the previous venv is back at ``final``."""
    if not os.path.lexists(final):
        os.rename(built, final)
        return
    aside = _path_beside(final, OLD_PREFIX)
    os.rename(final, aside)
    try:
        os.rename(built, final)
    except OSError:
        os.rename(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def remove_venv(final: Path) -> None:
    """Delete a venv: renamed aside first so nothing half-deleted is ever found at its path."""
    if os.path.lexists(final):
        aside = _path_beside(final, OLD_PREFIX)
        os.rename(final, aside)
        shutil.rmtree(aside, ignore_errors=True)
    with contextlib.suppress(OSError):
        final.parent.rmdir()  # only succeeds once the service has no venv left


def remove_leftovers(venvs_dir: Path) -> None:
    """Delete temp/aside folders a killed run left behind (they never hold a live venv)."""
    if not venvs_dir.is_dir():
        return
    for service_dir in venvs_dir.iterdir():
        if not service_dir.is_dir() or service_dir.name.startswith("."):
            continue
        for entry in service_dir.iterdir():
            if entry.name.startswith((TEMP_PREFIX, OLD_PREFIX)):
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(directory: Path, name: str = LOCK_FILENAME) -> Iterator[None]:
    """Serialise runs on one machine: two builds swapping the same venv would race (and two
    wheelhouse builds of the same folder, on the controller, would download the same wheels)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / name, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


# --- the extract-uv command --------------------------------------------------------------------
# The host has no pip and no network, only the wheelhouse; a wheel is a zip file whose
# ``uv-X.Y.Z.data/scripts/uv`` member is the static uv binary.


def find_uv_wheel(wheelhouse: Path) -> Path:
    if not wheelhouse.is_dir():
        raise VenvManagerError(f"wheelhouse {wheelhouse} does not exist")
    wheels = sorted(wheelhouse.glob(_UV_WHEEL_GLOB))
    if len(wheels) != 1:
        found = ", ".join(wheel.name for wheel in wheels) or "none"
        raise VenvManagerError(f"expected exactly one uv wheel in {wheelhouse}, found: {found}")
    return wheels[0]


def _file_sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def extract_uv(wheelhouse: Path, dest: Path) -> dict[str, Any]:
    """Install the uv binary at ``dest`` (atomically), unless it is already that binary."""
    wheel = find_uv_wheel(wheelhouse)
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if _UV_MEMBER_RE.match(name)]
            if len(members) != 1:
                raise VenvManagerError(f"{wheel.name} has no uv binary under *.data/scripts/")
            binary = archive.read(members[0])
    except zipfile.BadZipFile as error:
        raise VenvManagerError(f"{wheel} is not a valid wheel: {error}") from None
    digest = hashlib.sha256(binary).hexdigest()
    report = {"changed": False, "dest": str(dest), "wheel": wheel.name, "sha256": digest}
    if _file_sha256(dest) == digest and os.access(dest, os.X_OK):
        return report
    write_atomically(dest, binary, 0o755)
    report["changed"] = True
    return report
