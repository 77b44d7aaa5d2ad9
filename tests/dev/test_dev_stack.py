"""``make dev`` end to end: start the runner, use the stack through its Nginx, Ctrl-C, nothing left.

The runner runs on a copy of services/ (edited here, never the repo's) with two scaffolded
modules: one that greets (run from the frontend's page by a logged-in person, through the local
worker and run_module.sh) and one that sleeps (still running when the stack is stopped: its
process must go too). An edit to a backend route must show after gunicorn's reload. Venvs live in
.cache/dev-test, so a second run of this test starts warm; the warm start must take < 20 s.
"""

import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "services"))

from new_module import scaffold  # noqa: E402
from svc_testkit import nginx_site, postgres, redis_server  # noqa: E402

RUNNER = HERE / "dev_stack.py"
STATE = REPO / ".cache" / "dev-test"
WARM_START_S = 20.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SLEEPER = '''\
"""Sleeps, so that a run is still going when the stack stops."""

import time

print("sleeping", flush=True)
time.sleep(120)
'''
# Appended to the backend's routes/health.py; it imports what it uses (the module's own imports change).
PROBE_ROUTE = """

from flask import jsonify as _probe_jsonify


@blueprint.get("/dev-reload-probe")
def dev_reload_probe() -> tuple[object, int]:
    return _probe_jsonify({"marker": "%s"}), 200
"""


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "cannot run here: needs root (make test runs as root): PostgreSQL runs as postgres"
    return postgres.missing_binaries() or redis_server.missing_binary() or nginx_site.missing_binary()


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


# --- processes -----------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None  # a zombie has ended; only its parent's wait is missing
    return int(fields[1]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _tree(roots: set[int]) -> dict[int, int]:
    """The roots and all their descendants: pid -> start time (to tell a reused pid apart)."""
    parents = {pid: stat for pid in _all_pids() if (stat := _stat(pid)) is not None}
    found = {pid: parents[pid][1] for pid in roots if pid in parents}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, started) in parents.items():
            if ppid in found and pid not in found:
                found[pid] = started
                grew = True
    return found


def _mentioning(paths: list[str]) -> list[str]:
    """Live processes whose command line or working directory names one of ``paths``."""
    hits = []
    for pid in _all_pids():
        if _stat(pid) is None:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if any(path in cmdline or cwd.startswith(path) for path in paths):
            hits.append(f"{pid}: {cmdline.strip()} (cwd {cwd})")
    return hits


