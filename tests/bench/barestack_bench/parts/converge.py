"""Part 1: full converge of a fresh machine (the default scenario), and the time of its phases."""

from __future__ import annotations

import shutil
import time

from barestack_bench.phases import PHASES, phase_seconds
from barestack_bench.results import Figure, PartResult, Target
from barestack_bench.session import Session
from barestack_bench.settings import WHEELHOUSE_CACHE_DIR

TITLE = "Full converge of a fresh machine"
WHEELHOUSE_BUILD_TASK = r"^app : Build the wheelhouse on the controller"
CONVERGE_GOAL_S = 120.0


def run(session: Session) -> PartResult:
    result = PartResult(name="converge", title=TITLE)
    settings = session.settings
    wall: list[float] = []
    boots: list[float] = []
    changed: list[float] = []
    phases: dict[str, list[float]] = {phase: [] for phase in PHASES}
    wheelhouse_build: list[float] = []
    for iteration in range(1, settings.iterations + 1):
        started = time.monotonic()
        stack = session.fresh_stack()
        boots.append(time.monotonic() - started)
        session.progress(
            f"converge {iteration}/{settings.iterations}: site.yml on fresh {stack.machine.name}"
        )
        # Cold controller caches: no wheelhouse for the tree, an empty uv cache (every index page
        # and wheel comes from PyPI), as on an operator's first deploy.
        shutil.rmtree(WHEELHOUSE_CACHE_DIR, ignore_errors=True)
        uv_cache = session.work_dir / f"uv-cache-converge-{iteration}"
        shutil.rmtree(uv_cache, ignore_errors=True)
        converge = session.site(
            stack, session.stack_tree(), f"converge-{iteration}", environment={"UV_CACHE_DIR": str(uv_cache)}
        )
        shutil.rmtree(uv_cache, ignore_errors=True)
        wall.append(converge.wall_s)
        changed.append(float(converge.changed))
        for phase, seconds in phase_seconds(converge.tasks).items():
            phases[phase].append(seconds)
        wheelhouse_build.append(converge.task_seconds(WHEELHOUSE_BUILD_TASK))
        session.progress(f"converge {iteration}: {converge.wall_s:.1f} s, changed={converge.changed}")
    # The last machine stays converged for the parts that follow.
    session.adopt(stack)

    result.add(Figure("site_wall", "site.yml on a fresh machine (wall time)", "s", wall))
    for phase, samples in phases.items():
        if phase == "other" and not any(samples):
            continue
        result.add(Figure(f"phase_{phase.replace(' ', '_')}", f"phase: {phase}", "s", samples))
    result.add(
        Figure(
            "wheelhouse_build",
            "of the wheelhouse phase: building it on the controller",
            "s",
            wheelhouse_build,
            note="from the controller's cache when warm; a cold cache downloads from PyPI",
        )
    )
    result.add(Figure("machine_boot", "test machine (re)create and boot, before the converge", "s", boots))
    result.add(Figure("changed_tasks", "tasks reporting changed", "tasks", changed))
    result.targets.append(
        Target.time_under(
            "converge_under_120s",
            f"fresh converge with {settings.stack_modules} realistic modules and cold controller caches "
            f"under {CONVERGE_GOAL_S:g} s",
            max(wall),
            CONVERGE_GOAL_S,
            f"{max(wall):.1f} s at most over {len(wall)} runs "
            f"(apt packages {max(phases['apt packages']):.1f} s)",
            goal_note=" (floor: apt's own install time, the 'apt packages' phase)",
        )
    )
    result.notes.append(
        f"The application is services/ plus {settings.stack_modules} modules of generate_modules.py's "
        f"realistic mode ({settings.stack_distinct_sets} distinct requirement sets); before every run "
        "the controller's wheelhouse cache and uv cache are emptied (cold: every wheel comes from PyPI)."
    )
    result.notes.append(
        "Phases are summed from ansible.posix.profile_tasks (every task, execution order); "
        "their sum is the playbook's elapsed time, the wall time adds ansible-playbook's start-up."
    )
    result.notes.append(
        "Every run starts from a new machine booted from the cached Debian rootfs (apt's package lists "
        "are not cached: each run fetches them)."
    )
    return result
