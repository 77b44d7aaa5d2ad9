"""Running one module through ``run_module.sh`` with a timeout, keeping the tail of its output.

The module gets its own process group, so a timeout (or a stopping worker) can kill everything
it started, not only the shell script. Output goes to temporary files rather than pipes: a
module printing megabytes can neither block on a full pipe nor fill the worker's memory.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import IO

TAIL_BYTES = 4096
KILL_GRACE_S = 2.0
POLL_INTERVAL_S = 0.1
_PR_SET_PDEATHSIG = 1


class Ending(Enum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"  # the worker was asked to stop before the module finished
    NOT_STARTED = "not_started"


@dataclass(frozen=True)
class ModuleOutcome:
    ending: Ending
    exit_code: int | None
    duration_ms: int
    stdout_tail: str
    stderr_tail: str


def tail(stream: IO[bytes], limit: int = TAIL_BYTES) -> str:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - limit))
    # PostgreSQL text cannot hold NUL; a cut in the middle of a UTF-8 sequence becomes U+FFFD.
    return stream.read().decode("utf-8", errors="replace").replace("\x00", "")


def shell_exit_code(returncode: int) -> int:
    """Like a shell reports it: 128 + N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: systemd's KillMode=control-group still applies
        return None


# Looked up once in the parent: the child between fork and exec should do as little as possible.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the child before exec: if the worker is SIGKILLed, the kernel kills the module too,
    so a run taken over by another worker never runs twice at the same time."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    _kill_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_GRACE_S)
    _kill_group(process.pid, signal.SIGKILL)
    process.wait()


def run_module(
    command: Sequence[str],
    timeout_s: float,
    stop: threading.Event,
    stop_grace_s: float,
    keep_alive: Callable[[], None],
    keep_alive_every_s: float,
    env: Mapping[str, str] | None = None,
) -> ModuleOutcome:
    started = time.monotonic()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as error:
            message = f"[barestack] could not start {command[0]}: {error.strerror or error}"
            return ModuleOutcome(Ending.NOT_STARTED, None, 0, "", message)

        deadline = started + timeout_s
        stop_deadline: float | None = None
        next_keep_alive = started + keep_alive_every_s
        ending = Ending.EXITED
        while True:
            try:
                process.wait(timeout=POLL_INTERVAL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now >= deadline:
                ending = Ending.TIMED_OUT
                _terminate(process)
                break
            if stop.is_set():
                stop_deadline = stop_deadline or now + stop_grace_s
                if now >= stop_deadline:
                    ending = Ending.ABANDONED
                    _terminate(process)
                    break
            if now >= next_keep_alive:
                keep_alive()
                next_keep_alive = now + keep_alive_every_s
        # Whatever the module left running in its group (background children) goes with it.
        _kill_group(process.pid, signal.SIGKILL)
        duration_ms = int((time.monotonic() - started) * 1000)
        stderr_tail = tail(stderr)
        if ending is Ending.TIMED_OUT:
            note = f"[barestack] killed after the {timeout_s:g} s timeout"
            stderr_tail = tail_with_note(stderr_tail, note)
        return ModuleOutcome(
            ending, shell_exit_code(process.returncode), duration_ms, tail(stdout), stderr_tail
        )


def tail_with_note(text: str, note: str) -> str:
    combined = f"{text.rstrip()}\n{note}\n" if text else f"{note}\n"
    return combined[-TAIL_BYTES:]
