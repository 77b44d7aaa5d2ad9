"""The modules' and services' venvs on this machine, built the way a host builds them.

``make dev`` and ``make run-module`` share this: a wheelhouse for this machine's system python3
(``.cache/wheelhouse/local-py<X.Y.Z>-<platform>``; PyPI is used only when a requirements file
changed, as ``venv_manager.py wheelhouse`` does for a host), the uv binary unpacked from it, and
``venv_manager.py build`` run with the system python3 (``-I``, stdlib only) into a state folder
(default ``.cache/dev``: ``venvs/``, ``venv_mapping.json``, ``uv-cache/``). A second run with
nothing changed does no network, no uv call and takes a fraction of a second.

Run one module as a host runs it, through ``services/tools/run_module.sh`` itself::

    python tests/dev/dev_venvs.py run-module backend/a-001 app.py 1.10 1.9

Exit codes: the module's own, or 2 for bad usage / unknown module / refused requirements (the
venv manager's message on stderr), 1 when a venv build failed.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
VENV_MANAGER_NAME = Path("tools") / "venv_manager.py"
RUN_MODULE_NAME = Path("tools") / "run_module.sh"
SYSTEM_PYTHON = "/usr/bin/python3"
PLATFORM = f"{platform.machine()}-manylinux_2_28"
DEFAULT_STATE = REPO / ".cache" / "dev"
WHEELHOUSE_CACHE = REPO / ".cache" / "wheelhouse"

Say = Callable[[str], None]


class DevError(RuntimeError):
    """A step of the local setup failed; the message says which and why."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _stderr(message: str) -> None:
    print(f"dev: {message}", file=sys.stderr, flush=True)


