"""The ``extract-uv`` command (host side): unpack the uv binary from its wheel with zipfile.

The host has no pip and no network, only the wheelhouse; a wheel is a zip file whose
``uv-X.Y.Z.data/scripts/uv`` member is the static uv binary.
"""

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .errors import VenvManagerError

_UV_WHEEL_GLOB = "uv-*.whl"
_UV_MEMBER_RE = re.compile(r"^uv-[^/]+\.data/scripts/uv$")


def _file_sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def find_uv_wheel(wheelhouse: Path) -> Path:
    if not wheelhouse.is_dir():
        raise VenvManagerError(f"wheelhouse {wheelhouse} does not exist")
    wheels = sorted(wheelhouse.glob(_UV_WHEEL_GLOB))
    if len(wheels) != 1:
        found = ", ".join(wheel.name for wheel in wheels) or "none"
        raise VenvManagerError(f"expected exactly one uv wheel in {wheelhouse}, found: {found}")
    return wheels[0]


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(binary)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o755)
        os.replace(temp_name, dest)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    report["changed"] = True
    return report
