"""Starting, finding and stopping the systemd-nspawn process that runs a machine.

The controller has no systemd as PID 1, so there is no machined/unit to track the container:
systemd-nspawn runs detached in its own session (--register=no --keep-unit, measured as required
here: docs/ARCHITECTURE.md, "Test machines"), its pid goes to a pid file, and liveness is checked
against /proc so a stale pid reused by another program is never mistaken for the machine.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import cgroups
from .hostcmd import tool_path


def nspawn_argv(name: str, merged: Path, netns: str) -> list[str]:
    return [
        tool_path("systemd-nspawn"),
        "--quiet",
        "--boot",
        # No machined/D-Bus on the controller: registering or creating a scope unit would fail.
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path=/run/netns/{netns}",
        f"--directory={merged}",
        f"--machine={name}",
        f"--hostname={name}",
        # Ignore any /etc/systemd/nspawn/<name>.nspawn on the controller: the tool owns all settings.
        "--settings=no",
        # The guest keeps its journal to itself instead of linking it into the controller's /var/log.
        "--link-journal=no",
        # resolv.conf and the clock zone are part of the machine's files, written at create.
        "--resolv-conf=off",
        "--timezone=off",
        # Boot messages go to console.log; nothing reads from the console.
        "--console=read-only",
        # The machine has its own network namespace, so it may manage it: firewall roles (nftables)
        # and sysctls under /proc/sys/net need CAP_NET_ADMIN, which nspawn drops by default.
        "--capability=CAP_NET_ADMIN",
    ]


def start(name: str, merged: Path, netns: str, machine_cgroups: list[Path], console_log: Path) -> int:
    """Start the machine detached from this command (new session, stdin /dev/null); return the pid."""
    argv = nspawn_argv(name, merged, netns)
    cgroups.create(machine_cgroups)
    with console_log.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # nspawn makes /proc/sys/net writable only for its own --private-network; the machine owns
            # its netns here too, so roles can set per-namespace sysctls (net.core.somaxconn...).
            env={**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"},
            close_fds=True,
            # Runs in the child before exec: nspawn must already sit in the machine's own cgroup when
            # it sets up the container's (see cgroups.py).
            # preexec_fn is safe here: this command is single-threaded.
            preexec_fn=lambda: cgroups.enter(machine_cgroups),
        )
    return process.pid


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_machine_process(pid: int | None, name: str) -> bool:
    """True if `pid` is alive and is the systemd-nspawn running machine `name` (not a reused pid)."""
    if pid is None or pid <= 0:
        return False
    argv = _cmdline(pid)
    if not argv or not argv[0].endswith("systemd-nspawn"):
        return False
    if _is_zombie(pid):
        return False
    return f"--machine={name}" in argv


def _is_zombie(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" in line.split()[1]
    except OSError:
        return True
    return False


def container_init_pid(nspawn_pid: int) -> int | None:
    """The guest's PID 1 as the controller sees it: the nspawn child that is pid 1 in its namespace."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                return int(child)
    return None


def stop(pid: int | None, name: str, machine_cgroups: list[Path], timeout: float = 30.0) -> str:
    """Power the machine off, forcibly if it does not stop in time; returns how it went.

    SIGTERM makes systemd-nspawn send SIGRTMIN+3 to the guest's systemd (an orderly poweroff). If
    that hangs, or nspawn is already gone (a crash) while guest processes live on, everything in the
    machine's cgroups is killed.
    """
    outcome = "not running"
    if pid is not None and is_machine_process(pid, name):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_machine_process(pid, name):
            time.sleep(0.1)
        if is_machine_process(pid, name):
            os.kill(pid, signal.SIGKILL)
            outcome = f"killed (no poweroff within {timeout:.0f} s)"
        else:
            outcome = "powered off"
    for _attempt in range(50):
        if not cgroups.member_pids(machine_cgroups):
            break
        cgroups.kill_members(machine_cgroups)
        time.sleep(0.1)
        if outcome == "not running":
            outcome = "killed leftover processes"
    return outcome
