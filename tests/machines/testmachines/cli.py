"""Command line: testmachine create|destroy|list|shell|inventory|ssh-config|rootfs.

stdout carries only results (the JSON entry, inventory snippets, the list); progress and errors go to
stderr. Exit status: 0 success, 1 failure, 2 bad usage or input.
"""

import argparse
import json
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from . import machines, nspawn
from .errors import MachineError, UsageError
from .hostcmd import require_root, tool_path
from .inventory import inventory_ini, inventory_yaml, ssh_argv, ssh_config
from .ready import nsenter_argv
from .rootfs import DEFAULT_RELEASE, RELEASES
from .settings import DEFAULT_BOOT_TIMEOUT, Settings, load_settings

PROGRAM = "testmachine"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Disposable Debian test machines (systemd-nspawn, own network namespace) for barestack.",
        epilog="State: $BARESTACK_MACHINES_DIR (default /var/lib/barestack-machines). Needs root.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create and boot a machine, print its inventory entry")
    create.add_argument("name")
    create.add_argument("--release", default=DEFAULT_RELEASE, choices=RELEASES)
    create.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    create.add_argument("--reuse", action="store_true", help="if NAME is already running, print its entry")
    create.add_argument(
        "--timeout", type=float, default=DEFAULT_BOOT_TIMEOUT, help="seconds to wait for boot"
    )

    destroy = commands.add_parser("destroy", help="stop a machine and remove everything it created")
    target = destroy.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?")
    target.add_argument("--all", action="store_true")

    listing = commands.add_parser("list", help="list machines with address, release and state")
    listing.add_argument("--json", action="store_true")

    shell = commands.add_parser("shell", help="root shell in a machine, or run `-- CMD...` there")
    shell.add_argument("name")
    shell.add_argument("--nsenter", action="store_true", help="enter the namespaces instead of using ssh")
    shell.add_argument("--tty", action="store_true", help="allocate a terminal even when running CMD")
    shell.add_argument("cmd", nargs="*", metavar="-- CMD", help="command to run instead of a shell")

    for command, summary in (
        ("inventory", "print an Ansible inventory snippet for machines"),
        ("ssh-config", "same as inventory (or --format ssh for an OpenSSH config block)"),
    ):
        snippet = commands.add_parser(command, help=summary)
        snippet.add_argument("names", nargs="+", metavar="name")
        snippet.add_argument("--format", choices=("yaml", "ini", "ssh"), default="yaml")

    rootfs = commands.add_parser("rootfs", help="build or refresh the cached root filesystem only")
    rootfs.add_argument("--release", default=DEFAULT_RELEASE, choices=RELEASES)
    rootfs.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    return parser


def _create(settings: Settings, args: argparse.Namespace) -> int:
    entry = machines.create(settings, args.name, args.release, reuse=args.reuse, timeout=args.timeout)
    if args.json:
        print(entry.to_json())
    else:
        print(inventory_yaml([entry]), end="")
    return 0


def _destroy(settings: Settings, args: argparse.Namespace) -> int:
    notes = machines.destroy_all(settings) if args.all else [machines.destroy(settings, args.name)]
    for note in notes:
        print(f"{PROGRAM}: {note}", file=sys.stderr)
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    require_root()  # reading other processes' /proc entries and state written by root
    rows = [
        {
            "name": status.name,
            "address": status.state.address if status.state else "",
            "release": status.state.release if status.state else "",
            "state": status.label,
        }
        for status in machines.statuses(settings)
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'NAME':<32} {'ADDRESS':<16} {'RELEASE':<10} STATE")
    for row in rows:
        print(f"{row['name']:<32} {row['address'] or '-':<16} {row['release'] or '-':<10} {row['state']}")
    return 0


def remote_command(words: Sequence[str]) -> list[str]:
    """`shell NAME -- CMD...`: one word is a shell command line as typed; several are quoted as given."""
    words = list(words)
    if len(words) <= 1:
        return words
    return [shlex.join(words)]


def _shell(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    entry = machines.running_entry(settings, args.name)
    command = remote_command(args.cmd)
    sys.stdout.flush()
    if args.nsenter:
        pid = machines.machine_status(settings, args.name).pid
        init_pid = nspawn.container_init_pid(pid) if pid else None
        if init_pid is None:
            raise MachineError(f"machine {args.name}: cannot find its init process")
        argv = [*nsenter_argv(init_pid), *(["/bin/sh", "-c", command[0]] if command else ["/bin/bash", "-l"])]
    else:
        tty = args.tty or (not command and sys.stdin.isatty())
        argv = [tool_path("ssh"), *ssh_argv(entry, batch=False, tty=tty)[1:], *command]
    os.execv(argv[0], argv)
    return 127  # not reached: execv replaces this process


def _snippet(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    entries = [machines.running_entry(settings, name) for name in args.names]
    render = {"yaml": inventory_yaml, "ini": inventory_ini, "ssh": ssh_config}[args.format]
    print(render(entries), end="")
    return 0


def _rootfs(settings: Settings, args: argparse.Namespace) -> int:
    path, removed = machines.build_rootfs(settings, args.release, force=args.force)
    for old in removed:
        print(f"{PROGRAM}: removed outdated cache {old}", file=sys.stderr)
    print(path)
    return 0


HANDLERS = {
    "create": _create,
    "destroy": _destroy,
    "list": _list,
    "shell": _shell,
    "inventory": _snippet,
    "ssh-config": _snippet,
    "rootfs": _rootfs,
}


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Unwind like Ctrl-C (SIGTERM from a CI timeout, `kill`), so a half-created machine is rolled back.
    raise KeyboardInterrupt


def split_remote_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """`shell [options] NAME [options] -- CMD...`: argparse cannot take options after a command list."""
    if argv and argv[0] == "shell" and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    own_args, remote = split_remote_command(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(own_args)
    if remote:
        args.cmd = remote
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        settings = load_settings()
        return HANDLERS[args.command](settings, args)
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except MachineError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
