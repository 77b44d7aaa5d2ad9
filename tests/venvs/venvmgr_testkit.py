"""Helpers for the venv manager's tests: paths, running the CLI and run_module.sh, test trees.

A module of its own (not conftest.py) so test files can import it by a name no other test
directory uses.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
TOOLS = SERVICES / "tools"
VENV_MANAGER = TOOLS / "venv_manager.py"
RUN_MODULE = TOOLS / "run_module.sh"
GENERATOR = TOOLS / "generate_modules.py"
WHEELHOUSE_CACHE = REPO / ".cache" / "wheelhouse-test"
SAMPLE_SERVICES = ("backend", "frontend", "infrastructure")
# The host side runs on the system python3 with nothing but the stdlib; so do the tests.
TARGET_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

for path in (TOOLS, REPO / "tests" / "services"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from generate_modules import REQUIREMENT_POOL  # noqa: E402
from venvmgr.discovery import MODULE_NAME_RE  # noqa: E402


def run_manager(*arguments: str | Path, python: str = TARGET_PYTHON) -> tuple[dict[str, Any], int, str]:
    """Run venv_manager.py like the Ansible module will: (JSON report, exit code, stderr).

    ``-I -S`` (no site-packages, no environment) proves the host side needs only the stdlib.
    """
    isolation = ["-I", "-S"] if python == TARGET_PYTHON else []
    completed = subprocess.run(
        [python, *isolation, str(VENV_MANAGER), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"no JSON report (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        ) from None
    return report, completed.returncode, completed.stderr


def run_wheelhouse(
    services: Path, out: Path, python_version: str, *extra: str | Path
) -> tuple[dict[str, Any], int, str]:
    """Run the wheelhouse command as the app role does: on the controller's Python (it has packaging)."""
    arguments = ("wheelhouse", "--services-dir", services, "--out", out, "--python-version", python_version)
    return run_manager(*arguments, *extra, python=sys.executable)


def copy_sample_modules(destination: Path) -> Path:
    """The repo's sample modules and _shared packages (not the services' own apps) in a tmp tree."""
    for service in SAMPLE_SERVICES:
        for folder in sorted((SERVICES / service).iterdir()):
            if folder.name == "_shared" or MODULE_NAME_RE.match(folder.name):
                shutil.copytree(
                    folder, destination / service / folder.name, ignore=shutil.ignore_patterns("__pycache__")
                )
    return destination


@dataclass(frozen=True)
class Layout:
    """Where one test's build puts things; ``build`` runs the manager against it."""

    services: Path
    venvs: Path
    mapping: Path
    wheelhouse: Path
    uv: Path
    cache: Path

    def build(self, *extra: str | Path) -> tuple[dict[str, Any], int, str]:
        return run_manager(
            "build",
            "--services-dir",
            self.services,
            "--venvs-dir",
            self.venvs,
            "--mapping",
            self.mapping,
            "--wheelhouse",
            self.wheelhouse,
            "--uv",
            self.uv,
            "--cache-dir",
            self.cache,
            "--python",
            TARGET_PYTHON,
            *extra,
        )

    def mapping_document(self) -> dict[str, Any]:
        return json.loads(self.mapping.read_text(encoding="utf-8"))

    def run_module(
        self, key: str, *arguments: str, env_file: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BARESTACK_VENV_MAPPING": str(self.mapping),
            "BARESTACK_ENV_FILE": str(env_file or self.services / "no-env-file"),
        }
        return subprocess.run(
            [str(RUN_MODULE), key, *arguments],
            capture_output=True,
            text=True,
            env=environment,
            input=stdin,
            timeout=120,
            check=False,
        )


def make_layout(root: Path, services: Path, wheelhouse: Path, uv: Path, cache: Path) -> Layout:
    return Layout(
        services=services,
        venvs=root / "venvs",
        mapping=root / "shared" / "venv_mapping.json",
        wheelhouse=wheelhouse,
        uv=uv,
        cache=cache,
    )


def write_module(services: Path, key: str, requirements: Sequence[str] = (), app: str | None = None) -> Path:
    """A small real module: by default it prints the versions of the packages it requires."""
    module_dir = services / key
    module_dir.mkdir(parents=True, exist_ok=True)
    names = [requirement.split("==")[0] for requirement in requirements]
    (module_dir / "app.py").write_text(
        app
        or (
            "import importlib.metadata, json\n"
            f"print(json.dumps({{name: importlib.metadata.version(name) for name in {names!r}}}))\n"
        )
    )
    if requirements:
        (module_dir / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements))
    return module_dir


def wheelhouse_tree(root: Path) -> Path:
    """Sample modules plus one module per generator pool set: every pin any test builds."""
    copy_sample_modules(root)
    for number, (_, pins) in enumerate(REQUIREMENT_POOL, start=1):
        module = root / "pool" / f"p-{number:03d}"
        module.mkdir(parents=True)
        (module / "app.py").write_text('"""Stands for the generated modules using this set."""\n')
        (module / "requirements.txt").write_text("".join(f"{pin}\n" for pin in pins))
    return root