# --- HTTP ----------------------------------------------------------------------------------------
@dataclass
class Site:
    url: str
    token: str
    opener: urllib.request.OpenerDirector

    def get(self, path: str, token: bool = False) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        return self._send(urllib.request.Request(self.url + path, headers=headers))

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        request = urllib.request.Request(
            self.url + path,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Origin": self.url, "Content-Type": "application/x-www-form-urlencoded"},
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status, response.read().decode(), response.geturl()

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def run(self, run_id: str) -> dict[str, Any]:
        status, body = self.get(f"/api/runs/{run_id}", token=True)
        assert status == 200, body
        return dict(json.loads(body))

    def wait_run(self, run_id: str, statuses: set[str], timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(run_id)
            if run["status"] in statuses or time.monotonic() > deadline:
                return run
            time.sleep(0.2)


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    state: dict[str, Any]
    log: Path
    services: Path
    started_s: float
    warm: bool
    greeter: str
    sleeper: str

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dev-stack")
    services = root / "services"
    shutil.copytree(REPO / "services", services, ignore=shutil.ignore_patterns("__pycache__"))
    greeter = scaffold(services, "backend")
    sleeper = scaffold(services, "backend")
    (sleeper / "app.py").write_text(SLEEPER)
    warm = (STATE / "venv_mapping.json").exists()
    ready, log = root / "ready.json", root / "dev.log"
    command = [sys.executable, str(RUNNER), "--services-dir", str(services), "--state-dir", str(STATE)]
    command += ["--port", "0", "--ready-file", str(ready)]
    started = time.monotonic()
    with log.open("wb") as output:
        # Its own session, as a terminal's foreground job: SIGINT to its group is a Ctrl-C.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not ready.exists():
            assert process.poll() is None, f"make dev ended with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() - started < 120, f"not ready after 120 s:\n{log.read_text()}"
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        state = json.loads(ready.read_text())
        keys = (f"backend/{greeter.name}", f"backend/{sleeper.name}")
        yield Stack(process, state, log, services, elapsed, warm, *keys)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def site(stack: Stack) -> Site:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    return Site(stack.state["url"].rstrip("/"), stack.state["token"], opener)


def test_comes_up_quickly_and_prints_urls_and_login(stack: Stack) -> None:
    print(f"make dev ready in {stack.started_s:.1f} s ({'warm' if stack.warm else 'cold'} venvs)")
    if stack.warm:
        assert stack.started_s < WARM_START_S, stack.output
    for text in (
        stack.state["url"],
        f"{stack.state['url']}infra/",
        stack.state["password"],
        "RUN_SANDBOX=none",
    ):
        assert text in stack.output
    for prefix in ("backend  |", "frontend |", "infra    |", "worker   |", "dev      |"):
        assert prefix in stack.output, prefix


def test_nginx_routes_to_the_three_services(site: Site) -> None:
    status, body = site.get("/api/health")
    assert status == 200 and json.loads(body)["status"] == "ok", body
    assert site.get("/infra/health")[0] == 200
    status, body = site.get("/infra/")
    assert status == 401, "the dashboard is operators only, anonymous gets 401"
    status, _ = site.get("/infra")
    assert status == 401  # the role's 301 /infra -> /infra/ was followed


def test_frontend_lists_the_modules_of_the_venv_manager(stack: Stack, site: Site) -> None:
    status, page = site.get("/")
    assert status == 200
    for key in (
        "backend/a-001",
        stack.greeter,
        stack.sleeper,
        "frontend/ui-001",
        "infrastructure/infra-001",
    ):
        assert key in page, key


def test_a_run_started_from_the_page_succeeds_through_the_local_worker(stack: Stack, site: Site) -> None:
    status, page = site.get("/login")
    fields = {"username": stack.state["user"], "password": stack.state["password"]}
    status, page, _ = site.post_form("/login", {**fields, "csrf_token": CSRF.findall(page)[0]})
    assert status == 200 and "Log out" in page, page
    csrf = CSRF.findall(site.get(f"/modules/{stack.greeter}")[1])[0]
    status, page, url = site.post_form(
        f"/modules/{stack.greeter}/run", {"csrf_token": csrf, "args": "world 'dev stack'"}
    )
    assert status == 200 and "/runs/" in url, page
    run = site.wait_run(url.rsplit("/", 1)[1], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run
    assert json.loads(run["stdout_tail"]) == {
        "module": stack.greeter,
        "greetings": ["hello, world", "hello, dev stack"],
    }
    assert (run["requested_by"], run["requested_via"], run["worker"]) == ("dev", "frontend", "dev-1")
    assert 'id="run-status">succeeded' in site.get(url.removeprefix(site.url))[1]


def test_an_edited_route_shows_after_the_reload(stack: Stack, site: Site) -> None:
    assert site.get("/api/dev-reload-probe", token=True)[0] == 404
    marker = f"edited-{time.time_ns()}"
    health = stack.services / "backend" / "barestack_backend" / "routes" / "health.py"
    health.write_text(health.read_text() + PROBE_ROUTE % marker)
    edited = time.monotonic()
    deadline = edited + 30
    while (answer := site.get("/api/dev-reload-probe", token=True))[0] != 200:
        assert time.monotonic() < deadline, f"no reload after 30 s: {answer}\n{stack.output[-3000:]}"
        time.sleep(0.2)
    print(f"the edit showed {time.monotonic() - edited:.1f} s after the write")
    assert json.loads(answer[1]) == {"marker": marker}
    # The file is the backend package's, which the run worker imports too: it restarts as well.
    while stack.output.count("worker dev-1 consuming stream") < 2:
        assert time.monotonic() < deadline, f"the worker did not restart:\n{stack.output[-3000:]}"
        time.sleep(0.2)
    assert "the worker's code changed: restarting the worker" in stack.output


def test_ctrl_c_stops_everything_and_leaves_no_process(stack: Stack, site: Site) -> None:
    status, body = site.post_json(f"/api/modules/{stack.sleeper}/runs", {"args": []})
    assert status == 202, body
    run_id = json.loads(body)["id"]
    assert site.wait_run(run_id, {"running"})["status"] == "running"

    # "running" is set when the worker takes the run, a moment before run_module.sh starts it.
    deadline = time.monotonic() + 15
    while not _mentioning([str(stack.services / stack.sleeper)]):
        assert time.monotonic() < deadline, "the sleeping module's process was not found"
        time.sleep(0.1)
    postmaster = int((Path(stack.state["postgres_data"]) / "postmaster.pid").read_text().split()[0])
    processes = _tree({stack.process.pid, postmaster, stack.state["redis_pid"]})
    # Everything the stack started: the runner's tree, PostgreSQL's, and the module run.
    assert len(processes) >= 10, processes

    os.killpg(stack.process.pid, signal.SIGINT)
    stack.process.wait(timeout=60)
    assert stack.process.returncode == 0, stack.output[-3000:]
    left = {pid for pid, started in processes.items() if (stat := _stat(pid)) and stat[1] == started}
    assert not left, f"left running: {sorted(left)}"
    paths = [stack.state["base"], str(stack.services), str(Path(stack.state["postgres_data"]).parent)]
    assert not _mentioning(paths)
    assert not Path(stack.state["base"]).exists()
    assert "stopped: nothing left running" in stack.output
