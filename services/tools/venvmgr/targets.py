"""The target host's Python version and platform, spelled for uv and for pip.

The controller's Python is not the host's (trixie has 3.13, bookworm 3.11), so wheels are
chosen for the target's version and glibc, never for the machine building the wheelhouse.
"""

import re
from dataclasses import dataclass

from .errors import VenvManagerError

_PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}(?:\.\d{1,2})?$")
_PLATFORM_RE = re.compile(r"^(?P<arch>x86_64|aarch64)-manylinux_2_(?P<glibc_minor>\d{1,2})$")
# The oldest glibc a manylinux wheel can claim (manylinux1 is glibc 2.5).
_OLDEST_GLIBC_MINOR = 5
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class Target:
    """``python_version`` is X.Y or X.Y.Z (prefer the host's full version: markers such as
    ``python_full_version < '3.11.3'`` pull in extra packages on bookworm's 3.11.2)."""

    python_version: str
    platform: str

    @classmethod
    def parse(cls, python_version: str, platform: str) -> "Target":
        if not _PYTHON_VERSION_RE.match(python_version):
            raise VenvManagerError(f"bad --python-version {python_version!r}: expected 3.Y or 3.Y.Z")
        if not _PLATFORM_RE.match(platform):
            raise VenvManagerError(
                f"bad --platform {platform!r}: expected ARCH-manylinux_2_N, e.g. x86_64-manylinux_2_28"
            )
        return cls(python_version, platform)

    def pip_platforms(self) -> list[str]:
        """Every manylinux tag a host with this glibc accepts, newest first, for pip --platform."""
        match = _PLATFORM_RE.match(self.platform)
        assert match is not None  # checked in parse()
        arch = match["arch"]
        tags: list[str] = []
        for minor in range(int(match["glibc_minor"]), _OLDEST_GLIBC_MINOR - 1, -1):
            tags.append(f"manylinux_2_{minor}_{arch}")
            if minor in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
        return tags
