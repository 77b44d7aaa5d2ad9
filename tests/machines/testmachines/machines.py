"""create / destroy / list: putting rootfs, network, overlay and nspawn together, with rollback.

Order of a create, chosen so that bad input changes nothing and a crash can always be undone:
  1. checks that need no changes: root, tools, name, release, name taken, subnet in use, a free address
  2. the cached rootfs and the SSH key (shared, reusable artefacts; never rolled back)
  3. under the lock: allocate the address and write state.json ("creating") before touching the host
  4. bridge/nftables, netns + veth, overlay, per-machine files, systemd-nspawn, wait until ready
Any failure in 4 runs `destroy`, which works from state.json and tolerates every half-done step.
"""

import contextlib
import secrets
import sys
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from . import cgroups, network, nspawn
from .addressing import allocate_address, gateway_address
from .errors import MachineError, NameTakenError, UsageError
from .guestfiles import known_hosts_lines, resolv_conf, write_machine_files
from .hostcmd import capture, require_root, require_tools, run
from .inventory import KNOWN_HOSTS_FILE, Entry, control_path, entry_for
from .keys import ensure_ssh_key
from .locks import exclusive_lock
from .mounts import mount_overlay, overlay_lower_dirs, remove_tree, unmount_all_under
from .names import host_veth_name, netns_name, validate_machine_name
from .ready import failed_units, wait_until_ready
from .rootfs import cached_rootfs, ensure_rootfs, prune_rootfs, recipe_for, validate_release
from .settings import DEFAULT_BOOT_TIMEOUT, Settings
from .state import (
    CONSOLE_LOG,
    ENTRY_FILE,
    MachineState,
    load_state,
    machine_names,
    read_pid,
    save_state,
    write_atomically,
    write_pid,
)

CREATE_TOOLS = ("systemd-nspawn", "ip", "nft", "ssh", "ssh-keygen", "nsenter", "mount", "umount", "cp", "rm")
DESTROY_TOOLS = ("ip", "nft", "umount", "rm")
NSPAWN_PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")


