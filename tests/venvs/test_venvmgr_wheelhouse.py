"""The wheelhouse (controller side) and extract-uv (host side)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from venvmgr.download import DownloadError, layers, wheel_name_and_version
from venvmgr.targets import Target
from venvmgr.wheelhouse import STAMP_FILENAME, wheelhouse_key
from venvmgr_testkit import WHEELHOUSE_CACHE, run_manager, wheelhouse_tree, write_module


def test_pip_platforms_cover_every_older_manylinux() -> None:
    platforms = Target.parse("3.13", "x86_64-manylinux_2_28").pip_platforms()
    assert platforms[0] == "manylinux_2_28_x86_64"
    assert {
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux2010_x86_64",
        "manylinux1_x86_64",
    } <= set(platforms)
    assert "manylinux_2_29_x86_64" not in platforms
    assert Target.parse("3.11.2", "aarch64-manylinux_2_36").pip_platforms()[0] == "manylinux_2_36_aarch64"


def test_conflicting_pins_go_to_separate_pip_calls() -> None:
    assert layers({"packaging": {"24.2", "23.2"}, "six": {"1.17.0"}, "idna": {"3.10"}}) == [
        {"idna": "3.10", "packaging": "23.2", "six": "1.17.0"},
        {"packaging": "24.2"},
    ]
    assert layers({}) == []


def test_wheel_file_names_parse() -> None:
    assert wheel_name_and_version("MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.whl") == (
        "markupsafe",
        "3.0.2",
    )
    assert wheel_name_and_version("python_dateutil-2.9.0.post0-py2.py3-none-any.whl") == (
        "python-dateutil",
        "2.9.0.post0",
    )
    with pytest.raises(DownloadError):
        wheel_name_and_version("packaging-24.2.tar.gz")


def test_key_covers_sets_and_target() -> None:
    sets = {("packaging==24.2",): ["backend/a-001"]}
    target = Target.parse("3.13", "x86_64-manylinux_2_28")
    key = wheelhouse_key(sets, target, "0.13.9")
    assert key == wheelhouse_key({("packaging==24.2",): ["frontend/ui-004"]}, target, "0.13.9")
    assert key != wheelhouse_key({("packaging==23.2",): ["backend/a-001"]}, target, "0.13.9")
    assert key != wheelhouse_key(sets, Target.parse("3.11.2", "x86_64-manylinux_2_28"), "0.13.9")
    assert key != wheelhouse_key(sets, target, "0.14.0")


def test_wheelhouse_holds_both_conflicting_pins_and_uv(wheelhouse: Path) -> None:
    names = {wheel_name_and_version(path.name) for path in wheelhouse.glob("*.whl")}
    assert {("packaging", "23.2"), ("packaging", "24.2"), ("six", "1.16.0"), ("six", "1.17.0")} <= names
    assert any(name == "uv" for name, _ in names)
    assert any(name == "redis" for name, _ in names) and any(name == "psycopg2-binary" for name, _ in names)
    stamp = json.loads((wheelhouse / STAMP_FILENAME).read_text())
    assert sorted(stamp["wheels"]) == sorted(path.name for path in wheelhouse.glob("*.whl"))


def test_unchanged_wheelhouse_is_a_fast_no_op(wheelhouse: Path, tmp_path: Path) -> None:
    stamp = json.loads((wheelhouse / STAMP_FILENAME).read_text())
    tree = wheelhouse_tree(tmp_path / "services")  # the tree the session's wheelhouse came from
    started = time.monotonic()
    report, exit_code, _ = run_manager(
        "wheelhouse",
        "--services-dir",
        tree,
        "--out",
        WHEELHOUSE_CACHE,
        "--python-version",
        stamp["python_version"],
        "--platform",
        stamp["platform"],
        python=sys.executable,
    )
    elapsed = time.monotonic() - started
    assert exit_code == 0
    assert report["up_to_date"] is True and report["changed"] is False
    assert report["key"] == stamp["key"] and report["added"] == report["removed"] == []
    assert elapsed < 10, f"no-op wheelhouse took {elapsed:.1f} s"


def test_unresolvable_set_is_reported_and_the_rest_downloaded(tmp_path: Path) -> None:
    services = tmp_path / "services"
    write_module(services, "backend/a-001", ["six==1.17.0"])
    write_module(services, "backend/a-002", ["six==1.17.0"])
    write_module(services, "backend/a-003", ["packaging==99.0"])
    out = tmp_path / "wheelhouse"
    out.mkdir()
    (out / "stale-1.0-py3-none-any.whl").write_bytes(b"")

    report, exit_code, _ = run_manager(
        "wheelhouse",
        "--services-dir",
        services,
        "--out",
        out,
        "--python-version",
        "3.13",
        python=sys.executable,
    )

    assert exit_code == 1
    assert [failure["venvs"] for failure in report["failed"]] == [["backend/a-003"]]
    assert "packaging==99.0" in report["failed"][0]["error"]
    assert report["requirement_sets"] == 2  # a-001 and a-002 share one set
    names = sorted(wheel_name_and_version(name)[0] for name in report["wheels"])
    assert names == ["six", "uv"]
    assert sorted(path.name for path in out.glob("*.whl")) == sorted(report["wheels"])
    assert report["removed"] == ["stale-1.0-py3-none-any.whl"]
    assert not (out / STAMP_FILENAME).exists()  # so the next run tries the failed set again


def test_extract_uv_is_idempotent_and_gives_a_working_uv(wheelhouse: Path, uv_binary: Path) -> None:
    report, exit_code, _ = run_manager("extract-uv", "--wheelhouse", wheelhouse, "--dest", uv_binary)
    assert exit_code == 0 and report["changed"] is False
    stamp = json.loads((wheelhouse / STAMP_FILENAME).read_text())
    version = subprocess.run([str(uv_binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(f"uv {stamp['uv_version']}")
    assert uv_binary.stat().st_mode & 0o777 == 0o755
