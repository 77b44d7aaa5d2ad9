"""Download exactly the pinned wheels for the target with ``pip download`` (controller side).

pip refuses two versions of one package in one call, yet conflicting pins across modules
(packaging 23.2 here, 24.2 there) must both land in the wheelhouse; so the pins are split
into layers holding at most one version of each package, one pip call per layer.
"""

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .requirements import canonical_name
from .targets import Target

DOWNLOAD_TIMEOUT_SECONDS = 1800


class DownloadError(Exception):
    """pip could not fetch a pinned wheel for the target."""


def layers(pins: Mapping[str, set[str]]) -> list[dict[str, str]]:
    """Split name -> versions into lists of name -> one version; as many as the most versions."""
    result: list[dict[str, str]] = []
    for name in sorted(pins):
        for index, version in enumerate(sorted(pins[name])):
            if index == len(result):
                result.append({})
            result[index][name] = version
    return result


def wheel_name_and_version(filename: str) -> tuple[str, str]:
    """``MarkupSafe-3.0.2-cp311-...whl`` -> (``markupsafe``, ``3.0.2``)."""
    parts = filename[: -len(".whl")].split("-")
    if not filename.endswith(".whl") or len(parts) < 5:
        raise DownloadError(f"not a wheel file name: {filename}")
    return canonical_name(parts[0]), parts[1].lower()


def download_layer(layer: Mapping[str, str], destination: Path, target: Target) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--dest",
        str(destination),
    ]
    for platform in target.pip_platforms():
        command += ["--platform", platform]
    command += [f"{name}=={version}" for name, version in sorted(layer.items())]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DownloadError(f"cannot run pip download: {error}") from None
    if completed.returncode != 0:
        errors = [line for line in completed.stderr.splitlines() if not line.startswith("WARNING")]
        raise DownloadError("\n".join(errors).strip() or f"pip download exited with {completed.returncode}")


def download_wheels(pins: Mapping[str, set[str]], destination: Path, target: Target) -> list[str]:
    """Download every pin into ``destination``; return the wheel file names, one per pin."""
    destination.mkdir(parents=True, exist_ok=True)
    for layer in layers(pins):
        download_layer(layer, destination, target)
    wanted = {(name, version.lower()) for name, versions in pins.items() for version in versions}
    found: dict[tuple[str, str], str] = {}
    for path in sorted(destination.glob("*.whl")):
        found[wheel_name_and_version(path.name)] = path.name
    missing = sorted(f"{name}=={version}" for name, version in wanted - set(found))
    if missing:
        raise DownloadError(f"pip downloaded no wheel for: {', '.join(missing)}")
    return sorted(found[pin] for pin in wanted)
