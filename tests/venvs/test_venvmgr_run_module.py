"""run_module.sh: the right venv, cwd, PYTHONPATH and settings, and exit 2 with one clear line otherwise."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from venvmgr_testkit import RUN_MODULE, SERVICES, Layout, make_layout, write_module

LIBRARY = SERVICES / "_lib"

INSPECT_APP = """
import json, os, sys
from barestack_common.module import EXIT_BAD_INPUT
from helpers.greeting import GREETING
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "prefix": sys.prefix, "greeting": GREETING,
    "exit_bad_input": EXIT_BAD_INPUT,
    "pythonpath": os.environ.get("PYTHONPATH"), "module": os.environ.get("BARESTACK_MODULE"),
    "setting": os.environ.get("BARESTACK_TEST_SETTING"),
}))
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""


@pytest.fixture(scope="module")
def layout(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, uv_binary: Path, uv_cache: Path
) -> Layout:
    root = tmp_path_factory.mktemp("run-module")
    services = root / "services"
    write_module(services, "backend/a-001", app=INSPECT_APP)
    (services / "backend" / "a-001" / "other.py").write_text("import sys; print('other', *sys.argv[1:])\n")
    # A package of the service folder, and the real shared library beside it as on a host.
    (services / "backend" / "helpers").mkdir()
    (services / "backend" / "helpers" / "__init__.py").write_text("")
    greeting = "GREETING = 'hello from the service folder'\n"
    (services / "backend" / "helpers" / "greeting.py").write_text(greeting)
    shutil.copytree(LIBRARY, services / "_lib", ignore=shutil.ignore_patterns("__pycache__"))
    write_module(services, "frontend/ui-001", app="print('ui')\n")
    built = make_layout(root, services, wheelhouse, uv_binary, uv_cache)
    _, exit_code, stderr = built.build()
    assert exit_code == 0, stderr
    return built


def run(layout: Layout, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUN_MODULE), *arguments],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "BARESTACK_VENV_MAPPING": str(layout.mapping), **environment},
        timeout=60,
        check=False,
    )


def test_module_runs_in_its_venv_and_folder_with_shared_importable(layout: Layout, tmp_path: Path) -> None:
    settings = tmp_path / "barestack.env"
    settings.write_text("BARESTACK_TEST_SETTING='from the env file'\n# a comment\n")
    result = run(layout, "backend/a-001", "app.py", "one", "two words", BARESTACK_ENV_FILE=str(settings))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    module_dir = layout.services / "backend" / "a-001"
    assert seen["argv"] == ["app.py", "one", "two words"]
    assert seen["cwd"] == str(module_dir)
    assert seen["prefix"] == str(layout.venvs / "backend" / "a-001")
    assert seen["pythonpath"] == f"{layout.services / 'backend'}:{layout.services / '_lib'}"
    assert seen["greeting"] == "hello from the service folder"
    assert seen["exit_bad_input"] == 2  # barestack_common.module, from services/_lib
    assert seen["module"] == "backend/a-001"
    assert seen["setting"] == "from the env file"


def test_script_defaults_to_app_py_and_another_script_can_be_named(layout: Layout) -> None:
    assert json.loads(run(layout, "backend/a-001").stdout)["argv"] == ["app.py"]
    other = run(layout, "backend/a-001", "other.py", "x")
    assert other.returncode == 0 and other.stdout == "other x\n"


def test_env_file_that_is_missing_is_skipped(layout: Layout, tmp_path: Path) -> None:
    result = run(layout, "backend/a-001", BARESTACK_ENV_FILE=str(tmp_path / "absent.env"))
    assert result.returncode == 0 and json.loads(result.stdout)["setting"] is None


def test_module_exit_code_is_passed_through(layout: Layout) -> None:
    assert run(layout, "backend/a-001", EXIT_WITH="7").returncode == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "usage: run_module.sh <service>/<module> [script] [args...]"),
        (["backend/x-999"], "run_module.sh: unknown module 'backend/x-999' (not in {mapping})"),
        (["backend"], "run_module.sh: invalid module name 'backend'"),
        (["../etc/a-001"], "run_module.sh: invalid module name '../etc/a-001'"),
        (["backend/a-001", "missing.py"], "run_module.sh: no script 'missing.py' in"),
    ],
)
def test_usage_errors_exit_2_with_one_line(layout: Layout, arguments: list[str], message: str) -> None:
    result = run(layout, *arguments)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message.format(mapping=layout.mapping))


def test_missing_mapping_or_venv_is_a_clear_error(layout: Layout, tmp_path: Path) -> None:
    missing = subprocess.run(
        [str(RUN_MODULE), "backend/a-001"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "BARESTACK_VENV_MAPPING": str(tmp_path / "none.json")},
        check=False,
    )
    assert missing.returncode == 2 and "venv mapping" in missing.stderr and "not found" in missing.stderr

    mapping = json.loads(layout.mapping.read_text())
    mapping["venvs"]["frontend/ui-001"]["venv"] = str(tmp_path / "deleted-venv")
    broken = tmp_path / "venv_mapping.json"
    broken.write_text(json.dumps(mapping))
    result = subprocess.run(
        [str(RUN_MODULE), "frontend/ui-001"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "BARESTACK_VENV_MAPPING": str(broken)},
        check=False,
    )
    assert result.returncode == 2 and "venv of 'frontend/ui-001' is missing" in result.stderr