def python_version(python: str = SYSTEM_PYTHON) -> str:
    completed = subprocess.run(
        [python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def controller_uv() -> str:
    """The uv that resolves the wheelhouse: beside this interpreter (the repo's .venv), else on PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise DevError("uv not found (make setup installs it into .venv)")
    return found


@dataclass(frozen=True)
class DevVenvs:
    """One services tree's venvs in one state folder (the venvs' folder and mapping belong together)."""

    services: Path = SERVICES
    state: Path = DEFAULT_STATE
    python: str = SYSTEM_PYTHON

    @property
    def venvs(self) -> Path:
        return self.state / "venvs"

    @property
    def mapping(self) -> Path:
        return self.state / "venv_mapping.json"

    @property
    def uv(self) -> Path:
        return self.state / "bin" / "uv"

    @property
    def uv_cache(self) -> Path:
        return self.state / "uv-cache"

    @property
    def run_module(self) -> Path:
        return self.services / RUN_MODULE_NAME

    def wheelhouse(self, version: str) -> Path:
        return WHEELHOUSE_CACHE / f"local-py{version}-{PLATFORM}"

    def _uv_outdated(self, wheelhouse: Path) -> bool:
        """extract-uv compares the whole binary (over a second); skip it while our copy is newer."""
        wheels = list(wheelhouse.glob("uv-*.whl"))
        try:
            return len(wheels) != 1 or self.uv.stat().st_mtime < wheels[0].stat().st_mtime
        except FileNotFoundError:
            return True

    def _manager(self, python: str, *arguments: str | Path) -> tuple[dict[str, Any], int, str]:
        isolation = ["-I"] if python == self.python else []
        completed = subprocess.run(
            [python, *isolation, str(self.services / VENV_MANAGER_NAME), *map(str, arguments)],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            report = json.loads(completed.stdout)
        except json.JSONDecodeError:
            report = {"error": completed.stdout.strip() or "no report"}
        return report, completed.returncode, completed.stderr

    def ensure(self, only: Sequence[str] = (), say: Say = _stderr) -> dict[str, Any]:
        """Venvs up to date (wheelhouse and uv too, when a venv must be built). Raises DevError.

        A dry run first: when no venv needs building (the usual case) the wheelhouse is not even
        looked at, and a refused requirements file is reported before anything is touched.
        """
        started = time.monotonic()
        version = python_version(self.python)
        wheelhouse = self.wheelhouse(version)
        build: list[str | Path] = ["build", "--services-dir", self.services, "--venvs-dir", self.venvs]
        build += ["--mapping", self.mapping, "--wheelhouse", wheelhouse, "--uv", self.uv]
        build += ["--cache-dir", self.uv_cache, "--python", self.python]
        for key in only:
            build += ["--only", key]
        plan, code, stderr = self._manager(self.python, *build, "--dry-run")
        if code != 0:
            raise DevError(f"venv_manager.py build: {_reason(plan, stderr)}", code)
        if plan.get("created") or plan.get("updated"):
            self._wheelhouse(version, wheelhouse, say)
        report = plan
        if plan.get("changed") or plan.get("mapping_changed"):
            report, code, stderr = self._manager(self.python, *build)
            if code != 0:
                raise DevError(f"venv_manager.py build: {_reason(report, stderr)}", code)
        built = [*report.get("created", []), *report.get("updated", [])]
        say(
            f"venvs: {len(built)} built{' (' + ', '.join(built) + ')' if built else ''}, "
            f"{report.get('unchanged_count', 0)} unchanged, {len(report.get('removed', []))} removed "
            f"({time.monotonic() - started:.1f} s)"
        )
        return report

    def _wheelhouse(self, version: str, wheelhouse: Path, say: Say) -> None:
        """The wheels for this machine's python (PyPI only when a requirement set changed), and uv."""
        arguments = ["--python-version", version, "--platform", PLATFORM, "--uv", controller_uv()]
        report, code, stderr = self._manager(
            sys.executable, "wheelhouse", "--services-dir", self.services, "--out", wheelhouse, *arguments
        )
        if code != 0:
            raise DevError(f"wheelhouse for python {version} failed: {_reason(report, stderr)}", code)
        if not report.get("up_to_date"):
            say(f"wheelhouse {wheelhouse} updated from PyPI ({len(report.get('wheels', []))} wheels)")
        if self._uv_outdated(wheelhouse):
            report, code, stderr = self._manager(
                self.python, "extract-uv", "--wheelhouse", wheelhouse, "--dest", self.uv
            )
            if code != 0:
                raise DevError(f"cannot unpack uv from {wheelhouse}: {_reason(report, stderr)}", code)


def _reason(report: dict[str, Any], stderr: str) -> str:
    if report.get("failed"):
        return "; ".join(str(item.get("error", item)) for item in report["failed"])
    return str(report.get("error") or stderr.strip() or "unknown error")


def run_module(venvs: DevVenvs, key: str, arguments: Sequence[str]) -> int:
    """Build (or reuse) the module's venv, then exec run_module.sh as a host's operator would."""
    venvs.ensure(only=(key,))
    environ = dict(os.environ)
    environ["BARESTACK_VENV_MAPPING"] = str(venvs.mapping)
    # On a host run_module.sh reads /etc/barestack/modules.env; here only a file you name.
    environ["BARESTACK_ENV_FILE"] = os.environ.get("BARESTACK_ENV_FILE", "")
    sys.stdout.flush()
    os.execve(str(venvs.run_module), [str(venvs.run_module), key, *arguments], environ)
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev_venvs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services-dir", type=Path, default=SERVICES)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="bring every venv up to date")
    run = commands.add_parser("run-module", help="run <service>/<module> [script] [args...] in its venv")
    run.add_argument("module")
    run.add_argument("arguments", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)
    venvs = DevVenvs(services=arguments.services_dir.resolve(), state=arguments.state_dir.resolve())
    try:
        if arguments.command == "build":
            venvs.ensure()
            return 0
        return run_module(venvs, arguments.module, arguments.arguments)
    except DevError as error:
        _stderr(str(error))
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
