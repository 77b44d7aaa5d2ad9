"""The deploy part's bookkeeping without a machine: the definition-only deploys it runs and checks,
the rows and targets they add, the load's pre-check, and --process-manager from the command line
to the inventory and the report."""

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from barestack_bench.cli import parse_arguments, run_command, run_name
from barestack_bench.machines import write_groups
from barestack_bench.parts import ALL_PARTS
from barestack_bench.parts.deploy import (
    DEFINITION_VARIABLE,
    LABELS,
    LOAD_PATHS,
    P99_GOAL_RATIO,
    add_results,
    check_definition_switch,
    check_load_paths,
    definition_changes,
    role_default,
)
from barestack_bench.project import Project
from barestack_bench.release_state import LiveInstance, parse_live_instances
from barestack_bench.report import RunReport, render_markdown
from barestack_bench.results import PartResult
from barestack_bench.settings import REPO_ROOT, VENV_BIN, BenchSettings
from barestack_bench.wrk import WrkResult

SAMPLES = Path(__file__).parent / "samples"


def wrk(p99: float, failed: int = 0) -> WrkResult:
    return WrkResult(5_000, 60.0, 80.0, {50.0: p99 / 4, 99.0: p99}, failed)


def instance(
    colour: str, keepalive: int, pid: int = 4242, started: int = 1_000, written: int = 900
) -> LiveInstance:
    argv = ("python", "-m", "gunicorn", "-c", "/etc/barestack/gunicorn-backend.conf.py", "app:app")
    config = (("workers", "2"), ("keepalive", str(keepalive)))
    return LiveInstance(colour, pid, argv, started, written, config)


# --- the definition-only deploys ----------------------------------------------------------------


def test_role_default_reads_the_snapshot_and_refuses_what_is_not_a_number(tmp_path: Path) -> None:
    keepalive = role_default(Project(REPO_ROOT, "test"), DEFINITION_VARIABLE)
    # Above Nginx's upstream keepalive_timeout (60 s), as the role's comment requires.
    assert isinstance(keepalive, int) and keepalive > 60
    defaults = tmp_path / "roles" / "app" / "defaults"
    defaults.mkdir(parents=True)
    (defaults / "main.yml").write_text('app_gunicorn_keepalive: "{{ 75 }}"\n')
    with pytest.raises(RuntimeError, match="not a whole number"):
        role_default(Project(tmp_path, "test"), DEFINITION_VARIABLE)


