"""The worker: runs modules through run_module.sh, stores results, survives timeouts and dead workers.

In-process tests drive one Worker step by step; the recovery tests run real worker processes
and kill them with real signals.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from barestack_backend.app import create_app
from barestack_backend.module_runner import (
    Manifest,
    ManifestError,
    read_manifest,
    run_unit_name,
    systemd_run_command,
)
from barestack_backend.settings import Settings
from barestack_backend.worker import Worker, build_worker
from barestack_backend.worker_settings import WorkerSettings
from barestack_common.env import ConfigError
from flask.testing import FlaskClient
from svc_testkit.api_tokens import bearer
from svc_testkit.module_tree import ModuleTree
from svc_testkit.redis_server import RedisServer
from svc_testkit.runs_db import fetch_run, wait_for_run
from svc_testkit.worker_process import start_worker

GROUP = "barestack-workers"


@pytest.fixture
def api(backend_env: dict[str, str], api_token: str) -> FlaskClient:
    app = create_app(Settings.from_env(backend_env))
    app.testing = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(api_token)["Authorization"]
    return client


def make_worker(env: dict[str, str], **overrides: str) -> Worker:
    settings = WorkerSettings.from_env(
        {**env, "BARESTACK_WORKER_NAME": "test-worker", "BARESTACK_RUN_SANDBOX": "none", **overrides}
    )
    worker = build_worker(settings, threading.Event())
    worker.queue.ensure_group()
    return worker


@pytest.fixture
def worker(backend_env: dict[str, str]) -> Iterator[Worker]:
    worker = make_worker(backend_env)
    yield worker
    worker.database.close()


def work_off(worker: Worker) -> int:
    """Process what is on the stream now, as the worker's loop would; returns how many entries."""
    entries = worker.queue.read_new(worker.name, block_ms=100, count=100)
    for entry in entries:
        worker.process(entry)
    return len(entries)


def start_run(api: FlaskClient, module: str, *args: str) -> str:
    response = api.post(f"/modules/backend/{module}/runs", json={"args": list(args)})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def assert_queue_empty(redis_srv: RedisServer, stream: str) -> None:
    client = redis_srv.client()
    assert client.xlen(stream) == 0, "finished entries are deleted from the stream"
    assert client.xpending(stream, GROUP)["pending"] == 0, "and acknowledged"


