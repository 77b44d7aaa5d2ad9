"""The synthetic module generator: deterministic, realistic requirement sets, valid module trees."""

import re
import subprocess
import sys
from pathlib import Path

from generate_modules import REALISTIC_POOL, REQUIREMENT_POOL, generate
from venvmgr.discovery import discover, read_requirements
from venvmgr_testkit import GENERATOR


def tree_contents(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_same_seed_gives_identical_trees(tmp_path: Path) -> None:
    generate(tmp_path / "one", 30, ["backend", "frontend"], seed=7)
    generate(tmp_path / "two", 30, ["backend", "frontend"], seed=7)
    generate(tmp_path / "other", 30, ["backend", "frontend"], seed=8)
    assert tree_contents(tmp_path / "one") == tree_contents(tmp_path / "two")
    assert tree_contents(tmp_path / "one") != tree_contents(tmp_path / "other")


def test_tree_is_a_valid_services_tree_with_shared_and_varied_requirements(tmp_path: Path) -> None:
    summary = generate(tmp_path, 60, ["backend", "frontend", "infrastructure"], seed=0)
    modules = [spec for spec in discover(tmp_path) if spec.kind == "module"]
    assert len(modules) == 60 == summary["count"]
    assert {spec.service for spec in modules} == {"backend", "frontend", "infrastructure"}
    assert modules[0].module == "gen-0001"
    sets = [read_requirements(spec.requirements_file) for spec in modules]
    distinct = set(sets)
    assert len(distinct) >= 5 and len(distinct) == summary["requirement_sets"]
    assert len(distinct) < len(sets)  # sets are shared between modules
    assert {("packaging==24.2",), ("packaging==23.2",)} <= distinct  # conflicting pins included
    assert distinct <= {tuple(sorted(pins)) for _, pins in REQUIREMENT_POOL}
    for service in ("backend", "frontend", "infrastructure"):
        assert (tmp_path / service / "_shared" / "output.py").is_file()


def test_generated_module_runs_and_checks_its_pins(tmp_path: Path) -> None:
    generate(tmp_path, 3, ["backend"], seed=0)
    app = tmp_path / "backend" / "gen-0001" / "app.py"
    # A venv that does not hold the pinned version must make the module fail, not lie.
    source = re.sub(r"(?m)^PINNED = .*$", "PINNED = {'pytest': ('pytest', '0.0.1')}", app.read_text())
    app.write_text(source)
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=app.parent,
        env={"PYTHONPATH": str(tmp_path / "backend")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "pytest is" in result.stderr and "0.0.1 is pinned" in result.stderr


def test_smaller_count_removes_the_extra_generated_modules(tmp_path: Path) -> None:
    generate(tmp_path, 10, ["backend"], seed=1)
    (tmp_path / "backend" / "a-001").mkdir()  # not generated: must survive
    generate(tmp_path, 4, ["backend"], seed=1)
    assert sorted(path.name for path in (tmp_path / "backend").iterdir()) == [
        "_shared",
        "a-001",
        "gen-0001",
        "gen-0002",
        "gen-0003",
        "gen-0004",
    ]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    for arguments in (["--count", "0"], ["--count", "5", "--services", "Back End"], ["--count", "x"]):
        result = subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(tmp_path / "out"), *arguments],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, arguments
        assert "error:" in result.stderr
    assert not (tmp_path / "out").exists()


def test_realistic_mode_draws_exactly_n_distinct_sets_from_the_larger_pool(tmp_path: Path) -> None:
    summary = generate(
        tmp_path / "one", 400, ["backend", "frontend", "infrastructure"], seed=0, distinct_sets=250
    )
    generate(tmp_path / "two", 400, ["backend", "frontend", "infrastructure"], seed=0, distinct_sets=250)
    assert tree_contents(tmp_path / "one") == tree_contents(tmp_path / "two")
    modules = [spec for spec in discover(tmp_path / "one") if spec.kind == "module"]
    sets = [read_requirements(spec.requirements_file) for spec in modules]
    assert len(modules) == 400 and len(set(sets)) == 250 == summary["requirement_sets"]
    assert all(1 <= len(pins) <= 3 for pins in sets)
    pool = {f"{name}=={version}" for name, (_, versions) in REALISTIC_POOL.items() for version in versions}
    assert {pin for pins in sets for pin in pins} <= pool
    versions: dict[str, set[str]] = {}
    for pins in sets:
        names = [pin.partition("==")[0] for pin in pins]
        assert len(names) == len(set(names))  # one version of a package per set
        for pin in pins:
            name, _, version = pin.partition("==")
            versions.setdefault(name, set()).add(version)
    assert len([name for name, seen in versions.items() if len(seen) > 1]) >= 20  # conflicting pins
    assert {"requests", "rich", "anyio"} <= set(versions)  # packages that bring dependencies
    assert summary["distinct_packages"] == len(versions) > 40


def test_realistic_mode_refuses_more_sets_than_modules(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path), "--count", "5", "--distinct-sets", "6"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "cannot exceed --count" in result.stderr
    assert not tmp_path.joinpath("backend").exists()
