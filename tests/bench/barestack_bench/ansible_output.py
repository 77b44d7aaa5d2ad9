"""Parse what ansible-playbook prints: the PLAY RECAP and the profile_tasks TASKS RECAP.

ansible.cfg enables ansible.posix.profile_tasks; the bench runs it with an unlimited task list in
execution order (PROFILE_TASKS_TASK_OUTPUT_LIMIT=all, PROFILE_TASKS_SORT_ORDER=none), so every task
of the run appears once, with the seconds it took summed over hosts and loop items.

Not the ansible.posix.json callback: it is a stdout callback that prints one JSON document when the
run ends, so a run the bench stops at its timeout leaves nothing to read, and it replaces the
readable log the bench keeps of every run (profile_tasks would have to be off, and warnings on
stderr kept apart). ansible.posix.jsonl would keep partial runs, at the cost of rendering a log of
our own; the two line formats read here are what that would replace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)(?:\s+skipped=(?P<skipped>\d+))?(?:\s+rescued=(?P<rescued>\d+))?"
    r"(?:\s+ignored=(?P<ignored>\d+))?"
)
# profile_tasks pads "<name> " with dashes to the terminal width, then right-aligns " <s.ss>s".
TASK_TIMING_LINE = re.compile(r"^(?P<name>.*?\S) -* ?(?P<seconds>\d+\.\d+)s$")
TASKS_RECAP_BANNER = re.compile(r"^TASKS RECAP \*+")
PLAY_RECAP_BANNER = re.compile(r"^PLAY RECAP \*+")


@dataclass(frozen=True)
class HostRecap:
    ok: int
    changed: int
    unreachable: int
    failed: int
    skipped: int
    rescued: int
    ignored: int


@dataclass(frozen=True)
class TaskTiming:
    name: str
    seconds: float


def parse_play_recap(output: str) -> dict[str, HostRecap]:
    """Per-host counters from the last PLAY RECAP in ``output``; empty if the run printed none."""
    lines = output.splitlines()
    starts = [index for index, line in enumerate(lines) if PLAY_RECAP_BANNER.match(line)]
    if not starts:
        return {}
    recap: dict[str, HostRecap] = {}
    for line in lines[starts[-1] + 1 :]:
        match = RECAP_LINE.match(line.strip())
        if not match:
            if recap:
                break
            continue
        counts = {name: int(value or 0) for name, value in match.groupdict().items() if name != "host"}
        recap[match["host"]] = HostRecap(**counts)
    return recap


def parse_task_timings(output: str) -> list[TaskTiming]:
    """Every task line of the TASKS RECAP, in the order profile_tasks printed them."""
    lines = output.splitlines()
    starts = [index for index, line in enumerate(lines) if TASKS_RECAP_BANNER.match(line)]
    if not starts:
        return []
    timings: list[TaskTiming] = []
    body = lines[starts[-1] + 1 :]
    # The banner is followed by a timestamp line and a rule of '=' before the tasks.
    rule = next((index for index, line in enumerate(body) if line.startswith("=====")), None)
    if rule is None:
        return []
    for line in body[rule + 1 :]:
        match = TASK_TIMING_LINE.match(line.rstrip())
        if match:
            timings.append(TaskTiming(name=match["name"], seconds=float(match["seconds"])))
        elif timings and line.strip():
            break
    return timings
