"""Commands timed on the host, and disk usage that counts hardlinked files once (real du, real files)."""

import os
from pathlib import Path

import pytest
from barestack_bench.hosts import HostCommandError, LocalHost, disk_usage_bytes, run_timed, split_elapsed


def test_timing_is_measured_where_the_command_runs() -> None:
    result = run_timed(LocalHost(), ["sh", "-c", "sleep 0.2; echo out; echo err >&2"])
    assert result.stdout == "out\n"
    assert result.stderr == "err"
    assert result.elapsed_s is not None and 0.2 <= result.elapsed_s < 2


def test_a_failing_command_names_itself() -> None:
    with pytest.raises(HostCommandError, match="exited 3"):
        run_timed(LocalHost(), ["sh", "-c", "exit 3"])


def test_split_elapsed_without_marker() -> None:
    assert split_elapsed("just stderr") == ("just stderr", None)


def test_hardlinked_files_count_once(tmp_path: Path) -> None:
    first, second = tmp_path / "venv-a", tmp_path / "venv-b"
    first.mkdir()
    second.mkdir()
    (first / "lib.so").write_bytes(os.urandom(1024 * 1024))
    os.link(first / "lib.so", second / "lib.so")
    both = disk_usage_bytes(LocalHost(), [first, second])
    one = disk_usage_bytes(LocalHost(), [first])
    assert one >= 1024 * 1024
    assert both - one < 64 * 1024
