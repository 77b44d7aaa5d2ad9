"""Part 3: venvs at scale. Our venv step against the naive way, at 400 and 1,000 generated modules.

Ours is measured for real at every count: the venv manager on the host (cold first build and
no-change run), the barestack_venvs task inside a real site.yml deploy, and (at the first count) the
whole no-change site.yml re-run. The naive way (python -m venv + pip per module, looped by Ansible)
costs ~2-4 s a module, so it is measured on a random sample and scaled: those figures are marked
extrapolated, with the number of modules they come from.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from barestack_bench.hosts import Host
from barestack_bench.machines import BenchMachine
from barestack_bench.results import Comparison, Figure, PartResult, Target
from barestack_bench.session import Session, Stack
from barestack_bench.settings import TREES_DIR, VENV_BIN, WHEELHOUSE_CACHE_DIR
from barestack_bench.sources import generated_tree, module_keys
from barestack_bench.stats import ratio
from barestack_bench.venv_measure import VenvHost, measure_naive, measure_ours

TITLE = "Venvs at scale: our venv step against python -m venv + pip per module"
VENV_TASK = r"^app : Build one venv per module"
WHEELHOUSE_BUILD_TASK = r"^app : Build the wheelhouse on the controller"
MIB = 1024 * 1024
SPEEDUP_GOAL = 15.0
FIRST_BUILD_GOAL_S = 90.0
NOCHANGE_GOAL_S = 45.0
# Where the role keeps things on the host; the bench builds its own venvs next to them.
HOST_APP_ROOT = "/srv/barestack"
HOST_SCRATCH = "/srv/barestack-bench"


def machine_target(host: Host) -> VenvHost:
    """Build where the role builds: the current release's tree and manager, its wheelhouse and uv."""
    current = f"{HOST_APP_ROOT}/current/services"
    return VenvHost(
        host=host,
        services_dir=current,
        manager=f"{current}/tools/venv_manager.py",
        wheelhouse=f"{HOST_APP_ROOT}/wheelhouse",
        uv=f"{HOST_APP_ROOT}/bin/uv",
        python="/usr/bin/python3",
        scratch=HOST_SCRATCH,
    )


