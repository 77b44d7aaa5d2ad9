"""Smoke run of the bench, so its code cannot rot: no test machine, small N, one iteration.

The venvs part's measuring code runs for real on the controller: our venv manager against the naive
Ansible loop (ansible-playbook with a local connection) on 3 generated modules, offline from a
wheelhouse built for the controller's python3 (PyPI only on a cache miss). wrk loads a loopback
server. The results go through the report writer. No figure here is a benchmark result.
"""

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from barestack_bench.cli import main
from barestack_bench.hosts import LocalHost
from barestack_bench.machines import write_local_inventory
from barestack_bench.parts.venvs import TITLE, add_extrapolations_and_targets, measure_scale, naive_sample
from barestack_bench.report import RunReport, write_report
from barestack_bench.results import PartResult
from barestack_bench.session import Session
from barestack_bench.settings import REPO_ROOT, VENV_BIN, VENV_MANAGER, BenchSettings
from barestack_bench.sources import generated_tree
from barestack_bench.venv_measure import VenvHost
from barestack_bench.wrk import BackgroundLoad, WrkSettings, run_wrk

TARGET_PYTHON = "/usr/bin/python3"
# The smoke run's own wheelhouse cache (gitignored): a stamp keyed on the tree makes reruns offline.
SMOKE_WHEELHOUSE_ROOT = REPO_ROOT / ".cache" / "bench" / "smoke-wheelhouse"
MODULES = 3


def manager(*arguments: str | Path) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, str(VENV_MANAGER), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def controller_target(tmp_path_factory: pytest.TempPathFactory) -> tuple[VenvHost, Path]:
    root = tmp_path_factory.mktemp("bench-smoke")
    tree = generated_tree(root / f"modules-{MODULES}", MODULES, seed=0, with_services=False)
    version = subprocess.run(
        [TARGET_PYTHON, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    wheelhouse = SMOKE_WHEELHOUSE_ROOT / f"py{version}"
    manager("wheelhouse", "--services-dir", tree, "--out", wheelhouse, "--python-version", version,
            "--uv", VENV_BIN / "uv")  # fmt: skip
    uv = root / "bin" / "uv"
    manager("extract-uv", "--wheelhouse", wheelhouse, "--dest", uv)
    target = VenvHost(
        host=LocalHost(),
        services_dir=str(tree),
        manager=str(VENV_MANAGER),
        wheelhouse=str(wheelhouse),
        uv=str(uv),
        python=TARGET_PYTHON,
        scratch=str(root / "scratch"),
    )
    return target, tree


def test_venvs_part_measures_ours_and_naive_and_reports(
    controller_target: tuple[VenvHost, Path], tmp_path: Path
) -> None:
    target, tree = controller_target
    session = Session(
        BenchSettings(iterations=1, module_counts=(MODULES,), naive_sample=2), tmp_path / "work"
    )
    inventory = write_local_inventory(tmp_path / "inventory", sys.executable)
    result = PartResult(name="venvs", title=TITLE)
    keys = naive_sample(tree, 2, seed=0)
    assert len(keys) == 2 and all(key.split("/")[1].startswith("gen-") for key in keys)

    measure_scale(session, result, target, inventory, tree, MODULES, keys)
    add_extrapolations_and_targets(result, (MODULES,))

    first = result.figure(f"ours_{MODULES}_first_build")
    assert first.samples[0] > 0
    # 3 modules + 3 (empty) service venvs were built; the second run had nothing to do.
    assert f"({2 * MODULES} venvs" in first.label
    assert result.figure(f"ours_{MODULES}_nochange").samples[0] < first.samples[0]
    assert result.figure(f"ours_{MODULES}_disk").samples[0] > 1
    naive = result.figure("naive_per_module_first_build")
    assert naive.samples[0] > 0 and "measured on 2 random modules" in naive.note
    scaled = result.figure(f"naive_{MODULES}_first_build")
    assert scaled.extrapolated and scaled.samples == [naive.samples[0] * MODULES]
    assert {comparison.key for comparison in result.comparisons} == {
        f"speedup_{MODULES}_first_build",
        f"speedup_{MODULES}_nochange",
        f"speedup_{MODULES}_disk",
    }
    assert all(comparison.value > 0 for comparison in result.comparisons)
    assert [target.key for target in result.targets] == ["venv_speedup", "venv_first_build"]
    assert not any("reported changes" in note or "reported changed" in note for note in result.notes)
    # Scratch folders are removed after each measurement.
    assert not any(Path(target.scratch).glob("*"))

    report = RunReport("smoke", "start", "end", 1.0, {}, {"cpus": 2}, [result])
    json_path, markdown_path, markdown = write_report(report, tmp_path / "results", "bench-smoke")
    assert json.loads(json_path.read_text(encoding="utf-8"))["parts"][0]["name"] == "venvs"
    assert markdown_path.is_file() and "## 3. Venvs at scale" in markdown


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def loopback_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_wrk_runs_for_a_duration_and_until_stopped(loopback_server: str) -> None:
    settings = WrkSettings(threads=1, connections=2, timeout_s=2)
    fixed = run_wrk(loopback_server, settings, duration_s=1)
    assert fixed.requests > 0 and fixed.failed == 0 and fixed.percentile_ms(99) > 0
    with BackgroundLoad(loopback_server, settings) as load:
        threading.Event().wait(1.0)
        stopped = load.stop()
    assert stopped.requests > 0 and stopped.duration_s < 30


@pytest.mark.parametrize(
    "arguments",
    [["--part", "nope"], ["--iterations", "0"], ["--module-counts", "400,x"], ["--naive-sample", "-1"]],
)
def test_bad_arguments_stop_before_anything_starts(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(arguments)
    assert stopped.value.code == 2


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="baseline port"):
        BenchSettings(baseline_port=8001)
    with pytest.raises(ValueError, match="concurrencies"):
        BenchSettings(request_connections=())
    with pytest.raises(ValueError, match="iterations"):
        BenchSettings(iterations=0)
