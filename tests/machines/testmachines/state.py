"""A machine's state directory: state.json (what was set up), pid, console.log, overlay dirs.

state.json is written before anything is created on the host (status "creating") and records every
name and path the machine uses, so `destroy` can undo a half-created machine after a crash.
"""

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .settings import Settings

STATE_FILE = "state.json"
PID_FILE = "pid"
CONSOLE_LOG = "console.log"
ENTRY_FILE = "machine.json"


@dataclass
class MachineState:
    name: str
    release: str
    address: str
    prefix_length: int
    gateway: str
    bridge: str
    netns: str
    host_veth: str
    lower: str  # the cached rootfs (overlay lowerdir), or "" before it is known
    storage: str  # "overlay", or "copy" when overlayfs was unavailable
    merged: str  # the directory systemd-nspawn boots (-D)
    status: str  # creating -> booting -> running
    created_at: float
    instance: str = ""  # random per create: names this incarnation's SSH ControlPath

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "MachineState":
        data = json.loads(text)
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    temporary.chmod(mode)
    temporary.replace(path)


def save_state(settings: Settings, state: MachineState) -> None:
    directory = settings.machine_dir(state.name)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / STATE_FILE, state.to_json())


def load_state(settings: Settings, name: str) -> MachineState | None:
    """The recorded state, or None if there is none or it is unreadable (a crash while writing it)."""
    path = settings.machine_dir(name) / STATE_FILE
    try:
        return MachineState.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None


def machine_names(settings: Settings) -> list[str]:
    """Every machine with a state directory, including half-created or dead ones."""
    if not settings.machines_dir.is_dir():
        return []
    return sorted(path.name for path in settings.machines_dir.iterdir() if path.is_dir())


def read_pid(settings: Settings, name: str) -> int | None:
    try:
        return int((settings.machine_dir(name) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(settings: Settings, name: str, pid: int) -> None:
    write_atomically(settings.machine_dir(name) / PID_FILE, f"{pid}\n")
