"""Part 2: no-change re-run of the converged machine: its time, and changed=0."""

from __future__ import annotations

from barestack_bench.phases import phase_seconds
from barestack_bench.results import Figure, PartResult, Target
from barestack_bench.session import Session

TITLE = "No-change re-run of the converged machine"
VENV_TASK = r"^app : Build one venv per module"


def run(session: Session) -> PartResult:
    result = PartResult(name="nochange", title=TITLE)
    stack = session.converged_stack()
    wall: list[float] = []
    changed: list[float] = []
    venv_task: list[float] = []
    config: list[float] = []
    tasks: list[float] = []
    facts: list[float] = []
    for iteration in range(1, session.settings.iterations + 1):
        rerun = session.site(stack, stack.tree or session.default_tree(), f"nochange-{iteration}")
        wall.append(rerun.wall_s)
        changed.append(float(rerun.changed))
        venv_task.append(rerun.task_seconds(VENV_TASK))
        config.append(phase_seconds(rerun.tasks)["data and web configuration"])
        tasks.append(float(len(rerun.tasks)))
        facts.append(rerun.task_seconds(r"^Gathering Facts$"))
        session.progress(f"no-change {iteration}: {rerun.wall_s:.1f} s, changed={rerun.changed}")
    result.add(Figure("site_wall", "site.yml re-run, nothing to change (wall time)", "s", wall))
    result.add(Figure("changed_tasks", "tasks reporting changed", "tasks", changed))
    result.add(Figure("venv_task", "of which: the venv task (barestack_venvs)", "s", venv_task))
    result.add(Figure("data_web_config", "of which: data and web tier configuration tasks", "s", config))
    result.add(Figure("fact_gathering", "of which: fact gathering (once per play)", "s", facts))
    result.add(Figure("tasks_run", "tasks run (ok + skipped)", "tasks", tasks))
    worst = max(changed)
    result.targets.append(
        Target(
            key="nochange_changed_zero",
            label="no-change re-run reports changed=0",
            goal="changed=0 on every run",
            measured=f"changed={int(worst)} at most over {len(changed)} runs",
            met=worst == 0,
        )
    )
    result.notes.append(
        "Same machine, same source tree as the converge; "
        f"{len(changed)} consecutive re-runs of site.yml, each a separate ansible-playbook process. "
        "A no-change run costs about the same per task whatever the task does: its time is the number of "
        "tasks times Ansible's per-task round trip on this machine."
    )
    return result
