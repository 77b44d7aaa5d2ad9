"""Test machines for the bench: create, reach and destroy them with tests/machines/testmachine.

The bench names its machines ``bench-*`` so it never touches the machines of molecule or
``make demo``. A machine is a Host: commands go over the tool's ``shell`` (SSH as root).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from barestack_bench.hosts import CommandResult, HostCommandError, check_result
from barestack_bench.settings import REPO_ROOT

TESTMACHINE = REPO_ROOT / "tests" / "machines" / "testmachine"
# The tool's own entry type (what `create --json` prints), not a copy of it: stdlib-only, importable.
sys.path.insert(0, str(TESTMACHINE.parent))
from testmachines.inventory import Entry  # noqa: E402 - needs the path above

BENCH_NAME = re.compile(r"^bench-[a-z0-9-]{1,24}$")
ALL_GROUPS = ("postgres", "redis", "app", "web")


def _tool(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = ["python3", str(TESTMACHINE), *arguments]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    check_result("testmachine", argv, completed)
    return completed


class BenchMachine:
    """One running test machine; a Host for the parts."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.name = entry.name

    @classmethod
    def create(cls, name: str, release: str) -> BenchMachine:
        """A fresh machine: an existing one of that name is destroyed first, never reused."""
        if not BENCH_NAME.match(name):
            raise ValueError(f"bench machines are named bench-<a-z0-9->, got {name!r}")
        _tool("destroy", name)
        created = _tool("create", name, "--release", release, "--json")
        return cls(Entry(**json.loads(created.stdout)))

    def destroy(self) -> None:
        _tool("destroy", self.name)

    def push(self, source: Path, destination: str) -> None:
        """Copy a controller folder onto the machine (rsync over the machine's SSH settings)."""
        entry = self.entry
        ssh = ["ssh", "-i", entry.ssh_key, "-p", str(entry.ssh_port), *shlex.split(entry.ssh_common_args)]
        argv = [
            "rsync", "--archive", "--delete", "--exclude=__pycache__",
            "-e", shlex.join([*ssh, "-o", "BatchMode=yes"]),
            f"{source}/", f"{entry.user}@{entry.address}:{destination}/",
        ]  # fmt: skip
        self.run(["mkdir", "-p", destination])
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        check_result(self.name, argv, completed)

    def run(self, argv: Sequence[str], *, timeout: float = 600, check: bool = True) -> CommandResult:
        # One word: the tool hands it to the remote shell as the command line, quoted as given.
        tool_argv = ["python3", str(TESTMACHINE), "shell", self.name, "--", shlex.join(argv)]
        completed = subprocess.run(tool_argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and completed.returncode != 0:
            raise HostCommandError(
                f"{self.name}: `{shlex.join(argv)}` exited {completed.returncode}: "
                f"{(completed.stderr or completed.stdout).strip()[-2000:]}"
            )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)


def write_inventory(
    directory: Path,
    entries: Sequence[Entry],
    group_vars: Path,
    host_vars: Mapping[str, object] | None = None,
) -> Path:
    """An inventory directory: how to reach the machines as ``testmachine inventory`` writes it
    (the one writer of that, shared with make demo and the drills), every machine in all four
    groups, the given group_vars (symlinked), and ``host_vars`` for every machine in
    host_vars/<name>.yml (above group_vars, as molecule's supervisor scenario sets its manager).
    Returns the directory, for ``-i``.

    JSON is valid YAML, so the standard library writes the groups and the host variables.
    """
    directory.mkdir(parents=True, exist_ok=True)
    names = [entry.name for entry in entries]
    (directory / "machines.yml").write_text(_tool("inventory", *names).stdout, encoding="utf-8")
    write_groups(directory, names, host_vars or {})
    link = directory / "group_vars"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(group_vars)
    return directory


def write_groups(directory: Path, names: Sequence[str], host_vars: Mapping[str, object]) -> None:
    """groups.yml (every machine in all four groups) and host_vars/<name>.yml, only those given:
    a file left by an earlier run in the same folder is removed, not kept."""
    groups = {"all": {"children": {group: {"hosts": dict.fromkeys(names, None)} for group in ALL_GROUPS}}}
    (directory / "groups.yml").write_text(json.dumps(groups, indent=2) + "\n", encoding="utf-8")
    host_vars_dir = directory / "host_vars"
    host_vars_dir.mkdir(exist_ok=True)
    for stale in host_vars_dir.glob("*.yml"):
        stale.unlink()
    if host_vars:
        for name in names:
            (host_vars_dir / f"{name}.yml").write_text(
                json.dumps(dict(host_vars), indent=2) + "\n", encoding="utf-8"
            )


def write_local_inventory(directory: Path, python: str) -> Path:
    """The controller as an Ansible host (connection local), for the smoke run's naive baseline."""
    directory.mkdir(parents=True, exist_ok=True)
    inventory = {
        "all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": python}}}
    }
    hosts = directory / "hosts.yml"
    hosts.write_text(json.dumps(inventory, indent=2) + "\n", encoding="utf-8")
    return hosts
