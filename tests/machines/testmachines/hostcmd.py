"""Running the controller's programs: root check, tool lookup with package hints, error wrapping."""

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

from .errors import MachineError, MissingToolError, NotRootError

# The Debian package to install for each program, so a missing tool is a one-line fix.
TOOL_PACKAGES = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "nft": "nftables",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "nsenter": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "cp": "coreutils",
    "rm": "coreutils",
}

# sudo and Ansible often run with a PATH that lacks the sbin directories where ip/nft/debootstrap live.
_EXTRA_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_root(geteuid: Callable[[], int] = os.geteuid) -> None:
    if geteuid() != 0:
        raise NotRootError(
            "testmachine needs root (it mounts filesystems, creates network namespaces and starts "
            "containers): run it with sudo"
        )


def find_tool(tool: str) -> str | None:
    search_path = os.environ.get("PATH", "") + os.pathsep + _EXTRA_PATH
    return shutil.which(tool, path=search_path)


def require_tools(tools: Sequence[str]) -> None:
    """Fail before doing anything if a program is missing, naming every package to install."""
    missing = [tool for tool in tools if find_tool(tool) is None]
    if missing:
        raise missing_tools_error(missing)


def tool_path(tool: str) -> str:
    path = find_tool(tool)
    if path is None:
        raise missing_tools_error([tool])
    return path


def missing_tools_error(missing: Sequence[str]) -> MissingToolError:
    packages = sorted({TOOL_PACKAGES.get(tool, tool) for tool in missing})
    return MissingToolError(
        f"missing program(s) {', '.join(missing)}: install with `apt-get install {' '.join(packages)}`"
    )


def run(
    argv: Sequence[str],
    *,
    what: str,
    input_text: str | None = None,
    timeout: float | None = 120,
    error_type: type[MachineError] = MachineError,
) -> str:
    """Run a program, return its stdout; on failure raise `error_type` saying what we were doing."""
    command = [tool_path(argv[0]), *argv[1:]]
    try:
        result = subprocess.run(
            command,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise error_type(f"{what}: `{' '.join(argv)}` did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {result.returncode}"
        raise error_type(f"{what}: {reason}")
    return result.stdout


def succeeds(argv: Sequence[str], timeout: float = 30) -> bool:
    """Run a program only for its exit status (e.g. "does this link exist?")."""
    command = [tool_path(argv[0]), *argv[1:]]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def capture(argv: Sequence[str], timeout: float = 30) -> tuple[int, str]:
    """Run a program whose exit status is information (e.g. `systemctl is-system-running`)."""
    command = [tool_path(argv[0]), *argv[1:]]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, ""
    return result.returncode, result.stdout
