"""A cgroup of its own for each machine, in the hierarchies systemd-nspawn and the guest's systemd use.

With --keep-unit and no systemd on the controller, systemd-nspawn puts the container below the cgroup
it was started in (as "payload"/"supervisor"). Started from the root cgroup, two machines would share
the same "/payload" and their systemd instances would fight over it. So each nspawn process is
moved into `barestack-machines/<state-dir-hash>/<name>` before it execs; that cgroup also lists every
process of the machine, which is how `destroy` finds and kills what a crash left behind.
"""

import contextlib
import hashlib
import os
import signal
from pathlib import Path

CGROUP_PARENT = "barestack-machines"


def systemd_hierarchies(mountinfo_text: str | None = None) -> list[Path]:
    """Mount points of the unified (cgroup2) hierarchy and of the legacy name=systemd one, if present."""
    if mountinfo_text is None:
        mountinfo_text = Path("/proc/self/mountinfo").read_text()
    found = []
    for line in mountinfo_text.splitlines():
        before, _, after = line.partition(" - ")
        mount_point = before.split()[4] if len(before.split()) > 4 else ""
        fields = after.split()
        if len(fields) < 3 or not mount_point:
            continue
        fstype, super_options = fields[0], fields[2].split(",")
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in super_options):
            found.append(Path(mount_point))
    return found


def machine_cgroups(base_dir: Path, name: str, hierarchies: list[Path] | None = None) -> list[Path]:
    """The machine's cgroup directory in each hierarchy; the state-dir hash keeps test runs apart."""
    scope = hashlib.sha256(str(base_dir).encode()).hexdigest()[:8]
    roots = systemd_hierarchies() if hierarchies is None else hierarchies
    return [root / CGROUP_PARENT / scope / name for root in roots]


def create(cgroups: list[Path]) -> None:
    for cgroup in cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)


def enter(cgroups: list[Path]) -> None:
    """Move the calling process into the cgroups (runs in the child between fork and exec)."""
    for cgroup in cgroups:
        (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")


def member_pids(cgroups: list[Path]) -> set[int]:
    """Every process in the cgroups and their descendants (the container's processes)."""
    pids: set[int] = set()
    for cgroup in cgroups:
        if not cgroup.is_dir():
            continue
        for procs in cgroup.rglob("cgroup.procs"):
            try:
                pids.update(int(line) for line in procs.read_text().split())
            except OSError:
                continue  # the cgroup went away while we walked
    return pids


def kill_members(cgroups: list[Path]) -> int:
    """SIGKILL everything still in the machine's cgroups; returns how many processes were signalled."""
    pids = member_pids(cgroups)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def remove(cgroups: list[Path]) -> None:
    """rmdir the machine's cgroups, deepest first (cgroup directories are removed with rmdir only)."""
    for cgroup in cgroups:
        if not cgroup.is_dir():
            continue
        for directory in sorted(
            (path for path in cgroup.rglob("*") if path.is_dir()), key=lambda p: -len(p.parts)
        ):
            _rmdir_quietly(directory)
        _rmdir_quietly(cgroup)
        for parent in (cgroup.parent, cgroup.parent.parent):  # the scope and barestack-machines, once empty
            _rmdir_quietly(parent)


def _rmdir_quietly(directory: Path) -> None:
    with contextlib.suppress(OSError):  # still populated (or already gone): left for the next destroy
        directory.rmdir()
