"""Every shell example of services/README.md runs, and prints what the guide says it prints.

Fences: ```sh blocks run in order with bash -euo pipefail from the root of a copy of the repository
(so `make new-module` edits the copy); an ```output block right after one lists lines that must
each appear in what it printed. ```sh dev blocks run against `make dev` started on the copy (the
guide's port 8080 replaced by a free one, TOKEN set to the token make dev printed). ```sh host
blocks need a deployed host: they are syntax-checked only. Any other shell fence fails the test.

The copy holds the backend modules numbered below 5 only, so the guide can name the scaffolded
module backend/a-005 whatever modules the repository gains; its wheelhouse is a hard-linked copy
of the local one (a module's changed requirements never touch the original).
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "services" / "README.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SHELL_INFOS = ("sh", "sh dev", "sh host")
GUIDE_PORT = "127.0.0.1:8080"
TOKEN_LINE = re.compile(r"Bearer (bst_[A-Za-z0-9_-]+)")
MODULE_NUMBER = re.compile(r"^[a-z]+-(\d{3,})$")
COPIED = ("Makefile", "pyproject.toml", "services", "tests/dev", "tests/services/svc_testkit", "roles/nginx")


@dataclass(frozen=True)
class Example:
    info: str
    script: str
    expected: tuple[str, ...]
    line: int


def examples(text: str) -> list[Example]:
    fences = [
        (m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)
    ]
    found = []
    for index, (info, body, line) in enumerate(fences):
        if info in SHELL_INFOS:
            following = fences[index + 1] if index + 1 < len(fences) else None
            expected = following[1] if following and following[0] == "output" else ""
            found.append(
                Example(info, body, tuple(x.strip() for x in expected.splitlines() if x.strip()), line)
            )
        elif info in ("bash", "shell", "console", "sh-session", "zsh") or info.startswith("sh "):
            raise AssertionError(f"README line {line}: shell fence {info!r}: use sh, sh dev or sh host")
    return found


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (cheap), or a copy where /tmp is another filesystem (a tmpfs, as on Debian 13)."""
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copy2(source, target)


def _copy_repo(root: Path) -> Path:
    copy = root / "repo"
    for name in COPIED:
        source, target = REPO / name, copy / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for module in (copy / "services" / "backend").iterdir():
        match = MODULE_NUMBER.match(module.name)
        if match and int(match.group(1)) >= 5:
            shutil.rmtree(module)
    (copy / ".venv").symlink_to((REPO / ".venv").resolve())
    wheelhouses = REPO / ".cache" / "wheelhouse"
    if wheelhouses.is_dir():
        target = copy / ".cache" / "wheelhouse"
        shutil.copytree(wheelhouses, target, copy_function=_link_or_copy, symlinks=True)
        for stamp in (copy / ".cache" / "wheelhouse").glob("*/.barestack-wheelhouse.json"):
            content = stamp.read_bytes()
            stamp.unlink()  # a file of its own: the wheelhouse command rewrites it
            stamp.write_bytes(content)
    return copy


def _environ(copy: Path, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "PYTEST_", "BARESTACK_"))}
    environ["PATH"] = f"{copy / '.venv' / 'bin'}:{environ.get('PATH', '/usr/bin:/bin')}"
    return {**environ, **extra}


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    token: str

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.log.read_text(errors="replace")


def _start_dev(copy: Path) -> DevStack:
    import sys

    sys.path.insert(0, str(REPO / "tests" / "services"))
    from svc_testkit.ports import free_port

    port = free_port()
    log = copy.parent / "make-dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["make", "dev", f"DEV_PORT={port}"],
            cwd=copy,
            env=_environ(copy),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while "barestack is up" not in (text := log.read_text(errors="replace")):
        assert process.poll() is None and time.monotonic() < deadline, f"make dev did not come up:\n{text}"
        time.sleep(0.2)
    match = TOKEN_LINE.search(text)
    assert match, text
    return DevStack(process, log, port, match.group(1))


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_repo(tmp_path_factory.mktemp("readme"))


@pytest.fixture(scope="module")
def dev_stack(copy: Path) -> Iterator[list[DevStack]]:
    holder: list[DevStack] = []  # started by the first `sh dev` example, if any
    yield holder
    for stack in holder:
        stack.stop()


def test_the_guide_has_examples() -> None:
    found = examples(GUIDE.read_text(encoding="utf-8"))
    kinds = [example.info for example in found]
    assert kinds.count("sh") >= 5 and "sh dev" in kinds and "sh host" in kinds, kinds


def test_every_example_runs_and_prints_what_the_guide_says(copy: Path, dev_stack: list[DevStack]) -> None:
    if os.geteuid() != 0:
        pytest.skip("cannot run here: needs root (make test runs as root): make dev, and so the guide")
    for example in examples(GUIDE.read_text(encoding="utf-8")):
        where = f"README line {example.line} ({example.info})"
        script, environ = example.script, _environ(copy)
        if example.info == "sh host":
            check = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True, check=False)
            assert check.returncode == 0, f"{where}: {check.stderr}"
            continue
        if example.info == "sh dev":
            if not dev_stack:
                dev_stack.append(_start_dev(copy))
            script = script.replace(GUIDE_PORT, f"127.0.0.1:{dev_stack[0].port}")
            environ["TOKEN"] = dev_stack[0].token
        started = time.monotonic()
        completed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=copy,
            env=environ,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        printed = completed.stdout + completed.stderr
        print(f"{where}: {time.monotonic() - started:.1f} s")
        assert completed.returncode == 0, f"{where} exited {completed.returncode}:\n{script}\n---\n{printed}"
        for line in example.expected:
            assert line in printed, f"{where}: {line!r} not in the output:\n{printed}"
    if dev_stack:
        assert "stopped: nothing left running" in dev_stack.pop().stop()