def log(message: str) -> None:
    """Progress goes to stderr so that stdout stays machine-readable (`create --json`)."""
    print(f"testmachine: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class MachineStatus:
    name: str
    state: MachineState | None
    pid: int | None
    alive: bool

    @property
    def label(self) -> str:
        if not self.alive:
            return "dead"
        if self.state is not None and self.state.status != "running":
            return "booting"
        return "running"


def machine_status(settings: Settings, name: str) -> MachineStatus:
    pid = read_pid(settings, name)
    return MachineStatus(name, load_state(settings, name), pid, nspawn.is_machine_process(pid, name))


def existing_action(exists: bool, alive: bool, reuse: bool) -> str:
    """What `create` does about a machine of the same name: 'create', 'reuse', 'replace' or 'refuse'.

    A dead one (controller rebooted, nspawn crashed, create interrupted) is cleaned up and replaced.
    """
    if not exists:
        return "create"
    if not alive:
        return "replace"
    return "reuse" if reuse else "refuse"


def _used_addresses(settings: Settings, except_name: str | None = None) -> set[IPv4Address]:
    used = set()
    for other in machine_names(settings):
        state = load_state(settings, other)
        if state is not None and other != except_name:
            used.add(IPv4Address(state.address))
    return used


def _entry(settings: Settings, status: MachineStatus) -> Entry:
    if status.state is None:
        raise MachineError(f"machine {status.name} has no readable state; destroy it and create it again")
    return entry_for(status.state, settings)


def create(
    settings: Settings, name: str, release: str, *, reuse: bool, timeout: float = DEFAULT_BOOT_TIMEOUT
) -> Entry:
    validate_machine_name(name)
    validate_release(release)
    require_root()
    require_tools(CREATE_TOOLS)

    status = machine_status(settings, name)
    exists = settings.machine_dir(name).exists()
    action = existing_action(exists, status.alive, reuse)
    if action == "refuse":
        raise NameTakenError(
            f"name taken: machine {name} is already running at "
            f"{status.state.address if status.state else '?'} (use --reuse, or destroy it first)"
        )
    if action == "reuse":
        if status.state is not None and status.state.release != release:
            raise NameTakenError(
                f"name taken: machine {name} runs {status.state.release}, not {release}; destroy it first"
            )
        log(f"reusing running machine {name}")
        return _wait_for_reused(settings, status, timeout)
    if action == "replace":
        log(f"machine {name} exists but is not running: cleaning it up first")
        destroy(settings, name)
    else:
        network.check_machine_names_free(netns_name(name), host_veth_name(name))
    network.check_subnet_free(settings)
    allocate_address(settings.subnet, _used_addresses(settings))  # fail early if exhausted
    resolver = resolv_conf(settings.nameservers)  # fail early if no nameserver is reachable

    recipe = recipe_for(release, settings)
    if cached_rootfs(recipe, settings) is None:
        require_tools(["debootstrap"])
    lower = ensure_rootfs(recipe, settings)
    public_key = ensure_ssh_key(settings)

    started = time.monotonic()
    with exclusive_lock(settings.lock_file):
        if settings.machine_dir(name).exists():
            raise NameTakenError(f"name taken: machine {name} was created by another command meanwhile")
        address = allocate_address(settings.subnet, _used_addresses(settings))
        directory = settings.machine_dir(name)
        state = MachineState(
            name=name,
            release=release,
            address=str(address),
            prefix_length=settings.subnet.prefixlen,
            gateway=str(gateway_address(settings.subnet)),
            bridge=settings.bridge,
            netns=netns_name(name),
            host_veth=host_veth_name(name),
            lower=str(lower),
            storage="overlay",
            merged=str(directory / "merged"),
            status="creating",
            created_at=time.time(),
            instance=secrets.token_hex(4),
        )
        save_state(settings, state)
    try:
        return _bring_up(settings, state, public_key, resolver, timeout, started)
    except BaseException as error:
        log(f"creating {name} failed; rolling back")
        try:
            destroy(settings, name)
        except MachineError as cleanup_error:
            log(f"rollback incomplete: {cleanup_error}")
        if isinstance(error, MachineError):
            raise type(error)(f"{error} (machine {name} rolled back)") from None
        raise


def _wait_for_reused(settings: Settings, status: MachineStatus, timeout: float) -> Entry:
    """A machine another (possibly killed) create left booting is returned only once it is ready."""
    entry = _entry(settings, status)
    state = status.state
    if state is None or state.status == "running" or status.pid is None:
        return entry
    pid = status.pid
    console_log = settings.machine_dir(state.name) / CONSOLE_LOG
    wait_until_ready(pid, entry, console_log, timeout, lambda: nspawn.is_machine_process(pid, state.name))
    state.status = "running"
    save_state(settings, state)
    write_atomically(settings.machine_dir(state.name) / ENTRY_FILE, entry.to_json() + "\n")
    return entry


def _prepare_root(state: MachineState, directory: Path) -> str:
    """Mount the overlay over the cached rootfs; copy the rootfs only if overlayfs is unavailable."""
    upper, work, merged = directory / "upper", directory / "work", Path(state.merged)
    for path in (upper, work, merged):
        path.mkdir(parents=True, exist_ok=True)
    try:
        mount_overlay(Path(state.lower), upper, work, merged)
        return "overlay"
    except MachineError as error:
        log(f"overlayfs failed ({error}); falling back to a full copy of the rootfs (slower, more disk)")
    run(
        ["cp", "-a", "--reflink=auto", f"{state.lower}/.", f"{merged}/"],
        what="copying the rootfs",
        timeout=900,
    )
    return "copy"


def _bring_up(
    settings: Settings, state: MachineState, public_key: str, resolver: str, timeout: float, started: float
) -> Entry:
    directory = settings.machine_dir(state.name)
    with exclusive_lock(settings.lock_file):
        network.ensure_network(settings)
        network.create_machine_link(state, settings.mtu)
    state.storage = _prepare_root(state, directory)
    write_machine_files(Path(state.merged), state.name, public_key, resolver)
    # The controller checks the machine's host keys against this file (inventory.checked_args).
    write_atomically(directory / KNOWN_HOSTS_FILE, known_hosts_lines(Path(state.merged), state.address))
    state.status = "booting"
    save_state(settings, state)
    console_log = directory / CONSOLE_LOG
    pid = nspawn.start(
        state.name,
        Path(state.merged),
        state.netns,
        cgroups.machine_cgroups(settings.base_dir, state.name),
        console_log,
    )
    write_pid(settings, state.name, pid)
    entry = entry_for(state, settings)
    system_state = wait_until_ready(
        pid, entry, console_log, timeout, still_running=lambda: nspawn.is_machine_process(pid, state.name)
    )
    state.status = "running"
    save_state(settings, state)
    write_atomically(directory / ENTRY_FILE, entry.to_json() + "\n")
    elapsed = time.monotonic() - started
    if system_state == "degraded":
        init_pid = nspawn.container_init_pid(pid)
        units = failed_units(init_pid) if init_pid else []
        log(f"machine {state.name} is degraded (failed units: {', '.join(units) or 'unknown'})")
    log(f"machine {state.name} is {system_state} at {state.address} ({state.release}, {elapsed:.1f} s)")
    return entry


def destroy(settings: Settings, name: str) -> str:
    """Stop and remove everything of machine `name`; idempotent, works on half-created machines."""
    validate_machine_name(name)
    require_root()
    require_tools(DESTROY_TOOLS)
    directory = settings.machine_dir(name)
    if not directory.exists():
        return f"no machine {name}: nothing to do"
    state = load_state(settings, name)
    machine_cgroups = cgroups.machine_cgroups(settings.base_dir, name)
    if state is not None:
        _close_ssh_master(state, settings)
    outcome = nspawn.stop(read_pid(settings, name), name, machine_cgroups)
    unmount_all_under(directory)
    with exclusive_lock(settings.lock_file):
        # Names are derived from the machine name, so they are known even if state.json is lost.
        network.remove_machine_link(
            state.host_veth if state else host_veth_name(name), state.netns if state else netns_name(name)
        )
        cgroups.remove(machine_cgroups)
        _remove_nspawn_leftovers(name)
        remove_tree(directory)
        if not machine_names(settings):
            network.teardown_network(settings)
    return f"destroyed machine {name} ({outcome})"


def _close_ssh_master(state: MachineState, settings: Settings) -> None:
    """Stop an SSH master (Ansible's ControlPersist) still connected to the machine, if any."""
    socket = control_path(state, settings)
    if socket is not None and socket.is_socket():
        capture(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", state.address], timeout=10)


def _remove_nspawn_leftovers(name: str) -> None:
    """systemd-nspawn leaves an (empty) propagation directory per machine on a disk-backed /run."""
    propagate = NSPAWN_PROPAGATE_DIR / name
    if not propagate.is_dir():
        return
    for directory in sorted(propagate.rglob("*"), key=lambda p: -len(p.parts)):
        if directory.is_dir() and not directory.is_mount():
            with contextlib.suppress(OSError):  # not empty: leave it rather than guess what it is
                directory.rmdir()
    with contextlib.suppress(OSError):
        propagate.rmdir()


def destroy_all(settings: Settings) -> list[str]:
    require_root()
    require_tools(DESTROY_TOOLS)
    notes = [destroy(settings, name) for name in machine_names(settings)]
    with exclusive_lock(settings.lock_file):
        if not machine_names(settings):
            network.teardown_network(settings)  # also clears a network a crash left without machines
    return notes or ["no machines: nothing to do"]


def statuses(settings: Settings) -> list[MachineStatus]:
    return [machine_status(settings, name) for name in machine_names(settings)]


def running_entry(settings: Settings, name: str) -> Entry:
    validate_machine_name(name)
    status = machine_status(settings, name)
    if not settings.machine_dir(name).exists():
        raise UsageError(f"no machine {name} (see `testmachine list`)")
    if not status.alive:
        raise MachineError(f"machine {name} is not running (destroy it and create it again)")
    return _entry(settings, status)


def build_rootfs(settings: Settings, release: str, *, force: bool) -> tuple[Path, list[Path]]:
    """Build (or refresh) the cached rootfs; prune older caches of the release no machine uses."""
    validate_release(release)
    require_root()
    recipe = recipe_for(release, settings)
    in_use = {Path(status.state.lower) for status in statuses(settings) if status.state is not None}
    in_use |= overlay_lower_dirs()  # machines of other state dirs sharing this cache
    current = settings.cache_dir / recipe.directory_name
    if force and current in in_use:
        raise MachineError(f"cannot rebuild {current}: machines boot from it; destroy them first")
    path = ensure_rootfs(recipe, settings, force=force)
    removed = prune_rootfs(release, in_use | {path}, settings)
    return path, removed
