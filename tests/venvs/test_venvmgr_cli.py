"""The CLI's contract with the Ansible module: a JSON report always, exit 2 and no change on bad input."""

import os
import shutil
from pathlib import Path

import pytest
from venvmgr_testkit import TARGET_PYTHON, Layout, run_manager, run_wheelhouse, write_module

REPORT_KEYS = {
    "changed",
    "dry_run",
    "python",
    "created",
    "updated",
    "removed",
    "unchanged",
    "unchanged_count",
    "failed",
    "mapping",
    "mapping_changed",
    "diff",
}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    services = tmp_path / "services"
    write_module(services, "backend/a-001", ["packaging==24.2"])
    write_module(services, "frontend/ui-001")
    return Layout(
        services=services,
        venvs=tmp_path / "venvs",
        mapping=tmp_path / "shared" / "venv_mapping.json",
        wheelhouse=tmp_path / "wheelhouse",
        uv=Path(shutil.which("true") or "/bin/true"),  # never reached: these runs stop before building
        cache=tmp_path / "cache",
    )


def assert_nothing_written(layout: Layout) -> None:
    assert not layout.venvs.exists()
    assert not layout.mapping.exists()
    assert not layout.cache.exists()


def test_dry_run_plans_without_touching_anything(layout: Layout) -> None:
    report, exit_code, _ = layout.build("--dry-run")

    assert exit_code == 0
    assert set(report) >= REPORT_KEYS
    assert report["dry_run"] is True and report["changed"] is True and report["mapping_changed"] is True
    assert report["created"] == ["backend", "backend/a-001", "frontend", "frontend/ui-001"]
    assert report["updated"] == report["removed"] == report["unchanged"] == report["failed"] == []
    assert report["unchanged_count"] == 0
    assert report["diff"]["before"] == ""
    assert "backend/a-001 [python " in report["diff"]["after"]
    assert "packaging==24.2" in report["diff"]["after"]
    assert report["mapping"] == str(layout.mapping)
    assert_nothing_written(layout)


def test_dry_run_reports_a_broken_requirements_file_as_failed(layout: Layout) -> None:
    (layout.services / "frontend" / "ui-001" / "requirements.txt").write_text("-r ../other.txt\n")
    report, exit_code, _ = layout.build("--dry-run")
    assert exit_code == 1
    assert [failure["venv"] for failure in report["failed"]] == ["frontend/ui-001"]
    assert "frontend/ui-001: " in report["failed"][0]["error"]
    assert "option '-r' is not supported" in report["failed"][0]["error"]
    assert_nothing_written(layout)


def test_missing_wheelhouse_stops_before_any_change(layout: Layout) -> None:
    report, exit_code, stderr = layout.build()
    assert exit_code == 2
    assert report == {
        "changed": False,
        "failed": [],
        "error": f"wheelhouse {layout.wheelhouse} does not exist",
    }
    assert "wheelhouse" in stderr
    assert_nothing_written(layout)


def test_missing_uv_stops_before_any_change(layout: Layout) -> None:
    layout.wheelhouse.mkdir()
    report, exit_code, _ = layout.build("--uv", layout.venvs.parent / "no-such-uv")
    assert exit_code == 2
    assert "uv binary" in report["error"] and "not found" in report["error"]
    assert_nothing_written(layout)


def test_bad_module_name_stops_before_any_change(layout: Layout) -> None:
    layout.wheelhouse.mkdir()
    write_module(layout.services, "backend/Report-1")
    report, exit_code, _ = layout.build()
    assert exit_code == 2
    assert "bad module name 'Report-1'" in report["error"]
    assert_nothing_written(layout)


def test_corrupt_mapping_is_left_as_is(layout: Layout) -> None:
    layout.wheelhouse.mkdir()
    layout.mapping.parent.mkdir(parents=True)
    layout.mapping.write_text("{truncated")
    report, exit_code, _ = layout.build()
    assert exit_code == 2
    assert "not valid JSON" in report["error"]
    assert layout.mapping.read_text() == "{truncated"
    assert not layout.venvs.exists()


def test_bad_python_is_a_clear_error(layout: Layout) -> None:
    report, exit_code, _ = layout.build("--python", "/nonexistent/python3")
    assert exit_code == 2
    assert "/nonexistent/python3" in report["error"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--only", "backend/../../etc"], "is not a venv key"),
        (["--only", "backend/a-404"], "--only names unknown venvs: backend/a-404"),
        (["--jobs", "0"], "is not a positive integer"),
    ],
)
def test_bad_arguments_give_a_json_error(layout: Layout, arguments: list[str], message: str) -> None:
    report, exit_code, _ = layout.build("--dry-run", *arguments)
    assert exit_code == 2
    assert message in report["error"]
    assert report["changed"] is False


def test_build_is_the_default_command(layout: Layout) -> None:
    report, exit_code, _ = run_manager(
        "--services-dir",
        layout.services,
        "--venvs-dir",
        layout.venvs,
        "--mapping",
        layout.mapping,
        "--wheelhouse",
        layout.wheelhouse,
        "--python",
        TARGET_PYTHON,
        "--dry-run",
    )
    assert exit_code == 0 and report["dry_run"] is True


def test_wheelhouse_and_extract_uv_refuse_bad_input(tmp_path: Path) -> None:
    report, exit_code, _ = run_wheelhouse(tmp_path, tmp_path / "wh", "3.13", "--platform", "win_amd64")
    assert exit_code == 2 and "bad --platform 'win_amd64'" in report["error"]
    report, exit_code, _ = run_wheelhouse(tmp_path, tmp_path / "wh", "13")
    assert exit_code == 2 and "bad --python-version '13'" in report["error"]
    assert not os.path.exists(tmp_path / "wh")

    report, exit_code, _ = run_manager(
        "extract-uv", "--wheelhouse", tmp_path / "none", "--dest", tmp_path / "uv"
    )
    assert exit_code == 2 and "does not exist" in report["error"]
    (tmp_path / "empty").mkdir()
    report, exit_code, _ = run_manager(
        "extract-uv", "--wheelhouse", tmp_path / "empty", "--dest", tmp_path / "uv"
    )
    assert exit_code == 2 and "expected exactly one uv wheel" in report["error"]
    assert not os.path.exists(tmp_path / "uv")


def test_wheelhouse_on_a_stdlib_only_python_names_what_is_missing(tmp_path: Path) -> None:
    """The host's python3 builds venvs with the stdlib only; the wheelhouse needs packaging."""
    report, exit_code, _ = run_manager(
        "wheelhouse", "--services-dir", tmp_path, "--out", tmp_path / "wh", "--python-version", "3.13"
    )
    assert exit_code == 2 and "needs 'packaging'" in report["error"], report
    assert report["changed"] is False and not os.path.exists(tmp_path / "wh")
