"""The full version of the interpreter the venvs are built for."""

import os
import re
import subprocess
import sys

from .errors import VenvManagerError

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def python_full_version(python: str) -> str:
    """``X.Y.Z`` of ``python``: one subprocess per run at most (none for our own interpreter)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return "{}.{}.{}".format(*sys.version_info[:3])
    try:
        completed = subprocess.run(
            [python, "-c", "import sys; print('{}.{}.{}'.format(*sys.version_info[:3]))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise VenvManagerError(f"cannot run the venv interpreter {python}: {error}") from None
    version = completed.stdout.strip()
    if completed.returncode != 0 or not _VERSION_RE.match(version):
        raise VenvManagerError(
            f"cannot read the version of the venv interpreter {python}: {completed.stderr.strip()}"
        )
    return version
