"""What the results depend on: the controller's cores and load, tool versions, the commit measured."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

from barestack_bench.settings import REPO_ROOT, VENV_BIN


def _first_line(argv: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as error:
        return f"unavailable ({error.strerror})"
    text = (completed.stdout or completed.stderr).strip()
    return text.splitlines()[0].strip() if text else "unavailable"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def controller_facts() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ansible": _first_line([str(VENV_BIN / "ansible-playbook"), "--version"]),
        "wrk": _first_line(["wrk", "--version"]),
        "uv": _first_line([str(VENV_BIN / "uv"), "--version"]),
        # Read-only: which commit the numbers belong to (the tree may hold uncommitted work).
        "commit": _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "load_average_start": load_average(),
    }