@pytest.mark.parametrize(("runs", "count"), [(1, 2), (2, 2), (3, 4), (4, 4)])
def test_definition_changes_alternate_and_end_on_the_roles_value(runs: int, count: int) -> None:
    changes = definition_changes(75, runs)
    assert len(changes) == count
    assert changes[0::2] == [76] * (count // 2)
    # Back to no override every other time, the last one included: the machine is left on the
    # role's definition, so the deploys after it, and a plain converge, change no definition.
    assert changes[1::2] == [None] * (count // 2) and changes[-1] is None


def test_a_definition_switch_needs_every_service_on_its_other_colour_with_the_new_value() -> None:
    before = {name: instance("blue", 75) for name in ("backend", "frontend", "infrastructure")}
    after = {name: instance("green", 76) for name in before}
    assert check_definition_switch(before, after, 76) == []
    stayed = after | {"frontend": instance("blue", 75)}
    assert check_definition_switch(before, stayed, 76) == [
        "frontend: still on blue, the deploy did not switch colours"
    ]
    old_value = after | {"backend": instance("green", 75)}
    assert check_definition_switch(before, old_value, 76) == [
        "backend: green runs keepalive = 75, expected 76"
    ]
    # gunicorn reads its config only at start: a file written since says nothing of what runs.
    stale = after | {"frontend": instance("green", 76, started=900, written=1_000)}
    assert check_definition_switch(before, stale, 76) == [
        "frontend: green started before its gunicorn config was last written"
    ]
    stopped = after | {"infrastructure": LiveInstance("green", 0, ())}
    assert check_definition_switch(before, stopped, 76) == ["infrastructure: green is live but not running"]
    missing = {key: value for key, value in after.items() if key != "backend"}
    assert check_definition_switch(before, missing, 76) == ["backend: no live colour"]


def test_live_instances_parse_a_recorded_machine() -> None:
    """``live_instances``' output on a converged machine (systemd), recorded."""
    found = parse_live_instances((SAMPLES / "live_instances_systemd.txt").read_text())
    assert set(found) == {"backend", "frontend", "infrastructure"}
    for service, live in found.items():
        assert live.colour in ("blue", "green") and live.pid > 0
        assert live.option("-c") == f"/etc/barestack/gunicorn-{service}.conf.py"
        assert live.started > live.config_written > 0
        assert live.setting("keepalive") == "75" and live.setting("threads") == "4"
    assert found["backend"].setting("workers") == "2" and found["infrastructure"].setting("workers") == "1"
    assert found["backend"].option("--no-such-option") is None and found["backend"].setting("no_such") is None


# --- the rows and targets -------------------------------------------------------------------------


def series_for(changes: dict[str, list[WrkResult]]) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {}
    for change, loads in changes.items():
        for load in loads:
            values = {
                "failed": load.failed,
                "non_2xx": load.non_2xx_3xx,
                "p99": load.percentile_ms(99),
                "p50": load.percentile_ms(50),
                "rps": load.requests_per_s,
                "requests": load.requests,
                "wall": 60.0,
            } | {f"socket_{kind}": 0 for kind in ("connect", "read", "write", "timeout")}
            if change == "deploy":
                values["wheelhouse"] = 1.0
            for key, value in values.items():
                series.setdefault(f"{change}_{key}", []).append(float(value))
    return series


def test_the_unit_change_adds_its_rows_and_targets() -> None:
    result = PartResult("deploy", "t")
    series = series_for(
        {
            "deploy": [wrk(30.0)] * 3,
            "rollback": [wrk(45.0)] * 3,
            # 4 runs (3 rounded up to even); one dropped a request, one was slow.
            "unit_change": [wrk(40.0), wrk(20.0, failed=1), wrk(31.0), wrk(20.0)],
        }
    )
    add_results(result, wrk(10.0), series)
    targets = {target.key: target for target in result.targets}
    unit = targets["unit_change_zero_failed"]
    assert unit.label == "zero failed requests during a deploy that changes only the gunicorn configs"
    assert not unit.met and unit.measured == "1 at most, 1 in all"
    assert targets["deploy_zero_failed"].met and targets["rollback_zero_failed"].met
    # p99 against the steady state's 10 ms: 3x is the goal, 30 ms meets it, 40 and 45 do not.
    assert targets["deploy_p99"].met and targets["deploy_p99"].measured == "30 ms at most (3.0x)"
    assert not targets["rollback_p99"].met
    assert not targets["unit_change_p99"].met and targets["unit_change_p99"].measured.startswith("40 ms")
    assert targets["unit_change_p99"].goal == f"<= {P99_GOAL_RATIO:g}x 10 ms on every run"
    assert result.figure("unit_change_failed").summary.runs == 4
    assert result.figure("unit_change_p99").label == f"{LABELS['unit_change']}: p99 latency"
    assert "unit_change_wheelhouse" not in {figure.key for figure in result.figures}
    # Targets in the report's order: deploy, rollback, then the unit change.
    assert [key for key in targets if key.endswith("_zero_failed")] == [
        "deploy_zero_failed",
        "rollback_zero_failed",
        "unit_change_zero_failed",
    ]


# --- the load's pre-check -------------------------------------------------------------------------


@pytest.fixture
def site() -> Iterator[tuple[str, set[str]]]:
    """A loopback server answering 200, or 401 on the paths in the returned set (as a route behind
    access control would)."""
    closed: set[str] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401 if self.path in closed else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", closed
    finally:
        server.shutdown()
        server.server_close()


def test_the_load_paths_must_answer_without_credentials(site: tuple[str, set[str]]) -> None:
    base_url, closed = site
    check_load_paths(base_url)
    closed.add("/api/modules")
    assert "/api/modules" in LOAD_PATHS
    with pytest.raises(RuntimeError, match=r"/api/modules answered HTTP 401 before the load"):
        check_load_paths(base_url)


# --- --process-manager ----------------------------------------------------------------------------


def test_process_manager_defaults_to_systemd_and_is_checked() -> None:
    assert parse_arguments(["--part", "deploy"]).process_manager == "systemd"
    assert parse_arguments(["--part", "deploy", "--process-manager", "supervisor"]).process_manager == (
        "supervisor"
    )
    with pytest.raises(SystemExit) as refused:
        parse_arguments(["--part", "deploy", "--process-manager", "upstart"])
    assert refused.value.code == 2
    with pytest.raises(ValueError, match="process manager"):
        BenchSettings(process_manager="upstart")


@pytest.mark.parametrize("parts", [["requests"], ["converge", "requests", "deploy"]])
def test_supervisor_is_refused_for_the_requests_part(
    parts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_arguments(["--part", ",".join(parts), "--process-manager", "supervisor"])
    assert refused.value.code == 2
    assert "systemd unit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_arguments(["--process-manager", "supervisor"])  # all parts: requests among them


def test_a_supervisor_run_keeps_the_systemd_results_and_says_how_to_repeat_it() -> None:
    assert run_name(["deploy"], "systemd") == "bench-deploy"
    assert run_name(["deploy"], "supervisor") == "bench-deploy-supervisor"
    assert run_name(list(ALL_PARTS), "systemd") == "bench-all"
    assert run_command(["deploy"], "systemd") == "make bench PART=deploy"
    assert run_command(["deploy"], "supervisor") == (
        "make bench PART=deploy BENCH_ARGS='--process-manager supervisor'"
    )


def test_the_markdown_names_the_process_manager() -> None:
    def report(settings: dict[str, object]) -> RunReport:
        return RunReport("make bench PART=deploy", "2026-11-27T20:00:00Z", "x", 60.0, settings, {}, [])

    assert "Process manager: **supervisor**" in render_markdown(report({"process_manager": "supervisor"}))
    # A run from before the option used the role's default.
    assert "Process manager: **systemd**" in render_markdown(report({"iterations": 3}))


def test_the_inventory_sets_the_manager_above_group_vars(tmp_path: Path) -> None:
    """ansible-inventory itself resolves the host's variables: host_vars/ win over a group_vars
    that says otherwise, and a rewrite without host variables leaves none behind."""
    (tmp_path / "machines.yml").write_text(
        json.dumps({"all": {"hosts": {"bench-x": {"ansible_host": "10.213.0.99"}}}})
    )
    group_vars = tmp_path / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (group_vars / "main.yml").write_text("app_process_manager: systemd\n")

    def resolved() -> dict[str, object]:
        completed = subprocess.run(
            [str(VENV_BIN / "ansible-inventory"), "-i", str(tmp_path), "--host", "bench-x"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return json.loads(completed.stdout)

    write_groups(tmp_path, ["bench-x"], {"app_process_manager": "supervisor"})
    assert resolved()["app_process_manager"] == "supervisor"
    write_groups(tmp_path, ["bench-x"], {})
    assert not list((tmp_path / "host_vars").iterdir())
    assert resolved()["app_process_manager"] == "systemd"
