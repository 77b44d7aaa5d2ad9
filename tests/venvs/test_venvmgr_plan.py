"""What a run decides to create, update, remove or leave alone, from hashes and the mapping only."""

from pathlib import Path
from typing import Any

import pytest
from venvmgr.discovery import VenvManagerError, discover
from venvmgr.plan import CREATE, INVALID, UNCHANGED, UPDATE, make_plan, venv_hash
from venvmgr_testkit import write_module

PYTHON = "3.13.5"


def venv_dir(path: Path) -> Path:
    """The two files the planner checks for a usable venv (it never runs anything in it)."""
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return path


def entry(venvs: Path, key: str, requirements: tuple[str, ...], python: str = PYTHON) -> dict[str, Any]:
    service, _, module = key.partition("/")
    return {"venv": str(venvs / service / (module or "_service")), "hash": venv_hash(requirements, python)}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    services, venvs = tmp_path / "services", tmp_path / "venvs"
    write_module(services, "backend/a-001", ["packaging==24.2"])
    write_module(services, "backend/a-002", ["packaging==23.2"])
    return services, venvs


def actions(plan: Any) -> dict[str, str]:
    return {planned.key: planned.action for planned in plan.venvs}


def test_first_run_creates_everything(tree: tuple[Path, Path]) -> None:
    services, venvs = tree
    plan = make_plan(discover(services), {}, venvs, PYTHON)
    assert actions(plan) == {"backend": CREATE, "backend/a-001": CREATE, "backend/a-002": CREATE}
    assert plan.removals == []


def test_unchanged_updated_missing_and_removed(tree: tuple[Path, Path]) -> None:
    services, venvs = tree
    for key in ("backend", "backend/a-001", "backend/a-002", "backend/a-003"):
        venv_dir(Path(entry(venvs, key, ())["venv"]))
    previous = {
        "backend": entry(venvs, "backend", ()),
        "backend/a-001": entry(venvs, "backend/a-001", ("packaging==24.2",)),
        "backend/a-002": entry(venvs, "backend/a-002", ("packaging==22.0",)),  # pin changed since
        "backend/a-003": entry(venvs, "backend/a-003", ()),  # module deleted since
    }
    venv_dir(venvs / "frontend" / "ui-007")  # an orphan venv nothing maps any more

    plan = make_plan(discover(services), previous, venvs, PYTHON)

    assert actions(plan) == {"backend": UNCHANGED, "backend/a-001": UNCHANGED, "backend/a-002": UPDATE}
    assert plan.removals == ["backend/a-003", "frontend/ui-007"]

    # A venv deleted by hand is rebuilt although the mapping still lists it.
    (venvs / "backend" / "a-001" / "bin" / "python").unlink()
    assert actions(make_plan(discover(services), previous, venvs, PYTHON))["backend/a-001"] == CREATE


def test_new_python_version_updates_every_venv(tree: tuple[Path, Path]) -> None:
    services, venvs = tree
    (services / "backend" / "a-002" / "requirements.txt").unlink()
    built_with = {"backend": (), "backend/a-001": ("packaging==24.2",), "backend/a-002": ()}
    previous = {key: entry(venvs, key, requirements) for key, requirements in built_with.items()}
    for key in previous:
        venv_dir(Path(previous[key]["venv"]))
    assert set(actions(make_plan(discover(services), previous, venvs, PYTHON)).values()) == {UNCHANGED}
    assert set(actions(make_plan(discover(services), previous, venvs, "3.13.6")).values()) == {UPDATE}


def test_bad_requirements_fail_that_venv_alone(tree: tuple[Path, Path]) -> None:
    services, venvs = tree
    (services / "backend" / "a-002" / "requirements.txt").write_text("--extra-index-url http://x\n")
    plan = make_plan(discover(services), {}, venvs, PYTHON)
    assert actions(plan) == {"backend": CREATE, "backend/a-001": CREATE, "backend/a-002": INVALID}
    invalid = plan.with_action(INVALID)[0]
    assert "requirements.txt line 1" in invalid.error and "--extra-index-url" in invalid.error


def test_only_limits_the_plan(tree: tuple[Path, Path]) -> None:
    services, venvs = tree
    previous = {"backend/a-009": entry(venvs, "backend/a-009", ())}
    plan = make_plan(discover(services), previous, venvs, PYTHON, only=["backend/a-002"])
    assert actions(plan) == {"backend/a-002": CREATE}
    assert plan.removals == []  # a-009 is gone but was not selected
    plan = make_plan(discover(services), previous, venvs, PYTHON, only=["backend/a-009"])
    assert actions(plan) == {} and plan.removals == ["backend/a-009"]
    with pytest.raises(VenvManagerError, match="unknown venvs: backend/x-404"):
        make_plan(discover(services), previous, venvs, PYTHON, only=["backend/x-404"])
