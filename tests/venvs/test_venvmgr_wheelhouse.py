"""The wheelhouse (controller side) and extract-uv (host side)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from venvmgr.targets import Target
from venvmgr.wheelhouse import (
    STAMP_FILENAME,
    DownloadError,
    ResolveError,
    Wheel,
    covering_sets,
    parse_lock,
    resolve_sets,
    set_key,
    wheel_name_and_version,
    wheelhouse_key,
)
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


def test_first_wave_names_every_requirement_once_and_the_rest_waits_for_the_cache() -> None:
    sets = [("a==1",), ("a==1", "b==1"), ("b==1",), ("b==2",), ("a==1", "b==2", "c==1")]
    first, rest = covering_sets(sets)
    assert first == [("a==1", "b==2", "c==1"), ("a==1", "b==1")]
    assert sorted(rest) == [("a==1",), ("b==1",), ("b==2",)]

    calls: list[tuple[tuple[str, ...], bool]] = []

    def resolve(requirements: tuple[str, ...], offline: bool) -> list[Wheel]:
        calls.append((requirements, offline))
        if requirements == ("b==2",) and offline:
            raise ResolveError("not in the cache")  # falls back to the index
        if requirements == ("a==1",):
            raise ResolveError("no such version")
        return []

    outcomes = resolve_sets(resolve, sets, jobs=1)
    assert set(outcomes) == set(sets)
    assert isinstance(outcomes[("a==1",)], ResolveError)
    assert [call for call in calls if call[0] in first] == [(requirements, False) for requirements in first]
    assert (("b==1",), True) in calls and (("b==1",), False) not in calls
    assert (("b==2",), True) in calls and (("b==2",), False) in calls


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

    again, exit_code, _ = run_manager(
        "wheelhouse",
        "--services-dir",
        services,
        "--out",
        out,
        "--python-version",
        "3.13",
        python=sys.executable,
    )
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
    arguments = ("wheelhouse", "--services-dir", services, "--out", out, "--python-version", "3.13.5",
                 "--cache-dir", cache)  # fmt: skip

    first, exit_code, stderr = run_manager(*arguments, python=sys.executable)
    assert exit_code == 0, stderr
    assert (first["requirement_sets"], first["resolved_sets"], first["reused_sets"]) == (3, 3, 0)
    pins = {wheel_name_and_version(name) for name in first["wheels"]}
    assert {("packaging", "23.2"), ("packaging", "24.2"), ("six", "1.16.0"), ("six", "1.17.0")} <= pins
    assert (cache / "simple-v16").is_dir() or any(cache.iterdir())  # uv used the cache it was given

    write_module(services, "backend/a-002", ["packaging==24.1"])
    second, exit_code, stderr = run_manager(*arguments, python=sys.executable)
    assert exit_code == 0, stderr
    assert (second["resolved_sets"], second["reused_sets"]) == (1, 2)
    assert second["added"] == ["packaging-24.1-py3-none-any.whl"]
    assert second["removed"] == ["packaging-24.2-py3-none-any.whl"]

    third, exit_code, _ = run_manager(*arguments, python=sys.executable)
    assert exit_code == 0 and third["up_to_date"] is True and third["resolved_sets"] == 0


def test_extract_uv_is_idempotent_and_gives_a_working_uv(wheelhouse: Path, uv_binary: Path) -> None:
    report, exit_code, _ = run_manager("extract-uv", "--wheelhouse", wheelhouse, "--dest", uv_binary)
    assert exit_code == 0 and report["changed"] is False
    stamp = json.loads((wheelhouse / STAMP_FILENAME).read_text())
    version = subprocess.run([str(uv_binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(f"uv {stamp['uv_version']}")
    assert uv_binary.stat().st_mode & 0o777 == 0o755
