"""The wheelhouse (controller side) and extract-uv (host side)."""

import fcntl
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from venvmgr.wheelhouse import (
    STAMP_FILENAME,
    DownloadError,
    ResolveError,
    Target,
    Wheel,
    compose,
    parse_lock,
    set_key,
    wheel_name_and_version,
    wheelhouse_key,
)
from venvmgr_testkit import WHEELHOUSE_CACHE, run_manager, run_wheelhouse, wheelhouse_tree, write_module


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


SHA = "0" * 64
# The shape of uv's pylock.toml (as `uv pip compile --format pylock.toml` writes it for a target
# where two wheels of charset-normalizer fit).
LOCK = """lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "charset-normalizer"
version = "3.4.0"

[[packages.wheels]]
url = "https://example.org/p/charset_normalizer-3.4.0-py3-none-any.whl"
size = 1
hashes = { sha256 = "SHA" }

[[packages.wheels]]
url = "https://example.org/p/charset_normalizer-3.4.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
size = 2
hashes = { sha256 = "SHA" }

[[packages]]
name = "six"
version = "1.17.0"
wheels = [{ url = "https://example.org/six-1.17.0-py2.py3-none-any.whl", size = 3, hashes = {sha256 = "SHA"}}]
""".replace("SHA", SHA)


def test_lock_gives_one_wheel_per_package_the_most_specific_one() -> None:
    wheels = parse_lock(LOCK, Target.parse("3.13.5", "x86_64-manylinux_2_28"))
    assert [wheel.filename for wheel in wheels] == [
        "charset_normalizer-3.4.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "six-1.17.0-py2.py3-none-any.whl",
    ]
    assert wheels[1] == Wheel("six-1.17.0-py2.py3-none-any.whl", wheels[1].url, SHA, 3)
    with pytest.raises(ResolveError, match="not a wheel"):
        parse_lock(
            LOCK.replace("six-1.17.0-py2.py3-none-any.whl", "six-1.17.0.tar.gz"),
            Target.parse("3.13", "x86_64-manylinux_2_28"),
        )


def test_a_set_is_the_union_of_its_requirements_closures_only_when_they_agree() -> None:
    def wheel(filename: str) -> Wheel:
        return Wheel(filename, f"https://example.org/{filename}", SHA, 1)

    dateutil = [
        wheel("python_dateutil-2.9.0.post0-py2.py3-none-any.whl"),
        wheel("six-1.17.0-py2.py3-none-any.whl"),
    ]
    six_new, six_old = [wheel("six-1.17.0-py2.py3-none-any.whl")], [wheel("six-1.16.0-py2.py3-none-any.whl")]
    packaging = [wheel("packaging-24.2-py3-none-any.whl")]
    assert compose([dateutil, six_new, packaging]) == sorted(
        [*dateutil, *packaging], key=lambda wheel: wheel.filename
    )
    assert compose([dateutil, six_old]) is None  # six at two versions: uv must resolve the set


