"""Mounts: the per-machine overlay, and removing directories that might still have mounts inside.

A debootstrap killed mid-build leaves /proc and /sys mounted inside its target, and a crashed
machine leaves its overlay mounted; deleting such a tree naively would walk into the host's /proc
or through the overlay. So every removal unmounts what is below first and then deletes with
`rm --one-file-system`, which refuses to cross into any mount that is still there.
"""

import re
import subprocess
from pathlib import Path

from .errors import MachineError
from .hostcmd import run, tool_path


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as three octal digits (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def mount_points(mountinfo_text: str | None = None) -> list[Path]:
    """All current mount points, in the order the kernel lists them (parents before children)."""
    if mountinfo_text is None:
        mountinfo_text = Path("/proc/self/mountinfo").read_text()
    points = []
    for line in mountinfo_text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(Path(_unescape_mountinfo(fields[4])))
    return points


def overlay_lower_dirs(mountinfo_text: str | None = None) -> set[Path]:
    """Every directory some mounted overlay uses as its lower layer, whichever state dir made it.

    A cached rootfs in that set is in use by a running machine and must not be deleted.
    """
    if mountinfo_text is None:
        mountinfo_text = Path("/proc/self/mountinfo").read_text()
    lowers: set[Path] = set()
    for line in mountinfo_text.splitlines():
        _before, _, after = line.partition(" - ")
        fields = after.split()
        if len(fields) < 3 or fields[0] != "overlay":
            continue
        for option in fields[2].split(","):
            if option.startswith("lowerdir="):
                lowers.update(
                    Path(_unescape_mountinfo(part)) for part in option[len("lowerdir=") :].split(":")
                )
    return lowers


def mounts_under(directory: Path, mountinfo_text: str | None = None) -> list[Path]:
    """Mount points at or below `directory`, deepest first (the order to unmount them in)."""
    directory = directory.resolve() if directory.exists() else directory
    found = [
        point for point in mount_points(mountinfo_text) if point == directory or directory in point.parents
    ]
    return sorted(set(found), key=lambda point: len(point.parts), reverse=True)


def is_mount_point(directory: Path) -> bool:
    resolved = directory.resolve() if directory.exists() else directory
    return resolved in mount_points()


def unmount_all_under(directory: Path) -> None:
    """Unmount everything at or below `directory`; lazily if a mount is busy, since we are tearing down."""
    for point in mounts_under(directory):
        result = subprocess.run(
            [tool_path("umount"), str(point)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            run(["umount", "--lazy", str(point)], what=f"unmounting {point}")
    leftover = mounts_under(directory)
    if leftover:
        raise MachineError(f"could not unmount {leftover[0]}; nothing below {directory} was deleted")


def remove_tree(directory: Path) -> None:
    """Delete a directory tree that may contain mounts, never crossing into another filesystem."""
    if not directory.exists() and not directory.is_symlink():
        return
    unmount_all_under(directory)
    run(["rm", "-rf", "--one-file-system", "--", str(directory)], what=f"removing {directory}", timeout=600)


def mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> None:
    """Mount the machine's root: the cached rootfs read-only below, the machine's changes above."""
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
        what=f"mounting the overlay on {merged}",
    )
