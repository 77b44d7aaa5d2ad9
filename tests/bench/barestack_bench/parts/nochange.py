"""Part 2: no-change re-run of the converged machine (its time, and changed=0), then a deploy with
one module's pin changed."""

from __future__ import annotations

from barestack_bench.parts.wheelhouse import change_one_pin
from barestack_bench.phases import phase_seconds
from barestack_bench.results import Figure, PartResult, Target
from barestack_bench.session import Session

TITLE = "No-change re-run of the converged machine"
VENV_TASK = r"^app : Build one venv per module"
NOCHANGE_GOAL_S = 30.0
PIN_CHANGED_GOAL_S = 40.0


def run(session: Session) -> PartResult:
    result = PartResult(name="nochange", title=TITLE)
    stack = session.converged_stack()
    tree = stack.tree or session.stack_tree()
    wall: list[float] = []
    changed: list[float] = []
    venv_task: list[float] = []
    config: list[float] = []
    tasks: list[float] = []
    facts: list[float] = []
    for iteration in range(1, session.settings.iterations + 1):
        rerun = session.site(stack, tree, f"nochange-{iteration}")
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
    result.add(Figure("fact_gathering", "of which: fact gathering", "s", facts))
    result.add(Figure("tasks_run", "tasks run (ok + skipped)", "tasks", tasks))
    # One module's pin changed in the deployed checkout (the role keys its wheelhouse cache on the
    # source path, as a user's edits land in one checkout): a new release whose venvs are seeded from
    # the current one, so only the changed set is resolved, downloaded and built. Put back after.
    originals = {path: path.read_bytes() for path in tree.glob("*/*/requirements.txt")}
    try:
        what = change_one_pin(tree)
        pin_run = session.site(stack, tree, "pin-changed")
    finally:
        for path, content in originals.items():
            if path.read_bytes() != content:
                path.write_bytes(content)
    session.progress(f"one pin changed ({what}): {pin_run.wall_s:.1f} s, changed={pin_run.changed}")
    result.add(
        Figure("pin_changed_wall", f"site.yml after one module's pin changed ({what})", "s", [pin_run.wall_s])
    )
    result.targets.append(
        Target.time_under(
            "nochange_under_30s",
            f"no-change re-run under {NOCHANGE_GOAL_S:g} s",
            max(wall),
            NOCHANGE_GOAL_S,
            f"{max(wall):.1f} s at most over {len(wall)} runs",
        )
    )
    result.targets.append(
        Target.time_under(
            "pin_changed_under_40s",
            f"one module's pin changed, re-deployed under {PIN_CHANGED_GOAL_S:g} s",
            pin_run.wall_s,
            PIN_CHANGED_GOAL_S,
            f"{pin_run.wall_s:.1f} s",
        )
    )
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
