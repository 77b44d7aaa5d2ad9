"""Child processes that cannot outlive their parent, and stopping a child's whole process group."""

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up in the parent: between fork and exec the child should do as little as possible.
_PRCTL = _load_prctl()


def die_with_parent() -> None:
    """``preexec_fn``: the kernel sends SIGTERM to the child when the thread that started it ends
    (start children from the main thread), so a SIGKILLed runner leaves no server behind."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(
    process: "subprocess.Popen[bytes]", sig: signal.Signals = signal.SIGTERM, timeout_s: float = 10
) -> int:
    """Send ``sig`` to the process group the child leads (started with start_new_session=True),
    wait up to ``timeout_s``, then SIGKILL the group; returns the child's exit status."""
    if process.poll() is None:
        signal_group(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    # Whatever the leader left in its group (gunicorn's workers, a module run) goes too.
    signal_group(process.pid, signal.SIGKILL)
    return process.wait()


def terminate(process: "subprocess.Popen[bytes]", timeout_s: float = 5) -> None:
    """SIGTERM the child alone, wait up to ``timeout_s``, then SIGKILL it (servers that fork nothing
    the test must see stopped: nginx's master takes its workers with it, redis-server is one process)."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
