"""Where the bench runs commands: the controller itself or a test machine, behind one interface.

Times that matter are taken on the host that does the work (a bash wrapper around the command),
so an SSH round trip is not counted as venv-building time.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ELAPSED_MARKER = "__barestack_bench_elapsed_ns="
ELAPSED_LINE = re.compile(rf"^{ELAPSED_MARKER}(?P<ns>\d+)$", re.MULTILINE)
# Runs "$@" and reports its wall time on stderr, keeping its exit code.
TIMING_SCRIPT = (
    'start=$(date +%s%N); "$@"; rc=$?; end=$(date +%s%N); '
    f"printf '\\n{ELAPSED_MARKER}%s\\n' \"$((end - start))\" >&2; exit $rc"
)


class HostCommandError(RuntimeError):
    """A command on a host failed; the message names the host, the command and its stderr."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str
    # Measured on the host by the timing wrapper; None for untimed commands.
    elapsed_s: float | None = None


class Host(Protocol):
    """A machine the bench can run commands on (and that Ansible can reach through ``inventory``)."""

    name: str

    def run(self, argv: Sequence[str], *, timeout: float = 600, check: bool = True) -> CommandResult: ...


def timed_argv(argv: Sequence[str]) -> list[str]:
    return ["bash", "-c", TIMING_SCRIPT, "barestack-bench", *argv]


def split_elapsed(stderr: str) -> tuple[str, float | None]:
    """(stderr without the timing line, seconds measured on the host)."""
    match = ELAPSED_LINE.search(stderr)
    if match is None:
        return stderr, None
    cleaned = (stderr[: match.start()] + stderr[match.end() :]).rstrip("\n")
    return cleaned, int(match["ns"]) / 1e9


def run_timed(host: Host, argv: Sequence[str], *, timeout: float = 1800, check: bool = True) -> CommandResult:
    """Run ``argv`` on ``host`` and measure its wall time there."""
    result = host.run(timed_argv(argv), timeout=timeout, check=check)
    stderr, elapsed = split_elapsed(result.stderr)
    if elapsed is None:
        raise HostCommandError(f"{host.name}: no timing from {shlex.join(argv)}: {result.stderr.strip()}")
    return CommandResult(result.returncode, result.stdout, stderr, elapsed)


def check_result(host_name: str, argv: Sequence[str], completed: subprocess.CompletedProcess[str]) -> None:
    if completed.returncode != 0:
        raise HostCommandError(
            f"{host_name}: `{shlex.join(argv)}` exited {completed.returncode}: "
            f"{(completed.stderr or completed.stdout).strip()[-2000:]}"
        )


class LocalHost:
    """The controller itself (the smoke run measures the venv part here, without a test machine)."""

    def __init__(self, name: str = "controller") -> None:
        self.name = name

    def run(self, argv: Sequence[str], *, timeout: float = 600, check: bool = True) -> CommandResult:
        completed = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            check_result(self.name, argv, completed)
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)


def disk_usage_bytes(host: Host, paths: Sequence[str | Path]) -> int:
    """Bytes used by ``paths`` together; du counts a file hardlinked into several of them once."""
    result = host.run(["du", "-s", "-c", "-B1", *map(str, paths)], timeout=600)
    last = result.stdout.strip().splitlines()[-1]
    total, _, label = last.partition("\t")
    if label != "total" or not total.isdigit():
        raise HostCommandError(f"{host.name}: unexpected du output: {result.stdout.strip()[-500:]}")
    return int(total)
