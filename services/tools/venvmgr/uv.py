"""Run the uv binary to create a venv and install its requirements offline from a wheelhouse."""

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import VenvManagerError

# Enough of uv's stderr to name the unsatisfiable requirement, small enough for a report.
MAX_ERROR_CHARS = 4000
UV_TIMEOUT_SECONDS = 900


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
