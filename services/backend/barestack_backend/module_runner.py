"""Running one module through ``run_module.sh`` with a timeout, keeping the tail of its output.

Deployed, each run is a transient systemd unit ``barestack-run-<run id>-<attempt>.service``
started with ``systemd-run`` (sandbox ``systemd``): its own dynamic user, no secrets, no network
unless the module's manifest asks for it, resource limits, and a control group that takes every
process the module started with it. The sandboxing itself is in the drop-in the app role installs
for ``barestack-run-.service``; the worker only names the unit, its slice and its environment.
Without systemd (sandbox ``none``: the service tests, or a host without systemd) the module is a
child in its own process group. Either way the module gets an allowlisted environment only.

Output goes to temporary files rather than pipes (``systemd-run --pipe`` hands the unit these
very files): a module printing megabytes can neither block on a full pipe nor fill the worker's
memory, and the unit's LimitFSIZE= caps how much it can write.

The module's manifest is an optional ``module.toml`` in its folder::

    [run]
    network = true   # the run may use the network (default false: loopback only, no addresses)
"""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

TAIL_BYTES = 4096
KILL_GRACE_S = 2.0
POLL_INTERVAL_S = 0.1
SYSTEMCTL_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1

SANDBOX_SYSTEMD = "systemd"
SANDBOX_NONE = "none"
SANDBOXES = (SANDBOX_SYSTEMD, SANDBOX_NONE)
UNIT_PREFIX = "barestack-run-"
MANIFEST_NAME = "module.toml"
# The only variables of the worker's environment a module sees (never DATABASE_URL, REDIS_URL,
# SECRET_KEY or tokens); run_module.sh adds the modules' env file and BARESTACK_MODULE.
MODULE_ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "TZ", "BARESTACK_VENV_MAPPING", "BARESTACK_ENV_FILE")


class ManifestError(ValueError):
    """The module's module.toml cannot be read or says something invalid."""


@dataclass(frozen=True)
class Manifest:
    network: bool = False


def read_manifest(module_dir: Path) -> Manifest:
    """The module's ``module.toml``; no file means the defaults (no network)."""
    path = module_dir / MANIFEST_NAME
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        return Manifest()
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from None
    run = document.get("run", {})
    if not isinstance(run, dict):
        raise ManifestError(f"{path}: [run] must be a table")
    network = run.get("network", False)
    if not isinstance(network, bool):
        raise ManifestError(f"{path}: run.network must be true or false")
    return Manifest(network=network)


def module_folder(mapping_path: str | None, key: str) -> Path | None:
    """The module's folder from venv_mapping.json; None when unknown (run_module.sh then says why)."""
    if not mapping_path:
        return None
    try:
        with open(mapping_path, encoding="utf-8") as handle:
            source = json.load(handle)["venvs"][key]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(source) if isinstance(source, str) else None


def run_environ(source: Mapping[str, str], run_id: str, attempt: int, module_key: str) -> dict[str, str]:
    """The environment of a run: the allowlisted variables of ``source`` and the run's own."""
    environ = {name: source[name] for name in MODULE_ENV_ALLOWLIST if name in source}
    environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    environ.update(
        {"BARESTACK_RUN_ID": run_id, "BARESTACK_RUN_ATTEMPT": str(attempt), "BARESTACK_MODULE": module_key}
    )
    return environ


def run_unit_name(run_id: str, attempt: int, network: bool) -> str:
    """``barestack-run-net-*`` units get the network drop-in on top of ``barestack-run-``'s."""
    return f"{UNIT_PREFIX}{'net-' if network else ''}{run_id}-{attempt}.service"


def systemd_run_command(
    unit: str, slice_name: str, environ: Mapping[str, str], command: Sequence[str]
) -> list[str]:
    """``systemd-run`` starting ``command`` as the transient unit ``unit`` and waiting for it.

    --pipe hands the unit our stdin/stdout/stderr, --wait returns the module's exit code,
    --collect unloads the unit even when it failed (no reset-failed needed).
    """
    return [
        "systemd-run",
        "--system",
        "--quiet",
        "--pipe",
        "--wait",
        "--collect",
        "--service-type=exec",
        f"--unit={unit}",
        f"--slice={slice_name}",
        *(f"--setenv={name}={value}" for name, value in sorted(environ.items())),
        "--",
        *command,
    ]


def systemctl_stop(unit: str) -> None:
    """Stop a run unit or a worker's slice of them; a unit that is not loaded is not an error."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["systemctl", "stop", "--quiet", unit],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            timeout=SYSTEMCTL_TIMEOUT_S,
            check=False,
        )


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


def _terminate(process: subprocess.Popen[bytes], unit: str | None) -> None:
    if unit is not None:
        # systemd stops the whole control group (SIGTERM, SIGKILL after the unit's TimeoutStopSec);
        # systemd-run --wait then returns.
        systemctl_stop(unit)
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
    unit: str | None = None,
) -> ModuleOutcome:
    """Run ``command`` (``systemd-run ...`` for the transient ``unit``, or run_module.sh itself)."""
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
                _terminate(process, unit)
                break
            if stop.is_set():
                stop_deadline = stop_deadline or now + stop_grace_s
                if now >= stop_deadline:
                    ending = Ending.ABANDONED
                    _terminate(process, unit)
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
