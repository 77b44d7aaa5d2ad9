"""Resolve one requirement set to exact pins for the target, with ``uv pip compile`` (controller side)."""

import re
import subprocess
from collections.abc import Sequence

from .requirements import canonical_name
from .targets import Target

_PIN_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)$")
COMPILE_TIMEOUT_SECONDS = 600


class ResolveError(Exception):
    """The set cannot be resolved for the target; the message is uv's."""


def compile_pins(uv: str, requirements: Sequence[str], target: Target) -> dict[str, str]:
    """Canonical name -> version of the full closure of ``requirements`` on the target."""
    command = [
        uv,
        "pip",
        "compile",
        "-",
        "--quiet",
        "--no-header",
        "--no-annotate",
        "--color",
        "never",
        "--only-binary",
        ":all:",
        # Resolving for 3.13 must not make uv fetch a 3.13 interpreter: markers come from
        # --python-version, any local interpreter will do.
        "--no-python-downloads",
        "--python-version",
        target.python_version,
        "--python-platform",
        target.platform,
    ]
    try:
        completed = subprocess.run(
            command,
            input="".join(f"{requirement}\n" for requirement in requirements),
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ResolveError(f"cannot run uv pip compile: {error}") from None
    if completed.returncode != 0:
        raise ResolveError(completed.stderr.strip() or f"uv pip compile exited with {completed.returncode}")
    pins: dict[str, str] = {}
    for line in completed.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN_RE.match(line)
        if match is None:
            raise ResolveError(f"unexpected line in uv pip compile output: {line!r}")
        pins[canonical_name(match["name"])] = match["version"]
    return pins