def test_set_key_covers_the_set_and_the_target() -> None:
    target = Target.parse("3.13.5", "x86_64-manylinux_2_28")
    key = set_key(("six==1.17.0",), target)
    assert key == set_key(("six==1.17.0",), Target.parse("3.13.5", "x86_64-manylinux_2_28"))
    assert key != set_key(("six==1.16.0",), target)
    assert key != set_key(("six==1.17.0",), Target.parse("3.11.2", "x86_64-manylinux_2_28"))
    assert key != set_key(("six==1.17.0",), Target.parse("3.13.5", "aarch64-manylinux_2_28"))


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
    report, exit_code, _ = run_wheelhouse(
        tree, WHEELHOUSE_CACHE, stamp["python_version"], "--platform", stamp["platform"]
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

    report, exit_code, _ = run_wheelhouse(services, out, "3.13")

    assert exit_code == 1
    assert [failure["venvs"] for failure in report["failed"]] == [["backend/a-003"]]
    assert "packaging==99.0" in report["failed"][0]["error"]
    assert report["requirement_sets"] == 2  # a-001 and a-002 share one set
    assert "backend/a-003" in report["failed"][0]["error"]  # the message names the modules too
    names = sorted(wheel_name_and_version(name)[0] for name in report["wheels"])
    assert names == ["six", "uv"]
    assert sorted(path.name for path in out.glob("*.whl")) == sorted(report["wheels"])
    assert report["removed"] == ["stale-1.0-py3-none-any.whl"]
    stamp = json.loads((out / STAMP_FILENAME).read_text())
    assert stamp["key"] is None  # so the next run is no no-op: it tries the failed set again...
    assert sorted(entry["requirements"] for entry in stamp["sets"].values()) == [
        ["six==1.17.0"],
        [f"uv=={report['uv_version']}"],
    ]

    again, exit_code, _ = run_wheelhouse(services, out, "3.13")
    assert exit_code == 1 and again["up_to_date"] is False
    assert again["resolved_sets"] == 1 and again["reused_sets"] == 1  # ...and only that one
    assert [failure["venvs"] for failure in again["failed"]] == [["backend/a-003"]]
    assert again["added"] == again["removed"] == []


def test_a_changed_set_costs_only_itself(tmp_path: Path) -> None:
    """Per-set reuse across runs: one module's pin changes, only its set is resolved and fetched."""
    services = tmp_path / "services"
    write_module(services, "backend/a-001", ["six==1.17.0"])
    write_module(services, "backend/a-002", ["packaging==24.2"])
    write_module(services, "frontend/b-001", ["packaging==23.2", "six==1.16.0"])
    out, cache = tmp_path / "wheelhouse", tmp_path / "uv-cache"
    arguments = (services, out, "3.13.5", "--cache-dir", cache)

    first, exit_code, stderr = run_wheelhouse(*arguments)
    assert exit_code == 0, stderr
    assert (first["requirement_sets"], first["resolved_sets"], first["reused_sets"]) == (3, 3, 0)
    pins = {wheel_name_and_version(name) for name in first["wheels"]}
    assert {("packaging", "23.2"), ("packaging", "24.2"), ("six", "1.16.0"), ("six", "1.17.0")} <= pins
    assert (cache / "simple-v16").is_dir() or any(cache.iterdir())  # uv used the cache it was given

    write_module(services, "backend/a-002", ["packaging==24.1"])
    second, exit_code, stderr = run_wheelhouse(*arguments)
    assert exit_code == 0, stderr
    assert (second["resolved_sets"], second["reused_sets"]) == (1, 2)
    assert second["added"] == ["packaging-24.1-py3-none-any.whl"]
    assert second["removed"] == ["packaging-24.2-py3-none-any.whl"]

    third, exit_code, _ = run_wheelhouse(*arguments)
    assert exit_code == 0 and third["up_to_date"] is True and third["resolved_sets"] == 0


def test_extract_uv_is_idempotent_and_gives_a_working_uv(wheelhouse: Path, uv_binary: Path) -> None:
    report, exit_code, _ = run_manager("extract-uv", "--wheelhouse", wheelhouse, "--dest", uv_binary)
    assert exit_code == 0 and report["changed"] is False
    stamp = json.loads((wheelhouse / STAMP_FILENAME).read_text())
    version = subprocess.run([str(uv_binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(f"uv {stamp['uv_version']}")
    assert uv_binary.stat().st_mode & 0o777 == 0o755


def test_sets_are_composed_from_their_requirements_unless_they_conflict(tmp_path: Path) -> None:
    """Real uv and PyPI: a set of requirements seen alone costs no uv call, unless closures clash."""
    services = tmp_path / "services"
    write_module(services, "backend/a-001", ["six==1.17.0"])
    write_module(services, "backend/a-002", ["packaging==24.2"])
    write_module(services, "backend/a-003", ["packaging==24.2", "six==1.17.0"])
    # python-dateutil alone resolves six to its newest release; pinned with six 1.16.0 it cannot
    # be the union of the two closures, so uv resolves it.
    write_module(services, "backend/a-004", ["python-dateutil==2.9.0.post0", "six==1.16.0"])
    out = tmp_path / "wheelhouse"
    report, exit_code, stderr = run_wheelhouse(services, out, "3.13.5", "--cache-dir", tmp_path / "uv-cache")
    assert exit_code == 0, stderr
    assert report["requirement_sets"] == 4 and report["resolved_sets"] == 4
    # a-003 is composed. a-004 is too if python-dateutil alone was answered from a cache holding
    # six 1.16.0 only (offline answers pick among what the run fetched), else uv resolves it:
    # either way its wheels are a valid resolution, checked below.
    assert report["composed_sets"] in (1, 2)
    # Each requirement alone (six 1.17.0, six 1.16.0, packaging, python-dateutil, uv), one batch
    # warming the cache, maybe a-004, and a few calls that the cache could not answer offline.
    assert 6 <= report["uv_calls"] <= 12
    stamp = json.loads((out / STAMP_FILENAME).read_text())
    by_set = {tuple(entry["requirements"]): entry["wheels"] for entry in stamp["sets"].values()}
    conflicting = {
        wheel_name_and_version(wheel["filename"])
        for wheel in by_set[("python-dateutil==2.9.0.post0", "six==1.16.0")]
    }
    assert conflicting == {("python-dateutil", "2.9.0.post0"), ("six", "1.16.0")}
    composed = {
        wheel_name_and_version(wheel["filename"]) for wheel in by_set[("packaging==24.2", "six==1.17.0")]
    }
    assert composed == {("packaging", "24.2"), ("six", "1.17.0")}
    assert {("six", "1.16.0"), ("six", "1.17.0")} <= {
        wheel_name_and_version(name) for name in report["wheels"]
    }


def test_a_second_build_of_the_same_folder_waits_for_the_first(wheelhouse: Path, tmp_path: Path) -> None:
    """site.yml starts the wheelhouse early in the background; the app role's own build must wait
    for it (the lock beside the folder) and then find the folder up to date."""
    stamp = json.loads((wheelhouse / STAMP_FILENAME).read_text())
    tree = wheelhouse_tree(tmp_path / "services")
    result: list[tuple[dict[str, Any], int, str]] = []
    with open(wheelhouse.parent / f"{wheelhouse.name}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the first build, still running
        second = threading.Thread(
            target=lambda: result.append(
                run_wheelhouse(tree, wheelhouse, stamp["python_version"], "--platform", stamp["platform"])
            )
        )
        second.start()
        deadline = time.monotonic() + 30
        # /proc/locks lists a process blocked on a lock as "N: -> FLOCK ADVISORY WRITE pid
        # major:minor:inode start end": wait for one blocked on this lock file.
        inode = f":{os.fstat(held.fileno()).st_ino} "
        while not any(
            "->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()
        ):
            assert second.is_alive(), f"the second build did not wait for the lock: {result}"
            assert time.monotonic() < deadline, "the second build never reached the lock"
            time.sleep(0.05)
        assert second.is_alive()
        fcntl.flock(held, fcntl.LOCK_UN)
    second.join(timeout=60)
    (report, exit_code, stderr) = result[0]
    assert exit_code == 0, stderr
    assert report["up_to_date"] is True
