"""Part 6: the wheelhouse on the controller, cold and warm, for realistic trees of 400 and 1,000 modules.

No test machine: the wheelhouse is built on the controller, for the host's Python and platform, by
the venv manager exactly as the role's "Build the wheelhouse on the controller" task runs it. The
trees are services/ plus modules from generate_modules.py's realistic mode (--distinct-sets: ~250
and ~600 distinct sets of 1-3 pinned packages from a pool of real PyPI releases). Each iteration
starts in a new temporary folder with an empty uv cache and an empty wheelhouse (cold: every index
page and every wheel comes from PyPI), then runs again with nothing changed (warm: the tree's stamp
makes it a no-op) and once more with one module's pin changed (only that set is resolved again).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barestack_bench.environment import load_average
from barestack_bench.results import Figure, PartResult, Target
from barestack_bench.session import Session
from barestack_bench.settings import TREES_DIR, VENV_BIN
from barestack_bench.sources import generated_tree

TITLE = "Wheelhouse on the controller: cold and warm, realistic requirement sets"
# What the bench machines run (Debian trixie's python3) on this controller's architecture.
TARGET_PYTHON = "3.13.5"
TARGET_PLATFORM = "x86_64-manylinux_2_28"
# The goals: module count -> (cold, warm) in seconds; None where it sets none.
GOALS_S: dict[int, tuple[float, float | None]] = {400: (20.0, 2.0), 1000: (45.0, None)}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Build:
    seconds: float
    # CPU time of the manager and its uv processes (user + sys): the part of the cost that does not
    # depend on what else the shared controller runs.
    cpu_seconds: float
    report: dict[str, Any]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_wheelhouse(tree: Path, out: Path, cache: Path) -> Build:
    """One run of the venv manager's wheelhouse command, timed around the process."""
    command = [
        sys.executable, str(tree / "tools" / "venv_manager.py"), "wheelhouse",
        "--services-dir", str(tree), "--out", str(out), "--python-version", TARGET_PYTHON,
        "--platform", TARGET_PLATFORM, "--uv", str(VENV_BIN / "uv"), "--cache-dir", str(cache),
    ]  # fmt: skip
    started, cpu_started = time.monotonic(), _children_cpu()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    seconds, cpu_seconds = time.monotonic() - started, _children_cpu() - cpu_started
    if completed.returncode != 0:
        raise RuntimeError(
            f"wheelhouse for {tree} failed ({completed.returncode}): "
            f"{completed.stdout[-2000:]} {completed.stderr[-1000:]}"
        )
    return Build(seconds, cpu_seconds, json.loads(completed.stdout))


def change_one_pin(tree: Path) -> str:
    """Give one generated module a set no other module has (another version of one of its pins)."""
    sys.path.insert(0, str(tree / "tools"))
    try:
        from generate_modules import REALISTIC_POOL
    finally:
        sys.path.pop(0)
    requirement_files = sorted(tree.glob("*/gen-*/requirements.txt"))
    existing = {path.read_text(encoding="utf-8") for path in requirement_files}
    for path in requirement_files:
        pins = path.read_text(encoding="utf-8").split()
        for index, pin in enumerate(pins):
            name, _, version = pin.partition("==")
            for other in REALISTIC_POOL.get(name, ("", ()))[1]:
                changed = sorted([*pins[:index], f"{name}=={other}", *pins[index + 1 :]])
                text = "".join(f"{line}\n" for line in changed)
                if other != version and text not in existing:
                    path.write_text(text, encoding="utf-8")
                    return f"{path.parent.parent.name}/{path.parent.name}: {pin} -> {name}=={other}"
    raise RuntimeError(f"no module of {tree} can be given a new set")


