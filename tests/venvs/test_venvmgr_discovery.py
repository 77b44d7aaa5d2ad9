"""Finding modules and services in a services tree."""

from pathlib import Path

import pytest
from venvmgr.discovery import (
    VenvManagerError,
    discover,
    is_valid_key,
    read_requirements,
    venv_path_for_key,
    venvs_on_disk,
)
from venvmgr_testkit import SAMPLE_SERVICES, SERVICES, write_module


def test_modules_and_services_are_found_in_stable_order(tmp_path: Path) -> None:
    write_module(tmp_path, "frontend/ui-001")
    write_module(tmp_path, "backend/b-010", ["packaging==24.2"])
    write_module(tmp_path, "backend/a-002")
    (tmp_path / "backend" / "requirements.txt").write_text("flask==3.1.3\n")

    specs = discover(tmp_path)

    assert [spec.key for spec in specs] == [
        "backend",
        "backend/a-002",
        "backend/b-010",
        "frontend",
        "frontend/ui-001",
    ]
    by_key = {spec.key: spec for spec in specs}
    assert by_key["backend"].kind == "service"
    assert by_key["backend"].requirements_file == tmp_path / "backend" / "requirements.txt"
    assert by_key["frontend"].requirements_file is None  # a service without its own requirements
    assert by_key["backend/b-010"].kind == "module"
    assert by_key["backend/b-010"].source == tmp_path / "backend" / "b-010"
    assert by_key["backend/a-002"].requirements_file is None


def test_non_module_folders_are_ignored(tmp_path: Path) -> None:
    write_module(tmp_path, "backend/a-001")
    package = tmp_path / "backend" / "barestack_backend"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("")  # the service's Flask app is a package, not a module
    (tmp_path / "backend" / "migrations").mkdir()
    (tmp_path / "backend" / "_shared").mkdir()
    (tmp_path / "tools").mkdir()  # no modules and no requirements: not a service
    (tmp_path / "tools" / "venv_manager.py").write_text("")
    (tmp_path / ".hidden" / "a-001").mkdir(parents=True)

    assert [spec.key for spec in discover(tmp_path)] == ["backend", "backend/a-001"]


@pytest.mark.parametrize("bad_name", ["A-001", "a-01", "a_001", "report"])
def test_misnamed_module_folder_is_an_error(tmp_path: Path, bad_name: str) -> None:
    write_module(tmp_path, "backend/a-001")
    write_module(tmp_path, f"backend/{bad_name}")
    with pytest.raises(VenvManagerError, match=f"bad module name '{bad_name}'"):
        discover(tmp_path)


def test_module_folder_without_app_py_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "backend" / "a-003").mkdir(parents=True)
    with pytest.raises(VenvManagerError, match=r"a-003 has no app\.py"):
        discover(tmp_path)


def test_bad_service_name_is_an_error(tmp_path: Path) -> None:
    write_module(tmp_path, "Back-End/a-001")
    with pytest.raises(VenvManagerError, match="bad service name 'Back-End'"):
        discover(tmp_path)


def test_missing_services_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(VenvManagerError, match="does not exist"):
        discover(tmp_path / "nope")


def test_keys_and_venv_paths() -> None:
    assert is_valid_key("backend/a-001") and is_valid_key("backend")
    for bad in ("../etc", "backend/../x", "backend/a-1", "", "backend/", "/backend"):
        assert not is_valid_key(bad), bad
    venvs = Path("/srv/venvs")
    assert venv_path_for_key(venvs, "backend/a-001") == venvs / "backend" / "a-001"
    assert venv_path_for_key(venvs, "backend") == venvs / "backend" / "_service"


def test_venvs_on_disk_lists_only_venv_folders(tmp_path: Path) -> None:
    for folder in (
        "backend/a-001",
        "backend/_service",
        "backend/.tmp-a-002-1",
        "frontend/ui-001",
        ".uv-cache/x",
    ):
        (tmp_path / folder).mkdir(parents=True)
    assert venvs_on_disk(tmp_path) == {"backend/a-001", "backend", "frontend/ui-001"}
    assert venvs_on_disk(tmp_path / "absent") == set()


def test_repository_sample_modules_are_valid() -> None:
    """The repo's own tree: at least 8 sample modules over the three services, all parseable."""
    specs = discover(SERVICES)
    modules = [spec for spec in specs if spec.kind == "module"]
    assert {spec.service for spec in modules} == set(SAMPLE_SERVICES)
    assert len(modules) >= 8
    for spec in specs:
        read_requirements(spec.requirements_file)  # raises on a line the host could not install
    assert "tools" not in {spec.service for spec in specs}
    packaging_pins = {
        requirement
        for spec in modules
        for requirement in read_requirements(spec.requirements_file)
        if requirement.startswith("packaging==")
    }
    assert len(packaging_pins) >= 2, "two sample modules must pin conflicting packaging versions"