def test_worker_settings_name_bad_variables(backend_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="BARESTACK_RUN_TIMEOUT must be a number"):
        WorkerSettings.from_env({**backend_env, "BARESTACK_RUN_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="BARESTACK_CLAIM_IDLE_MS must be greater than 0"):
        WorkerSettings.from_env({**backend_env, "BARESTACK_CLAIM_IDLE_MS": "0"})
    with pytest.raises(ConfigError, match="REDIS_URL is not set"):
        WorkerSettings.from_env({"DATABASE_URL": backend_env["DATABASE_URL"]})


def test_a_run_succeeds_with_its_output_stored(
    api: FlaskClient, worker: Worker, backend_env: dict[str, str], redis_srv: RedisServer
) -> None:
    run_id = start_run(api, "echo-001", "--greeting", "two words")
    assert work_off(worker) == 1
    run = api.get(f"/runs/{run_id}").get_json()
    assert run["status"] == "succeeded"
    assert run["exit_code"] == 0
    assert run["stdout_tail"] == "hello from echo-001\nargs: --greeting two words\n"
    assert run["stderr_tail"] == "a warning on stderr\n"
    assert run["attempts"] == 1 and run["worker"] == "test-worker"
    assert run["duration_ms"] > 0 and run["started_at"] and run["finished_at"]
    assert_queue_empty(redis_srv, backend_env["BARESTACK_RUNS_STREAM"])


def test_a_failing_module_is_failed_with_its_exit_code(api: FlaskClient, worker: Worker) -> None:
    run_id = start_run(api, "fail-002")
    work_off(worker)
    run = api.get(f"/runs/{run_id}").get_json()
    assert (run["status"], run["exit_code"]) == ("failed", 3)
    assert "boom: something broke" in run["stderr_tail"]


def test_a_module_over_the_timeout_is_killed(api: FlaskClient, backend_env: dict[str, str]) -> None:
    worker = make_worker(backend_env, BARESTACK_RUN_TIMEOUT="1")
    run_id = start_run(api, "sleep-003", "30")
    started = time.monotonic()
    work_off(worker)
    assert time.monotonic() - started < 6
    run = api.get(f"/runs/{run_id}").get_json()
    assert run["status"] == "timeout"
    assert run["exit_code"] == 128 + signal.SIGTERM
    assert run["stdout_tail"] == "sleeping\n"
    assert "killed after the 1 s timeout" in run["stderr_tail"]
    assert 1000 <= run["duration_ms"] < 5000


def test_only_the_tail_of_a_long_output_is_kept(api: FlaskClient, worker: Worker) -> None:
    run_id = start_run(api, "noisy-005")
    work_off(worker)
    run = api.get(f"/runs/{run_id}").get_json()
    assert run["status"] == "succeeded"
    assert len(run["stdout_tail"].encode()) <= 4096
    assert run["stdout_tail"].endswith("line 19999 " + "x" * 40 + "\nTHE END\n")


def test_a_module_gone_from_the_mapping_fails_with_run_module_exit_2(
    api: FlaskClient, backend_env: dict[str, str], modules: ModuleTree, tmp_path: Path
) -> None:
    run_id = start_run(api, "echo-001")
    empty_mapping = tmp_path / "mapping.json"
    empty_mapping.write_text('{"format": 1, "venvs": {}}')
    worker = make_worker(backend_env, BARESTACK_VENV_MAPPING=str(empty_mapping))
    worker._module_environ["BARESTACK_VENV_MAPPING"] = str(empty_mapping)
    work_off(worker)
    run = api.get(f"/runs/{run_id}").get_json()
    assert (run["status"], run["exit_code"]) == ("failed", 2)
    assert "unknown module backend/echo-001" in run["stderr_tail"]


def test_a_missing_run_module_script_fails_the_run_clearly(
    api: FlaskClient, backend_env: dict[str, str], tmp_path: Path
) -> None:
    worker = make_worker(backend_env, BARESTACK_RUN_MODULE=str(tmp_path / "no-such-run_module.sh"))
    run_id = start_run(api, "echo-001")
    work_off(worker)
    run = api.get(f"/runs/{run_id}").get_json()
    assert run["status"] == "failed" and run["exit_code"] is None
    assert "could not start" in run["stderr_tail"] and "No such file" in run["stderr_tail"]


def test_malformed_entries_are_dropped(
    worker: Worker, backend_env: dict[str, str], redis_srv: RedisServer
) -> None:
    stream = backend_env["BARESTACK_RUNS_STREAM"]
    redis_srv.client().xadd(stream, {"something": "else"})
    redis_srv.client().xadd(stream, {"run_id": "not-a-uuid"})
    assert work_off(worker) == 2
    assert_queue_empty(redis_srv, stream)


def test_a_run_that_keeps_killing_its_worker_is_given_up(
    api: FlaskClient, backend_env: dict[str, str], redis_srv: RedisServer
) -> None:
    worker = make_worker(backend_env, BARESTACK_MAX_ATTEMPTS="1")
    run_id = start_run(api, "echo-001")
    # What a worker dying mid-run leaves behind: the row running, the entry pending.
    entry = worker.queue.read_new("dead-worker", block_ms=100)[0]
    with worker.database.cursor() as cur:
        cur.execute(
            "UPDATE barestack.runs SET status = 'running', attempts = 1, worker = %s WHERE id = %s",
            ("dead-worker", run_id),
        )
    worker.process(entry)
    run = fetch_run(backend_env["DATABASE_URL"], run_id)
    assert run["status"] == "failed"
    assert "gave up after 1 attempts" in run["stderr_tail"]
    assert_queue_empty(redis_srv, backend_env["BARESTACK_RUNS_STREAM"])


def test_a_finished_run_delivered_again_is_not_rerun(
    api: FlaskClient, worker: Worker, backend_env: dict[str, str]
) -> None:
    run_id = start_run(api, "echo-001")
    work_off(worker)
    before = fetch_run(backend_env["DATABASE_URL"], run_id)
    worker.queue.enqueue(run_id)  # e.g. the worker died between storing the result and acknowledging
    work_off(worker)
    assert fetch_run(backend_env["DATABASE_URL"], run_id) == before


# --- real worker processes -----------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_worker_loses_no_run(
    api: FlaskClient, backend_env: dict[str, str], redis_srv: RedisServer, tmp_path: Path
) -> None:
    fast_claim = {"BARESTACK_CLAIM_IDLE_MS": "1500"}
    marker = tmp_path / "first-attempt.pid"
    first = start_worker(backend_env, "worker-a", tmp_path, **fast_claim)
    second = None
    try:
        run_id = start_run(api, "once-004", str(marker))
        wait_for_run(
            backend_env["DATABASE_URL"], run_id, lambda r: r["status"] == "running" and marker.exists()
        )
        second = start_worker(backend_env, "worker-b", tmp_path, **fast_claim)
        second.wait_for_log("consuming stream")
        # Longer than the claim idle time: worker-a keeps its entry alive, so worker-b leaves it alone.
        time.sleep(2.5)
        run = fetch_run(backend_env["DATABASE_URL"], run_id)
        assert (run["status"], run["worker"], run["attempts"]) == ("running", "worker-a", 1)

        module_pid = int(marker.read_text())
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _process_alive(module_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _process_alive(module_pid), "the module must die with its worker"
        run = wait_for_run(backend_env["DATABASE_URL"], run_id, lambda r: r["status"] == "succeeded")
        assert run["worker"] == "worker-b"
        assert run["attempts"] == 2
        assert run["stdout_tail"] == "second attempt finished the run\n"
        second.wait_for_log("claimed entry")
        assert_queue_empty(redis_srv, backend_env["BARESTACK_RUNS_STREAM"])
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_sigterm_hands_the_current_run_back_and_exits_0(
    api: FlaskClient, backend_env: dict[str, str], redis_srv: RedisServer, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt.pid"
    settings = {"BARESTACK_CLAIM_IDLE_MS": "1000", "BARESTACK_STOP_GRACE": "0.5"}
    first = start_worker(backend_env, "worker-a", tmp_path, **settings)
    second = None
    try:
        run_id = start_run(api, "once-004", str(marker))
        wait_for_run(
            backend_env["DATABASE_URL"], run_id, lambda r: r["status"] == "running" and marker.exists()
        )
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=10) == 0
        assert "handed back: worker stopping" in first.log
        run = fetch_run(backend_env["DATABASE_URL"], run_id)
        assert (run["status"], run["worker"], run["attempts"]) == ("queued", None, 0)
        pending = redis_srv.client().xpending(backend_env["BARESTACK_RUNS_STREAM"], GROUP)
        assert pending["pending"] == 1, "the entry stays pending for another worker"

        second = start_worker(backend_env, "worker-b", tmp_path, **settings)
        run = wait_for_run(backend_env["DATABASE_URL"], run_id, lambda r: r["status"] == "succeeded")
        assert run["worker"] == "worker-b"
        # An idle worker stops at once on SIGTERM, too.
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=5) == 0
        assert "worker worker-b stopped" in second.log
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_worker_without_configuration_says_what_is_missing(tmp_path: Path) -> None:
    worker = start_worker({}, "worker-unconfigured", tmp_path)
    assert worker.process.wait(timeout=10) == 2
    assert "DATABASE_URL is not set" in worker.log


REAL_RUN_MODULE = Path(__file__).resolve().parents[2] / "services" / "tools" / "run_module.sh"


def test_runs_through_the_projects_run_module_sh(
    api: FlaskClient, backend_env: dict[str, str], modules: ModuleTree, tmp_path: Path
) -> None:
    """The worker against the real services/tools/run_module.sh, not the stand-in."""
    if not REAL_RUN_MODULE.exists():
        pytest.skip(f"{REAL_RUN_MODULE} not written yet")
    worker = make_worker(backend_env, BARESTACK_RUN_MODULE=str(REAL_RUN_MODULE))
    worker._module_environ.update(
        {
            "BARESTACK_VENV_MAPPING": str(modules.mapping_path),
            "BARESTACK_ENV_FILE": str(tmp_path / "absent.env"),
        }
    )
    ok = start_run(api, "echo-001", "--flag")
    failing = start_run(api, "fail-002")
    work_off(worker)
    run = api.get(f"/runs/{ok}").get_json()
    assert (run["status"], run["exit_code"]) == ("succeeded", 0), run
    assert run["stdout_tail"] == "hello from echo-001\nargs: --flag\n"
    assert api.get(f"/runs/{failing}").get_json()["exit_code"] == 3


# --- least privilege: what a module sees, what the worker's Redis user may do -----------------

PRINT_ENV = "import json, os\nprint(json.dumps(dict(os.environ)))\n"
SECRETS = {
    "DATABASE_URL": "postgresql://app:db-secret-pw@127.0.0.1:5432/x",
    "REDIS_URL": "redis://u:redis-secret-pw@127.0.0.1:6379/0",
    "SECRET_KEY": "flask-secret-key-value",
    "SOME_TOKEN": "token-value",
}


def module_dir_tree(root: Path, key: str, files: dict[str, str]) -> Path:
    """One module folder and a venv_mapping.json naming it; the venv is this test's own."""
    service, module = key.split("/")
    folder = root / "services" / service / module
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    mapping = root / "venv_mapping.json"
    entry = {"kind": "module", "source": str(folder), "venv": sys.prefix}
    mapping.write_text(json.dumps({"format": 1, "venvs": {key: entry}}), encoding="utf-8")
    return mapping


def run_real_run_module(mapping: Path, env_file: Path | None, *argv: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BARESTACK_VENV_MAPPING": str(mapping),
        "BARESTACK_ENV_FILE": str(env_file) if env_file else "",
    }
    return subprocess.run(
        [str(REAL_RUN_MODULE), *argv], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


HOSTILE_ENV_FILE = r"""# comment line; the next is a ; comment
; also a comment
PLAIN=value with spaces{trailing}
SUBST=$(touch {marker})
BACKTICK=`touch {marker}`
DQ="a \"quoted\" $HOME \\ \n end"
SQ='single $(touch {marker}) \n'
CONCAT="one"'two'three
CONT=first\
second
  SPACED_KEY = spaced value
EMPTY=
not a valid line
1BAD=ignored
BAD-NAME=ignored
LAST=no newline at end"""


def test_run_module_reads_the_env_file_like_systemd_and_never_runs_it(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    mapping = module_dir_tree(tmp_path / "tree", "backend/env-001", {"app.py": PRINT_ENV})
    env_file = tmp_path / "modules.env"
    env_file.write_text(HOSTILE_ENV_FILE.format(marker=marker, trailing="   "), encoding="utf-8")

    result = run_real_run_module(mapping, env_file, "backend/env-001")

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert not marker.exists(), "a value of the env file was executed"
    assert seen["PLAIN"] == "value with spaces"
    assert seen["SUBST"] == f"$(touch {marker})"
    assert seen["BACKTICK"] == f"`touch {marker}`"
    assert seen["DQ"] == 'a "quoted" $HOME \\ \\n end'
    assert seen["SQ"] == f"single $(touch {marker}) \\n"
    assert seen["CONCAT"] == "onetwothree"
    assert seen["CONT"] == "firstsecond"
    assert seen["SPACED_KEY"] == "spaced value"
    assert seen["EMPTY"] == ""
    assert seen["LAST"] == "no newline at end"
    assert not {"1BAD", "BAD-NAME", "not a valid line"} & seen.keys()
    assert seen["BARESTACK_MODULE"] == "backend/env-001"


def test_run_module_refuses_a_script_outside_the_module(tmp_path: Path) -> None:
    mapping = module_dir_tree(
        tmp_path / "tree", "backend/esc-001", {"app.py": "print('inside')\n", "other.py": "print('other')\n"}
    )
    folder = tmp_path / "tree" / "services" / "backend" / "esc-001"
    outside = tmp_path / "tree" / "services" / "backend" / "x.py"
    outside.write_text("print('escaped')\n", encoding="utf-8")
    (folder / "link.py").symlink_to(outside)

    for script in ("../x.py", str(outside), "link.py", ".", "sub/../../x.py"):
        refused = run_real_run_module(mapping, None, "backend/esc-001", script)
        assert refused.returncode == 2, (script, refused.stdout, refused.stderr)
        assert "escaped" not in refused.stdout
        assert "run_module.sh:" in refused.stderr
    ok = run_real_run_module(mapping, None, "backend/esc-001", "other.py")
    assert (ok.returncode, ok.stdout) == (0, "other\n")


def test_a_module_sees_no_secret_of_the_worker(backend_env: dict[str, str], tmp_path: Path) -> None:
    mapping = module_dir_tree(tmp_path / "tree", "backend/env-002", {"app.py": PRINT_ENV})
    worker = make_worker(backend_env, BARESTACK_RUN_MODULE=str(REAL_RUN_MODULE))
    worker._module_environ = {
        **backend_env,
        **SECRETS,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BARESTACK_VENV_MAPPING": str(mapping),
        "BARESTACK_ENV_FILE": "",
    }
    outcome = worker._run("5d6c1f2e-0000-4000-8000-000000000001", 3, "backend/env-002", [], "0-1")
    worker.database.close()
    assert outcome.exit_code == 0, outcome.stderr_tail
    seen = json.loads(outcome.stdout_tail)
    assert not {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SOME_TOKEN"} & seen.keys()
    for secret in [*SECRETS.values(), backend_env["REDIS_URL"], backend_env["DATABASE_URL"]]:
        assert secret not in outcome.stdout_tail
    assert seen["BARESTACK_RUN_ID"] == "5d6c1f2e-0000-4000-8000-000000000001"
    assert seen["BARESTACK_RUN_ATTEMPT"] == "3"
    assert seen["BARESTACK_MODULE"] == "backend/env-002"


def test_the_module_manifest_asks_for_network(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) == Manifest(network=False)
    (tmp_path / "module.toml").write_text("[run]\nnetwork = true\n", encoding="utf-8")
    assert read_manifest(tmp_path).network is True
    (tmp_path / "module.toml").write_text('[run]\nnetwork = "yes"\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"run\.network must be true or false"):
        read_manifest(tmp_path)
    (tmp_path / "module.toml").write_text("[run\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(tmp_path)
    assert run_unit_name("abc", 2, network=True) == "barestack-run-net-abc-2.service"
    command = systemd_run_command(
        "barestack-run-abc-2.service", "barestack-run-w1.slice", {"BARESTACK_RUN_ID": "abc"}, ["run", "x y"]
    )
    assert command[0] == "systemd-run" and {"--pipe", "--wait", "--collect"} <= set(command)
    assert "--setenv=BARESTACK_RUN_ID=abc" in command and command[-3:] == ["--", "run", "x y"]


def test_worker_settings_sandbox_and_slice(backend_env: dict[str, str]) -> None:
    default_env = {k: v for k, v in backend_env.items() if k != "BARESTACK_RUN_SANDBOX"}
    assert WorkerSettings.from_env(default_env).run_sandbox == "systemd", "sandboxed unless told otherwise"
    with pytest.raises(ConfigError, match="BARESTACK_RUN_SANDBOX must be one of"):
        WorkerSettings.from_env({**backend_env, "BARESTACK_RUN_SANDBOX": "off"})
    for bad in ("system.slice", "barestack-run-w1.service", "barestack-run-a/b.slice", "-.slice"):
        with pytest.raises(ConfigError, match="BARESTACK_RUN_SLICE"):
            WorkerSettings.from_env({**backend_env, "BARESTACK_RUN_SLICE": bad})
    assert WorkerSettings.from_env({**backend_env, "BARESTACK_RUN_SLICE": "barestack-run-w2.slice"}).run_slice


REDIS_DEFAULTS = Path(__file__).resolve().parents[2] / "roles" / "redis" / "defaults" / "main.yml"


def worker_acl(stream: str) -> list[str]:
    """The role's ACL rules for the worker user, with this test's stream (Jinja rendered by hand)."""
    defaults = yaml.safe_load(REDIS_DEFAULTS.read_text(encoding="utf-8"))
    rules = (
        defaults["redis_worker_acl"]
        .replace("{{ redis_runs_stream }}", stream)
        .replace("{{ redis_worker_key_prefix }}", defaults["redis_worker_key_prefix"])
    )
    assert "{{" not in rules
    return rules.split()


@pytest.fixture
def worker_redis_url(redis_srv: RedisServer, runs_stream: str) -> str:
    admin = redis_srv.client()
    password = f"pw-{uuid.uuid4().hex}"
    admin.execute_command(
        "ACL", "SETUSER", "barestack-worker", "reset", "on", f">{password}", *worker_acl(runs_stream)
    )
    return f"redis://barestack-worker:{password}@127.0.0.1:{redis_srv.port}/0"


def test_the_worker_redis_user_works_the_stream_and_nothing_else(
    api: FlaskClient,
    backend_env: dict[str, str],
    redis_srv: RedisServer,
    worker_redis_url: str,
    runs_stream: str,
) -> None:
    redis_srv.client().set("barestack:other", "keep me")
    worker = make_worker(backend_env, REDIS_URL=worker_redis_url)
    run_id = start_run(api, "echo-001")  # the API enqueues with its own user
    assert work_off(worker) == 1, "XREADGROUP, XCLAIM, XACK, XDEL as the worker user"
    assert api.get(f"/runs/{run_id}").get_json()["status"] == "succeeded"
    worker.queue.claim_abandoned("test-worker", 60_000)
    assert worker.queue.pending_count() == 0
    client = worker.queue.client
    client.ping()
    client.xinfo_groups(runs_stream)
    for command in (
        ("DEL", "barestack:other"),
        ("GET", "barestack:other"),
        ("DEL", runs_stream),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
        ("KEYS", "*"),
        ("XADD", runs_stream, "*", "run_id", "x"),
        ("XGROUP", "DESTROY", runs_stream, GROUP),
        ("EVAL", "return 1", "0"),
        ("SHUTDOWN",),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)
    assert redis_srv.client().get("barestack:other") == "keep me"
    worker.database.close()


@pytest.mark.parametrize("deleted", ["group", "stream"])
def test_a_deleted_stream_or_group_is_made_again_and_runs_flow(
    api: FlaskClient,
    backend_env: dict[str, str],
    redis_srv: RedisServer,
    worker_redis_url: str,
    runs_stream: str,
    deleted: str,
) -> None:
    settings = WorkerSettings.from_env(
        {
            **backend_env,
            "REDIS_URL": worker_redis_url,
            "BARESTACK_WORKER_NAME": "nogroup-worker",
            "BARESTACK_RUN_SANDBOX": "none",
        }
    )
    stop = threading.Event()
    worker = build_worker(settings, stop)
    thread = threading.Thread(target=worker.serve)
    thread.start()
    try:
        first = start_run(api, "echo-001")
        assert wait_for_status(api, first) == "succeeded"
        admin = redis_srv.client()
        if deleted == "group":
            admin.xgroup_destroy(runs_stream, GROUP)
        else:
            admin.delete(runs_stream)
        second = start_run(api, "echo-001")
        assert wait_for_status(api, second) == "succeeded"
        assert admin.xinfo_groups(runs_stream)[0]["name"] == GROUP
    finally:
        stop.set()
        thread.join(timeout=30)
        worker.database.close()


def wait_for_status(api: FlaskClient, run_id: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        status = api.get(f"/runs/{run_id}").get_json()["status"]
        if status in ("succeeded", "failed", "timeout"):
            return status
        time.sleep(0.1)
    return status


def test_a_run_delivered_while_the_worker_stops_is_left_to_another_worker(
    api: FlaskClient, backend_env: dict[str, str], worker_redis_url: str
) -> None:
    # The stop (SIGTERM) comes while the worker blocks in its read, and a run arrives in that read:
    # the stopping worker must not start it (the cluster's one-host-at-a-time check caught one that did).
    def settings(name: str, claim_idle_ms: str) -> WorkerSettings:
        return WorkerSettings.from_env(
            {
                **backend_env,
                "REDIS_URL": worker_redis_url,
                "BARESTACK_WORKER_NAME": name,
                "BARESTACK_RUN_SANDBOX": "none",
                "BARESTACK_CLAIM_IDLE_MS": claim_idle_ms,
            }
        )

    stopping_stop = threading.Event()
    stopping = build_worker(settings("stopping-worker", "60000"), stopping_stop)
    stopping.queue.ensure_group()
    thread = threading.Thread(target=stopping.serve)
    thread.start()
    time.sleep(0.5)  # inside its first blocking read (2 s)
    stopping_stop.set()
    run_id = start_run(api, "echo-001")
    thread.join(timeout=10)
    assert not thread.is_alive()
    stopping.database.close()
    assert fetch_run(backend_env["DATABASE_URL"], run_id)["status"] == "queued"

    other_stop = threading.Event()
    other = build_worker(settings("other-worker", "1000"), other_stop)
    other_thread = threading.Thread(target=other.serve)
    other_thread.start()
    try:
        assert wait_for_status(api, run_id) == "succeeded"
        assert fetch_run(backend_env["DATABASE_URL"], run_id)["worker"] == "other-worker"
    finally:
        other_stop.set()
        other_thread.join(timeout=30)
        other.database.close()