def measure_scale(session: Session, result: PartResult, count: int, distinct_sets: int) -> None:
    settings = session.settings
    tree = generated_tree(
        TREES_DIR / f"wheelhouse-{count}",
        count,
        settings.sample_seed,
        session.default_tree(),
        distinct_sets=distinct_sets,
    )
    cold: list[float] = []
    cold_resolve: list[float] = []
    cold_cpu: list[float] = []
    warm: list[float] = []
    one_changed: list[float] = []
    sizes: list[float] = []
    sets = wheels = 0
    for _ in range(settings.iterations):
        with tempfile.TemporaryDirectory(prefix="barestack-bench-wheelhouse-") as scratch:
            root = Path(scratch)
            out, cache, copy = root / "wheelhouse", root / "uv-cache", root / "tree"
            shutil.copytree(tree, copy, symlinks=True)
            load = load_average()
            first = build_wheelhouse(copy, out, cache)
            if first.report["resolved_sets"] != first.report["requirement_sets"]:
                raise RuntimeError(f"a cold build reused sets: {first.report}")
            again = build_wheelhouse(copy, out, cache)
            if not again.report["up_to_date"]:
                raise RuntimeError(f"the warm run was no no-op: {again.report}")
            what = change_one_pin(copy)
            changed = build_wheelhouse(copy, out, cache)
            if changed.report["resolved_sets"] != 1:
                raise RuntimeError(f"one changed set resolved {changed.report['resolved_sets']} sets")
            cold.append(first.seconds)
            cold_resolve.append(first.report["seconds"]["resolve"])
            cold_cpu.append(first.cpu_seconds)
            warm.append(again.seconds)
            one_changed.append(changed.seconds)
            sizes.append(sum(path.stat().st_size for path in out.glob("*.whl")) / MIB)
            sets, wheels = first.report["requirement_sets"], len(first.report["wheels"])
            session.progress(
                f"wheelhouse {count}: cold {first.seconds:.1f} s, CPU {first.cpu_seconds:.1f} s "
                f"({sets} sets, {wheels} wheels, load {load}), warm {again.seconds:.2f} s, "
                f"one pin changed {changed.seconds:.2f} s ({what})"
            )
    prefix = f"wheelhouse_{count}"
    result.add(
        Figure(f"{prefix}_cold", f"{count} modules ({sets} distinct sets, {wheels} wheels): cold", "s", cold,
               note="empty uv cache and wheelhouse; PyPI"))  # fmt: skip
    result.add(
        Figure(f"{prefix}_cold_resolve", "of which: resolving (downloads overlap it)", "s", cold_resolve)
    )
    result.add(
        Figure(
            f"{prefix}_cold_cpu", "of which: CPU time, uv and Python (user + sys, all cores)", "s", cold_cpu
        )
    )
    result.add(Figure(f"{prefix}_warm", f"{count} modules: warm, nothing changed", "s", warm))
    result.add(
        Figure(f"{prefix}_one_changed", f"{count} modules: one module's pin changed", "s", one_changed)
    )
    result.add(Figure(f"{prefix}_size", f"{count} modules: wheelhouse size", "MiB", sizes))
    cold_goal, warm_goal = GOALS_S.get(count, (None, None))
    for kind, goal, figure in (("cold", cold_goal, cold), ("warm", warm_goal, warm)):
        if goal is None:
            continue
        median = result.figure(f"{prefix}_{kind}").summary.median
        result.targets.append(
            Target.time_under(
                f"{prefix}_{kind}",
                f"wheelhouse for {count} modules / ~{distinct_sets} sets, {kind}, under {goal:g} s",
                median,
                goal,
                f"{median:.1f} s (median of {len(figure)})",
            )
        )


def run(session: Session) -> PartResult:
    result = PartResult(name="wheelhouse", title=TITLE)
    for count, distinct_sets in session.settings.wheelhouse_scales:
        measure_scale(session, result, count, distinct_sets)
    settings = session.settings
    result.notes.append(
        f"Controller only, no test machine: `venv_manager.py wheelhouse` for Python {TARGET_PYTHON} "
        f"{TARGET_PLATFORM}, timed around the process; {settings.iterations} runs per size, each in a "
        "new temporary folder (empty uv cache, empty wheelhouse), so cold runs fetch every index page "
        "and wheel from PyPI and their time includes the network. Trees: services/ plus "
        f"generate_modules.py --distinct-sets (seed {settings.sample_seed}). Warm: the same command "
        "again (the stamp makes it a no-op). One pin changed: one generated module gets a set no other "
        "module has."
    )
    return result
