"""The `testmachine` executable: runs with the system python3, rejects bad input before changing anything."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from testmachines.cli import remote_command, split_remote_command

TOOL = Path(__file__).resolve().parents[2] / "machines" / "testmachine"


def run_tool(
    *args: str, state_dir: Path, as_user: bool = False, tool: Path = TOOL
) -> subprocess.CompletedProcess[str]:
    command = [str(tool), *args]
    if as_user and os.geteuid() == 0:
        # Drop to nobody for real, instead of pretending: the check must see a non-root euid.
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BARESTACK_MACHINES_DIR": str(state_dir)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import testmachines
names = [module.name for module in pkgutil.iter_modules(testmachines.__path__)]
for name in names:
    importlib.import_module("testmachines." + name)
print(len(names))
"""


def test_wrapper_uses_the_system_python_and_only_the_standard_library() -> None:
    assert TOOL.read_text().splitlines()[0] == "#!/usr/bin/python3"
    # -I: no site-packages and no PYTHONPATH, so importing every module proves stdlib-only.
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", IMPORT_EVERY_MODULE, str(TOOL.parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 15  # every module of the package was imported, not an empty list


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_tool("--help", state_dir=tmp_path)
    assert result.returncode == 0
    for command in ("create", "destroy", "list", "shell", "inventory", "ssh-config", "rootfs"):
        assert command in result.stdout


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root")
def test_not_root_is_a_one_line_error(tmp_path: Path) -> None:
    # nobody must be able to read the tool, and a checkout under /root (mode 700 on trixie) is not
    # readable by nobody: run a copy from a world-readable directory.
    readable = Path(tempfile.mkdtemp(prefix="barestack-testmachine-"))
    try:
        readable.chmod(0o755)
        shutil.copy2(TOOL, readable / TOOL.name)
        shutil.copytree(TOOL.parent / "testmachines", readable / "testmachines")
        copy = readable / TOOL.name
        result = run_tool("create", "web", state_dir=tmp_path / "state", as_user=True, tool=copy)
    finally:
        shutil.rmtree(readable)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "testmachine: error: testmachine needs root (it mounts filesystems, creates network namespaces "
        "and starts containers): run it with sudo"
    )
    assert not (tmp_path / "state").exists()


def test_invalid_name_changes_nothing(tmp_path: Path) -> None:
    result = run_tool("create", "Web_1", state_dir=tmp_path / "state")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "invalid machine name 'Web_1'" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "state").exists()


def test_unknown_release_is_refused(tmp_path: Path) -> None:
    result = run_tool("create", "web", "--release", "sid", state_dir=tmp_path / "state")
    assert result.returncode == 2
    assert "invalid choice: 'sid'" in result.stderr
    assert not (tmp_path / "state").exists()


def test_bad_subnet_setting_is_refused(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "BARESTACK_MACHINES_DIR": str(tmp_path),
        "BARESTACK_MACHINES_SUBNET": "8.8.8.0/24",
    }
    result = subprocess.run([str(TOOL), "list"], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2
    assert "private range" in result.stderr


def test_destroying_an_unknown_machine_succeeds_with_a_note(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("cannot run here: needs root (make test runs as root): destroy")
    result = run_tool("destroy", "ghost", state_dir=tmp_path)
    assert result.returncode == 0
    assert "no machine ghost: nothing to do" in result.stderr


def test_list_of_an_empty_state_dir(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("cannot run here: needs root (make test runs as root): list")
    result = run_tool("list", "--json", state_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == "[]"


def test_shell_on_an_unknown_machine_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("cannot run here: needs root (make test runs as root): shell")
    result = run_tool("shell", "ghost", "--", "true", state_dir=tmp_path)
    assert result.returncode == 2
    assert "no machine ghost" in result.stderr


@pytest.mark.parametrize(
    ("argv", "own", "remote"),
    [
        (
            ["shell", "web", "--", "systemctl", "status", "nginx"],
            ["shell", "web"],
            ["systemctl", "status", "nginx"],
        ),
        (["shell", "web", "--nsenter", "--", "ls", "-la"], ["shell", "web", "--nsenter"], ["ls", "-la"]),
        (["shell", "web", "--", "ls", "--", "-x"], ["shell", "web"], ["ls", "--", "-x"]),
        (["shell", "web"], ["shell", "web"], []),
        (["create", "web", "--json"], ["create", "web", "--json"], []),
    ],
)
def test_shell_command_is_everything_after_the_first_double_dash(
    argv: list[str], own: list[str], remote: list[str]
) -> None:
    assert split_remote_command(argv) == (own, remote)


def test_remote_command_quoting() -> None:
    # one word: a command line as typed (pipes work); several: each word stays one argument
    assert remote_command(["systemctl status nginx | head"]) == ["systemctl status nginx | head"]
    assert remote_command(["echo", "two words", "it's"]) == ["echo 'two words' 'it'\"'\"'s'"]
    assert remote_command([]) == []
