"""Run ansible-playbook the way `make demo` does, with every task timed, and read its outcome."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barestack_bench.ansible_output import HostRecap, TaskTiming, parse_play_recap, parse_task_timings
from barestack_bench.project import Project
from barestack_bench.settings import VENV_BIN


class PlaybookFailed(RuntimeError):
    """ansible-playbook failed; the message points at its full log."""


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str
    wall_s: float
    returncode: int
    recap: dict[str, HostRecap]
    tasks: list[TaskTiming]
    log: Path

    @property
    def changed(self) -> int:
        return sum(host.changed for host in self.recap.values())

    @property
    def tasks_total_s(self) -> float:
        return sum(task.seconds for task in self.tasks)

    def task_seconds(self, pattern: str) -> float:
        """Seconds of the tasks whose name matches ``pattern``; an error if none does (renamed task)."""
        rule = re.compile(pattern)
        matching = [task.seconds for task in self.tasks if rule.search(task.name)]
        if not matching:
            raise PlaybookFailed(f"{self.playbook}: no task matching {pattern!r} in its timings ({self.log})")
        return sum(matching)


def ansible_environment(project: Project, secrets_dir: Path) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "PATH": f"{VENV_BIN}:{environment.get('PATH', '/usr/bin:/bin')}",
            "ANSIBLE_CONFIG": str(project.ansible_cfg),
            # Every task, in execution order: the phases are summed from this list.
            "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
            "PROFILE_TASKS_SORT_ORDER": "none",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The bench's own generated secrets (the local inventory's group_vars read this).
            "BARESTACK_SECRETS_DIR": str(secrets_dir),
        }
    )
    return environment


def run_playbook(
    project: Project,
    playbook: Path,
    inventory: Path,
    log: Path,
    secrets_dir: Path,
    extra_vars: Mapping[str, Any] | None = None,
    timeout_s: float = 1800,
    environment: Mapping[str, str] | None = None,
) -> PlaybookRun:
    """Run one playbook to completion; its output goes to ``log``. Raises PlaybookFailed on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(VENV_BIN / "ansible-playbook"), str(playbook), "-i", str(inventory)]
    if extra_vars:
        # A file keeps lists and paths exact (no shell or key=value quoting).
        vars_file = log.with_suffix(".vars.json")
        vars_file.write_text(json.dumps(dict(extra_vars), indent=2), encoding="utf-8")
        argv += ["-e", f"@{vars_file}"]
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as output:
        completed = subprocess.run(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**ansible_environment(project, secrets_dir), **(environment or {})},
            cwd=project.root,
            timeout=timeout_s,
            check=False,
        )
    wall = time.monotonic() - started
    text = log.read_text(encoding="utf-8", errors="replace")
    run = PlaybookRun(
        playbook=playbook.name,
        wall_s=wall,
        returncode=completed.returncode,
        recap=parse_play_recap(text),
        tasks=parse_task_timings(text),
        log=log,
    )
    if completed.returncode != 0:
        failed_lines = [line for line in text.splitlines() if line.startswith(("fatal:", "failed:"))]
        detail = "\n".join(failed_lines[-3:])[-1500:]
        raise PlaybookFailed(f"{playbook.name} exited {completed.returncode} (log: {log})\n{detail}")
    if not run.recap:
        raise PlaybookFailed(f"{playbook.name}: no PLAY RECAP in its output (log: {log})")
    return run
