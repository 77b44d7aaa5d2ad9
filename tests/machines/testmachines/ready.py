"""Waiting until a freshly started machine is usable: systemd has finished booting and sshd logs us in."""

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .errors import BootError
from .hostcmd import capture, tool_path
from .inventory import Entry, ssh_argv
from .nspawn import container_init_pid

READY_STATES = ("running", "degraded")
# States a booting system does not leave by itself: no point waiting out the timeout. ("offline" is
# not one: it is what systemctl says while the container's PID 1 has not exec'd systemd yet.)
FAILED_STATES = ("maintenance", "stopping")


def classify_system_state(output: str) -> str:
    """'ready', 'failed' or 'waiting' for the output of `systemctl is-system-running`."""
    state = output.strip().splitlines()[-1].strip() if output.strip() else ""
    if state in READY_STATES:
        return "ready"
    if state in FAILED_STATES:
        return "failed"
    return "waiting"  # offline, initializing, starting, or systemd not up enough to answer yet


def nsenter_argv(init_pid: int) -> list[str]:
    """Run a command inside the machine without the network: for readiness checks and `shell --nsenter`."""
    return [tool_path("nsenter"), f"--target={init_pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--"]


def system_state(init_pid: int) -> str:
    _status, output = capture([*nsenter_argv(init_pid), "systemctl", "is-system-running"], timeout=10)
    return output.strip()


def failed_units(init_pid: int) -> list[str]:
    _status, output = capture(
        [*nsenter_argv(init_pid), "systemctl", "--failed", "--plain", "--no-legend", "--no-pager"], timeout=10
    )
    return [line.split()[0] for line in output.splitlines() if line.split()]


def _sshd_banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2) as connection:
            connection.settimeout(2)
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _ssh_login_works(entry: Entry) -> bool:
    argv = [tool_path("ssh"), *ssh_argv(entry)[1:], "true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=15, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def wait_until_ready(
    nspawn_pid: int,
    entry: Entry,
    console_log: Path,
    timeout: float,
    still_running: Callable[[], bool],
) -> str:
    """Wait for systemd to reach running/degraded and for an SSH login to work; return the state.

    Raises BootError saying which step did not finish (the caller rolls the machine back).
    """
    deadline = time.monotonic() + timeout

    def check_alive() -> None:
        if not still_running():
            raise BootError(f"machine {entry.name} stopped while booting; see {console_log}")

    init_pid = None
    state = ""
    while time.monotonic() < deadline:
        check_alive()
        init_pid = init_pid or container_init_pid(nspawn_pid)
        if init_pid is not None:
            state = system_state(init_pid)
            verdict = classify_system_state(state)
            if verdict == "ready":
                break
            if verdict == "failed":
                raise BootError(f"machine {entry.name} is {state!r} instead of booting; see {console_log}")
        time.sleep(0.3)
    else:
        raise BootError(
            f"machine {entry.name}: systemd did not reach running/degraded within {timeout:.0f} s "
            f"(last state {state or 'unknown'!r}); see {console_log}"
        )
    while time.monotonic() < deadline:
        check_alive()
        if _sshd_banner(entry.address, entry.ssh_port) and _ssh_login_works(entry):
            return state
        time.sleep(0.3)
    raise BootError(
        f"machine {entry.name}: systemd is {state}, but sshd on {entry.address}:{entry.ssh_port} did not "
        f"accept the key within {timeout:.0f} s; see {console_log}"
    )
