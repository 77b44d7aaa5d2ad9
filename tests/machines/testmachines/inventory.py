"""How other tools reach a machine: the JSON entry `create --json` prints, Ansible inventory snippets."""

import json
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from .settings import Settings
from .state import MachineState

SSH_USER = "root"
SSH_PORT = 22
# For a machine created before machines had a known_hosts file of their own (no key to check against).
SSH_COMMON_ARGS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o IdentitiesOnly=yes"
)
# Each machine's host keys are written at create to machines/<name>/known_hosts (KNOWN_HOSTS_FILE), so
# ssh checks them: a machine answering with another key is refused (UNREACHABLE, naming the host key).
KNOWN_HOSTS_FILE = "known_hosts"


def checked_args(known_hosts: Path) -> str:
    """ssh options that accept exactly the keys in known_hosts."""
    return (
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={shlex.quote(str(known_hosts))}"
        " -o LogLevel=ERROR -o IdentitiesOnly=yes"
    )


@dataclass(frozen=True)
class Entry:
    """The inventory entry; its JSON form is the fixed interface molecule and `make demo` read."""

    name: str
    address: str
    user: str
    ssh_key: str
    ssh_port: int
    release: str
    rootfs: str
    ssh_common_args: str
    known_hosts: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)


# Unix socket paths are limited to 108 bytes, and ssh appends 17 characters while creating one.
MAX_CONTROL_PATH_LENGTH = 90


def control_path(state: MachineState, settings: Settings) -> Path | None:
    """An SSH ControlPath unique to this incarnation of the machine, in its state dir.

    Ansible keeps SSH master connections open (ControlPersist) in a socket named after address,
    port and user. A machine recreated at the same address (molecule: destroy, then create) would
    get its first commands sent through the dead master of its predecessor and fail as unreachable.
    A path per incarnation avoids that; Ansible uses it instead of its own when it is in the args.
    """
    if not state.instance:
        return None
    path = settings.machine_dir(state.name) / f"ssh-{state.instance}"
    return path if len(str(path)) <= MAX_CONTROL_PATH_LENGTH else None


def entry_for(state: MachineState, settings: Settings) -> Entry:
    socket = control_path(state, settings)
    known_hosts = settings.machine_dir(state.name) / KNOWN_HOSTS_FILE
    base_args = checked_args(known_hosts) if known_hosts.is_file() else SSH_COMMON_ARGS
    common_args = base_args + (f" -o ControlPath={shlex.quote(str(socket))}" if socket else "")
    return Entry(
        name=state.name,
        address=state.address,
        user=SSH_USER,
        ssh_key=str(settings.ssh_key),
        ssh_port=SSH_PORT,
        release=state.release,
        rootfs=state.merged,
        ssh_common_args=common_args,
        known_hosts=str(known_hosts) if known_hosts.is_file() else "",
    )


def _yaml_string(value: str) -> str:
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(value)


def host_vars(entry: Entry) -> dict[str, str]:
    """How Ansible reaches one machine: the variables every inventory format below writes."""
    return {
        "ansible_host": entry.address,
        "ansible_port": str(entry.ssh_port),
        "ansible_user": entry.user,
        "ansible_ssh_private_key_file": entry.ssh_key,
        "ansible_ssh_common_args": entry.ssh_common_args,
        "ansible_python_interpreter": "/usr/bin/python3",
    }


def inventory_yaml(entries: list[Entry]) -> str:
    lines = ["all:", "  hosts:"]
    for entry in entries:
        lines.append(f"    {entry.name}:")
        lines += [f"      {key}: {_yaml_string(value)}" for key, value in host_vars(entry).items()]
    return "\n".join(lines) + "\n"


def inventory_ini(entries: list[Entry]) -> str:
    lines = []
    for entry in entries:
        variables = host_vars(entry)
        lines.append(
            " ".join([entry.name, *(f"{key}={shlex.quote(value)}" for key, value in variables.items())])
        )
    return "\n".join(lines) + "\n"


def ssh_config(entries: list[Entry]) -> str:
    """An OpenSSH client config block, for `ssh -F file NAME`."""
    blocks = []
    for entry in entries:
        blocks.append(
            f"Host {entry.name}\n"
            f"    HostName {entry.address}\n"
            f"    Port {entry.ssh_port}\n"
            f"    User {entry.user}\n"
            f"    IdentityFile {entry.ssh_key}\n"
            "    IdentitiesOnly yes\n"
            + (
                f"    StrictHostKeyChecking yes\n    UserKnownHostsFile {entry.known_hosts}\n"
                if entry.known_hosts
                else "    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"
            )
            + "    LogLevel ERROR\n"
        )
    return "\n".join(blocks)


def ssh_argv(entry: Entry, *, batch: bool = True, tty: bool = False) -> list[str]:
    """The ssh command line (without the remote command) to reach the machine as root."""
    argv = ["ssh", "-i", entry.ssh_key, "-p", str(entry.ssh_port), *shlex.split(entry.ssh_common_args)]
    if batch:
        argv += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if tty:
        argv.append("-t")
    return [*argv, f"{entry.user}@{entry.address}"]