def pushed_target(machine: BenchMachine, tree: Path, count: int) -> VenvHost:
    """The tree and a wheelhouse for it (built on the controller as the role does) on the machine."""
    target = machine_target(machine)
    version = machine.run(
        ["python3", "-c", "import platform; print(platform.python_version())"]
    ).stdout.strip()
    architecture = machine.run(["uname", "-m"]).stdout.strip()
    wheelhouse = WHEELHOUSE_CACHE_DIR / f"{tree.name}-py{version}-{architecture}"
    build = subprocess.run(
        [
            sys.executable, str(tree / "tools" / "venv_manager.py"), "wheelhouse",
            "--services-dir", str(tree), "--out", str(wheelhouse), "--python-version", version,
            "--platform", f"{architecture}-manylinux_2_28", "--uv", str(VENV_BIN / "uv"),
        ],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if build.returncode != 0:
        raise RuntimeError(f"wheelhouse for {tree} failed: {build.stdout[-1500:]} {build.stderr[-500:]}")
    pushed_tree, pushed_wheelhouse = f"{HOST_SCRATCH}/tree-{count}", f"{HOST_SCRATCH}/wheelhouse-{count}"
    machine.push(tree, pushed_tree)
    machine.push(wheelhouse, pushed_wheelhouse)
    return replace(
        target,
        services_dir=pushed_tree,
        manager=f"{pushed_tree}/tools/venv_manager.py",
        wheelhouse=pushed_wheelhouse,
    )


def naive_sample(tree: Path, size: int, seed: int) -> list[str]:
    """A reproducible random sample of the tree's generated modules."""
    keys = module_keys(tree, name_prefix="gen-") or module_keys(tree)
    return sorted(random.Random(seed).sample(keys, min(size, len(keys))))


def chunks(keys: Sequence[str], parts: int) -> list[list[str]]:
    """``parts`` disjoint slices of ``keys`` (fewer if there are fewer keys): one per run."""
    return [list(keys[index::parts]) for index in range(parts) if keys[index::parts]]


def measure_scale(
    session: Session,
    result: PartResult,
    target: VenvHost,
    inventory: Path,
    tree: Path,
    count: int,
    naive_keys: Sequence[str] = (),
    install_venv_package: bool = False,
) -> None:
    """Ours at ``count`` modules (every iteration), and the naive way on ``naive_keys`` if given."""
    iterations = session.settings.iterations
    ours = []
    for iteration in range(1, iterations + 1):
        ours.append(measure_ours(target, f"{count}-{iteration}"))
        session.progress(
            f"venvs {count}: ours {iteration}/{iterations}: first build {ours[-1].first_build_s:.1f} s "
            f"({ours[-1].venvs_built} venvs), no-change {ours[-1].nochange_s:.2f} s"
        )
    if any(run.nochange_changed for run in ours):
        result.notes.append(
            f"At {count} modules our no-change build reported changes: a bug in the venv manager."
        )
    built = ours[0].venvs_built
    result.add(
        Figure(
            f"ours_{count}_first_build",
            f"ours, {count} modules: first build ({built} venvs, cold uv cache)",
            "s",
            [run.first_build_s for run in ours],
        )
    )
    result.add(
        Figure(
            f"ours_{count}_nochange",
            f"ours, {count} modules: no-change run",
            "s",
            [run.nochange_s for run in ours],
        )
    )
    result.add(
        Figure(
            f"ours_{count}_disk",
            f"ours, {count} modules: disk (venvs + uv cache)",
            "MiB",
            [run.disk_bytes / MIB for run in ours],
        )
    )
    if not naive_keys:
        return
    naive = []
    for index, keys in enumerate(chunks(naive_keys, iterations), start=1):
        naive.append(
            measure_naive(session, target, inventory, tree, keys, f"{count}-{index}", install_venv_package)
        )
        session.progress(
            f"venvs: naive {index}: {naive[-1].modules} modules in {naive[-1].first_build_s:.1f} s, "
            f"re-run {naive[-1].nochange_s:.1f} s"
        )
    measured = sum(run.modules for run in naive)
    how = f"measured on {measured} random modules: {len(naive)} runs of {naive[0].modules}"
    result.add(
        Figure(
            "naive_per_module_first_build",
            "naive: first build, per module",
            "s",
            [run.first_build_s / run.modules for run in naive],
            note=how,
        )
    )
    result.add(
        Figure(
            "naive_per_module_nochange",
            "naive: no-change re-run, per module",
            "s",
            [run.nochange_s / run.modules for run in naive],
            note=how,
        )
    )
    result.add(
        Figure(
            "naive_per_module_disk",
            "naive: disk per module",
            "MiB",
            [run.disk_bytes / MIB / run.modules for run in naive],
            note=how,
        )
    )
    if any(run.nochange_changed for run in naive):
        result.notes.append("The naive loop's re-run reported changed tasks (pip reinstalled something).")


def add_extrapolations_and_targets(result: PartResult, counts: Sequence[int]) -> None:
    """Naive figures scaled to each count, the ratios against ours, and the issue's targets."""
    per_module = {
        "first_build": result.figure("naive_per_module_first_build"),
        "nochange": result.figure("naive_per_module_nochange"),
        "disk": result.figure("naive_per_module_disk"),
    }
    for count in counts:
        for kind, figure in per_module.items():
            label = {"first_build": "first build", "nochange": "no-change re-run", "disk": "disk"}[kind]
            result.add(
                Figure(
                    f"naive_{count}_{kind}",
                    f"naive, {count} modules: {label} (extrapolated)",
                    figure.unit,
                    [sample * count for sample in figure.samples],
                    note=figure.note,
                    extrapolated=True,
                )
            )
        for kind, what in (("first_build", "first build"), ("nochange", "no-change run"), ("disk", "disk")):
            ours_key, how = (
                f"ours_{count}_{kind}",
                "naive extrapolated from its measured sample; ours measured",
            )
            if kind == "nochange" and any(
                f.key == f"site_nochange_{count}_venv_task" for f in result.figures
            ):
                # Both as Ansible tasks: the naive loop against barestack_venvs in a no-change site.yml.
                ours_key = f"site_nochange_{count}_venv_task"
                how += " (ours: the barestack_venvs task of the no-change site.yml runs)"
            ours = result.figure(ours_key).summary.median
            naive = result.figure(f"naive_{count}_{kind}").summary.median
            result.comparisons.append(
                Comparison(
                    key=f"speedup_{count}_{kind}",
                    label=f"{count} modules, {what}: naive / ours",
                    value=ratio(naive, ours),
                    unit="x",
                    ours=ours_key,
                    baseline=f"naive_{count}_{kind}",
                    note=how,
                )
            )
    first = counts[0]
    speedup = next(c for c in result.comparisons if c.key == f"speedup_{first}_first_build").value
    first_build = result.figure(f"ours_{first}_first_build").summary.median
    result.targets.append(
        Target(
            key="venv_speedup",
            label=f"{first}-module venv step at least {SPEEDUP_GOAL:g}x faster than the naive way",
            goal=f">= {SPEEDUP_GOAL:g}x",
            measured=f"{speedup:.1f}x",
            met=speedup >= SPEEDUP_GOAL,
        )
    )
    result.targets.append(
        Target.time_under(
            "venv_first_build",
            f"{first}-module venv step under {FIRST_BUILD_GOAL_S:g} s",
            first_build,
            FIRST_BUILD_GOAL_S,
            f"{first_build:.1f} s",
        )
    )


def deploy_first_count(session: Session, result: PartResult, stack: Stack, tree: Path, count: int) -> None:
    """The real thing at the first count: site.yml deploys the tree, then re-runs with nothing to do."""
    session.progress(f"venvs {count}: deploying {count} generated modules with site.yml")
    deploy = session.site(stack, tree, f"deploy-{count}-modules")
    result.add(
        Figure(
            f"deploy_{count}_wall",
            f"site.yml deploying {count} modules (new release)",
            "s",
            [deploy.wall_s],
            note="one run: a second run of the same tree changes nothing",
        )
    )
    result.add(
        Figure(
            f"deploy_{count}_venv_task",
            f"of which: barestack_venvs task ({count} modules, "
            "seeded from the previous release, warm uv cache)",
            "s",
            [deploy.task_seconds(VENV_TASK)],
        )
    )
    result.add(
        Figure(
            f"deploy_{count}_wheelhouse",
            "of which: building the wheelhouse on the controller",
            "s",
            [deploy.task_seconds(WHEELHOUSE_BUILD_TASK)],
        )
    )
    add_site_nochange(session, result, stack_tree=tree, count=count)


def run(session: Session) -> PartResult:
    result = PartResult(name="venvs", title=TITLE)
    settings = session.settings
    stack = session.converged_stack()
    counts = sorted(set(settings.module_counts))
    try:
        for index, count in enumerate(counts):
            # Realistic requirement sets (as many as the wheelhouse part uses at that count, else
            # one per 1.6 modules, its ratio), so venvs are timed on what a real code base needs.
            distinct_sets = dict(settings.wheelhouse_scales).get(count, max(1, round(count / 1.6)))
            tree = generated_tree(
                TREES_DIR / f"modules-{count}-{distinct_sets}",
                count,
                settings.sample_seed,
                session.default_tree(),
                distinct_sets=distinct_sets,
            )
            if index == 0:
                deploy_first_count(session, result, stack, tree, count)
                target = machine_target(stack.machine)
            else:
                # Larger counts: no site.yml deploy is timed; the tree and its wheelhouse are copied
                # next to the release and the manager builds from them like the role would.
                target = pushed_target(stack.machine, tree, count)
            naive_keys = naive_sample(tree, settings.naive_sample, settings.sample_seed) if index == 0 else ()
            measure_scale(
                session, result, target, stack.inventory, tree, count, naive_keys, install_venv_package=True
            )
        add_extrapolations_and_targets(result, counts)
    finally:
        stack.machine.run(["rm", "-rf", HOST_SCRATCH], check=False)
    result.notes.append(
        f"Ours: the venv manager the role runs, on the machine, into empty folders and an empty uv cache, "
        f"{settings.iterations} runs per count, timed on the machine; at {counts[0]} modules also inside "
        "a real site.yml deploy and its no-change re-runs. Naive: ansible.builtin.pip looped over modules "
        "(virtualenv_command python3 -m venv, --no-index --find-links on the same wheelhouse), timed from "
        "profile_tasks; its per-module cost and disk are scaled to each count."
    )
    return result


def add_site_nochange(session: Session, result: PartResult, stack_tree: Path, count: int) -> None:
    stack = session.converged_stack()
    wall: list[float] = []
    venv_task: list[float] = []
    changed: list[float] = []
    tasks: list[float] = []
    for iteration in range(1, session.settings.iterations + 1):
        rerun = session.site(stack, stack_tree, f"nochange-{count}-modules-{iteration}")
        wall.append(rerun.wall_s)
        venv_task.append(rerun.task_seconds(VENV_TASK))
        changed.append(float(rerun.changed))
        tasks.append(float(len(rerun.tasks)))
        session.progress(
            f"venvs {count}: no-change site.yml {iteration}: {rerun.wall_s:.1f} s, changed={rerun.changed}"
        )
    result.add(
        Figure(f"site_nochange_{count}_wall", f"site.yml no-change re-run with {count} modules", "s", wall)
    )
    result.add(Figure(f"site_nochange_{count}_venv_task", "of which: barestack_venvs task", "s", venv_task))
    result.add(Figure(f"site_nochange_{count}_changed", "tasks reporting changed", "tasks", changed))
    result.add(Figure(f"site_nochange_{count}_tasks", "tasks run (ok + skipped)", "tasks", tasks))
    median = result.figure(f"site_nochange_{count}_wall").summary.median
    result.targets.append(
        Target(
            key="site_nochange",
            label=f"no-change re-run with {count} modules under {NOCHANGE_GOAL_S:g} s",
            goal=f"< {NOCHANGE_GOAL_S:g} s (and changed=0)",
            measured=f"{median:.1f} s, changed={int(max(changed))} at most",
            met=median < NOCHANGE_GOAL_S and max(changed) == 0,
        )
    )
