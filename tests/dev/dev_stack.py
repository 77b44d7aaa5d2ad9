"""``make dev``: the whole stack on this machine, in the foreground, until Ctrl-C.

What runs, as children of this process in process groups of their own (told by the kernel to
stop if this process is killed; PostgreSQL excepted, which pg_ctl detaches), logs interleaved on
stdout with a prefix:

- a throwaway PostgreSQL and Redis from the services' test kit (tests/services/svc_testkit),
  with the backend's migrations applied as a deployment applies them;
- the backend API, the frontend and the infrastructure dashboard under ``gunicorn --reload``,
  each from its own venv built by the venv manager (``dev_venvs.py``, offline from the local
  wheelhouse), with the environment the app_env role writes on a host;
- one run worker (restarted when its Python changes), which runs modules through the real
  ``services/tools/run_module.sh`` and the venv mapping, as on a host but with
  ``BARESTACK_RUN_SANDBOX=none`` (no systemd-run here: modules run as child processes with the
  worker's allowlisted environment, as this user);
- Nginx with the nginx role's own site (``svc_testkit/nginx_site.py``) on a loopback port,
  proxying ``/api/``, ``/infra/`` and ``/`` to the gunicorn sockets.

A login (operator) and an API token are generated for the session and printed. SIGINT or SIGTERM
stops everything in reverse order and removes the temporary folder; nothing is left running.
``--ready-file`` writes the URLs, credentials and process ids as JSON (mode 0600) once every
service answers through Nginx (the tests use it).
"""

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "services"))
sys.path.insert(0, str(HERE))

from dev_venvs import DEFAULT_STATE, SERVICES, DevError, DevVenvs  # noqa: E402
from svc_testkit import api_tokens, postgres, redis_server  # noqa: E402
from svc_testkit.accounts import AccountsFixture, User, write_accounts  # noqa: E402
from svc_testkit.migrations import apply_migrations  # noqa: E402
from svc_testkit.nginx_site import NginxSite  # noqa: E402
from svc_testkit.ports import free_port  # noqa: E402
from svc_testkit.processes import die_with_parent, stop_group  # noqa: E402

WEB_SERVICES = {
    # name: wsgi app, as roles/app/vars/main.yml's app_web_services
    "backend": "barestack_backend.wsgi:app",
    "frontend": "barestack_frontend.wsgi:app",
    "infrastructure": "barestack_infrastructure.wsgi:app",
}
PREFIXES = {"infrastructure": "infra"}
DEV_USER = "dev"
DEV_TOKEN_NAME = "dev"
READY_TIMEOUT_S = 60.0
T = TypeVar("T")
COLORS = ("36", "32", "35", "33", "34", "31")


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the stack was starting."""


class Output:
    """One writer for every process's lines: ``name | line``, whole lines, never interleaved mid-line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.color = stream.isatty()
        self.width = max(len(PREFIXES.get(n, n)) for n in [*WEB_SERVICES, "worker", "nginx", "dev"])
        self.colors: dict[str, str] = {}

    def line(self, name: str, text: str) -> None:
        label = f"{name:<{self.width}} |"
        if self.color:
            code = self.colors.setdefault(name, COLORS[len(self.colors) % len(COLORS)])
            label = f"\033[{code}m{label}\033[0m"
        with self.lock:
            self.stream.write(f"{label} {text.rstrip()}\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        self.line("dev", text)

    def follow(self, name: str, pipe: IO[bytes]) -> threading.Thread:
        def pump() -> None:
            for raw in iter(pipe.readline, b""):
                self.line(name, raw.decode("utf-8", errors="replace"))
            pipe.close()

        thread = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
        thread.start()
        return thread


def _require_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise DevError(f"127.0.0.1:{port} is in use: make dev DEV_PORT=<another port>", 2) from None


def _start_postgres() -> postgres.PostgresServer:
    """The test kit's cluster with the backend's migrations applied, as a deployment leaves it."""
    server = postgres.PostgresServer.start()
    try:
        apply_migrations(server.url())
    except BaseException:
        server.stop()
        raise
    return server


def _result(future: "Future[T]") -> T | None:
    return None if future.exception() is not None else future.result()


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_thread: threading.Thread | None = None
    # How it was started (name, command, environment, cwd), to start it again.
    spawn: tuple[str, tuple[str, ...], dict[str, str], Path | None] | None = None


@dataclass
class Stack:
    services: Path
    venvs: DevVenvs
    port: int
    output: Output
    stopping: threading.Event = field(default_factory=threading.Event)
    base: Path | None = None
    pg: postgres.PostgresServer | None = None
    redis: redis_server.RedisServer | None = None
    nginx: NginxSite | None = None
    children: list[Child] = field(default_factory=list)

    # --- start -----------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.stopping.is_set():
            raise Interrupted

    def start(self) -> dict[str, Any]:
        started = time.monotonic()
        for missing in (postgres.missing_binaries(), redis_server.missing_binary()):
            if missing:
                raise DevError(missing)
        if os.geteuid() != 0:
            raise DevError("make dev needs root: the test kit's PostgreSQL runs as the postgres user")
        if self.port:
            _require_free(self.port)  # before anything starts: a clear message, nothing to undo
        # The venvs (uv, subprocesses) and the stores (initdb, pg_ctl) overlap: a second off a start.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="start") as pool:
            pg_started = pool.submit(_start_postgres)
            redis_started = pool.submit(redis_server.RedisServer.start)
            try:
                self.venvs.ensure(say=self.output.say)
            finally:
                # Whatever did start is recorded, so that stop() stops it even if something failed.
                self.pg = _result(pg_started)
                self.redis = _result(redis_started)
        for future in (pg_started, redis_started):
            future.result()  # raises what the start raised
        self._check()
        self.base = Path(tempfile.mkdtemp(prefix="barestack-dev-"))
        self.base.chmod(0o711)  # nginx's workers (nobody, when started as root) reach the sockets
        socket_dir = self.base / "run"
        for name in WEB_SERVICES:
            (socket_dir / name).mkdir(parents=True)
        socket_dir.chmod(0o711)

        assert self.pg is not None and self.redis is not None
        database_url = self.pg.url()
        self.output.say(f"PostgreSQL on 127.0.0.1:{self.pg.port}, Redis on 127.0.0.1:{self.redis.port}")

        password = secrets.token_urlsafe(15)
        accounts = AccountsFixture(self.base / "accounts.json", secrets.token_urlsafe(48))
        write_accounts(accounts.path, [User(DEV_USER, password, operator=True)])
        accounts.path.chmod(0o600)
        frontend_token = api_tokens.issue_token(
            database_url, api_tokens.FRONTEND_TOKEN_NAME, act_for_users=True
        )
        dev_token = api_tokens.issue_token(database_url, DEV_TOKEN_NAME)
        modules_env = self.base / "modules.env"
        modules_env.write_text("# the modules' env file: no secrets (as /etc/barestack/modules.env)\n")
        modules_env.chmod(0o644)

        # The services are told Nginx's address (the frontend calls the API through it, as on a
        # host); Nginx itself starts once their sockets exist, so it never logs a refused upstream.
        port = self.port or free_port()
        site = f"http://127.0.0.1:{port}"
        envs = self._environments(database_url, accounts, frontend_token, site, modules_env)
        for name, wsgi in WEB_SERVICES.items():
            self._spawn(name, self._gunicorn(name, wsgi, socket_dir), envs[name], cwd=self.services / name)
        self._spawn("worker", self._python("backend", "-m", "barestack_backend.worker"), envs["worker"])
        self._wait_for(lambda: all((socket_dir / name / "gunicorn.sock").exists() for name in WEB_SERVICES))
        self.nginx = NginxSite.start(socket_dir, port=port, output=subprocess.PIPE)
        assert self.nginx.process.stdout is not None
        self.children.append(
            Child("nginx", self.nginx.process, self.output.follow("nginx", self.nginx.process.stdout))
        )
        self._wait_ready(site)
        elapsed = time.monotonic() - started
        state = {
            "url": site + "/",
            "api": site + "/api/",
            "infra": site + "/infra/",
            "user": DEV_USER,
            "password": password,
            "token": dev_token,
            "startup_s": round(elapsed, 2),
            "base": str(self.base),
            "services": str(self.services),
            "pids": {child.name: child.process.pid for child in self.children},
            "redis_pid": self.redis.process.pid,
            "postgres_data": str(self.pg.data_dir),
            "database_url": database_url,
        }
        self._banner(state)
        return state

    def _environments(
        self,
        database_url: str,
        accounts: AccountsFixture,
        frontend_token: str,
        site: str,
        modules_env: Path,
    ) -> dict[str, dict[str, str]]:
        """What each process gets on a host: roles/app_env (env files) + the units' Environment=."""
        assert self.redis is not None
        common = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "BARESTACK_VENV_MAPPING": str(self.venvs.mapping),
            "BARESTACK_RUN_MODULE": str(self.venvs.run_module),
        }
        stores = {"DATABASE_URL": database_url, "REDIS_URL": self.redis.url}
        return {
            "backend": {**common, **stores, "BARESTACK_DB_POOL_SIZE": "4"},
            "worker": {
                **common,
                **stores,
                "PYTHONPATH": f"{self.services / 'backend'}:{self.services / '_lib'}",
                "BARESTACK_WORKER_NAME": "dev-1",
                "BARESTACK_ENV_FILE": str(modules_env),
                # No systemd as PID 1 here: modules run as the worker's children (allowlisted env).
                "BARESTACK_RUN_SANDBOX": "none",
                "BARESTACK_STOP_GRACE": "5",
            },
            "frontend": {
                **common,
                **accounts.env,
                "BACKEND_API_URL": f"{site}/api",
                "BARESTACK_FRONTEND_TOKEN": frontend_token,
                "BARESTACK_COOKIE_SECURE": "0",
            },
            "infrastructure": {
                **common,
                **stores,
                **accounts.env,
                "BACKEND_URL": f"{site}/api",
                "FRONTEND_URL": site,
                "NGINX_URL": f"{site}/",
                "BARESTACK_COOKIE_SECURE": "0",
            },
        }

    def _python(self, service: str, *arguments: str) -> list[str]:
        return [str(self.venvs.venvs / service / "_service" / "bin" / "python"), *arguments]

    def _gunicorn(self, name: str, wsgi: str, socket_dir: Path) -> list[str]:
        """As roles/app/templates/barestack-web.service.j2 starts it, one worker, plus --reload."""
        return self._python(
            name,
            "-m",
            "gunicorn",
            "--chdir",
            str(self.services / name),
            "--pythonpath",
            str(self.services / "_lib"),
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--bind",
            f"unix:{socket_dir / name / 'gunicorn.sock'}",
            "--no-control-socket",
            "--error-logfile",
            "-",
            "--graceful-timeout",
            "5",
            "--reload",
            wsgi,
        )

    def _spawn(
        self, name: str, command: Sequence[str], environ: dict[str, str], cwd: Path | None = None
    ) -> Child:
        process = subprocess.Popen(
            list(command),
            cwd=str(cwd or self.services),
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this runner only; it stops the children in order
            preexec_fn=die_with_parent,
        )
        assert process.stdout is not None
        label = PREFIXES.get(name, name)
        child = Child(
            label, process, self.output.follow(label, process.stdout), (name, tuple(command), environ, cwd)
        )
        self.children.append(child)
        return child

    def _check_children(self) -> None:
        self._check()
        for child in self.children:
            if child.process.poll() is not None:
                raise DevError(f"{child.name} exited with status {child.process.returncode} while starting")

    def _wait_for(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not condition():
            self._check_children()
            if time.monotonic() > deadline:
                raise DevError(f"the services' sockets did not appear in {READY_TIMEOUT_S:g} s")
            time.sleep(0.05)

    def _wait_ready(self, site: str) -> None:
        pending = {f"{site}/api/health", f"{site}/infra/health", f"{site}/"}
        deadline = time.monotonic() + READY_TIMEOUT_S
        while pending:
            self._check_children()
            for url in sorted(pending):
                with (
                    contextlib.suppress(OSError, urllib.error.URLError),
                    urllib.request.urlopen(url, timeout=2) as response,
                ):
                    if response.status == 200:
                        pending.discard(url)
            if time.monotonic() > deadline:
                raise DevError(f"not ready after {READY_TIMEOUT_S:g} s: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.1)

    def _banner(self, state: dict[str, Any]) -> None:
        url = state["url"].rstrip("/")
        lines = [
            f"barestack is up in {state['startup_s']:.1f} s, services from {self.services}",
            f"  frontend:        {url}/",
            f"  backend API:     {url}/api/health   {url}/api/modules",
            f"  infrastructure:  {url}/infra/",
            f"  log in as:       {state['user']}  password {state['password']}  (operator, this session)",
            f"  API token:       curl -H 'Authorization: Bearer {state['token']}' {url}/api/runs",
            "  module runs:     BARESTACK_RUN_SANDBOX=none: the worker runs modules through run_module.sh",
            "                   as child processes, as this user, with the network, NOT in the host's",
            "                   systemd-run sandbox (own user, no network, no secrets); services/README.md",
            "  code reloading:  gunicorn --reload restarts a service's worker when its Python changes,",
            "                   the run worker is restarted likewise; modules are read afresh on every run",
            "  Ctrl-C stops everything.",
        ]
        for line in lines:
            self.output.say(line)

    # --- run and stop ----------------------------------------------------------------------------
    def _worker_sources(self) -> float:
        """Newest mtime of the Python the worker runs (gunicorn --reload covers the web services)."""
        roots = (self.services / "backend" / "barestack_backend", self.services / "_lib")
        return max((path.stat().st_mtime for root in roots for path in root.rglob("*.py")), default=0.0)

    def _restart_worker(self) -> None:
        """Stop the worker (its current run is handed back) and start it again, from the main thread:
        the kernel's parent-death signal follows the thread that started a child."""
        worker = next(child for child in self.children if child.name == "worker")
        self.output.say("the worker's code changed: restarting the worker")
        stop_group(worker.process, timeout_s=10)
        if worker.log_thread is not None:
            worker.log_thread.join(timeout=2)
        self.children.remove(worker)
        assert worker.spawn is not None
        name, command, environ, cwd = worker.spawn
        self._spawn(name, command, environ, cwd)

    def wait(self) -> int:
        """Until SIGINT/SIGTERM (0) or until a process dies on its own (1)."""
        sources, checked = self._worker_sources(), time.monotonic()
        while not self.stopping.wait(0.2):
            if time.monotonic() - checked >= 1.0:
                latest, checked = self._worker_sources(), time.monotonic()
                if latest != sources:
                    sources = latest
                    self._restart_worker()
            for child in self.children:
                if child.process.poll() is not None:
                    self.output.say(f"{child.name} exited with status {child.process.returncode}: stopping")
                    return 1
        return 0

    def stop(self) -> None:
        # Reverse order of start: the worker first (it hands back or finishes its run), Nginx last.
        # The worker gets its stop grace (5 s) and room to end the module run it holds: a run has a
        # session of its own, so SIGKILL on the worker's group would not reach it (seen under load).
        for child in reversed(self.children):
            if child.name != "nginx":
                stop_group(child.process, timeout_s=30 if child.name == "worker" else 10)
        if self.nginx is not None:
            self.nginx.stop()
        for child in self.children:
            if child.log_thread is not None:
                child.log_thread.join(timeout=2)
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.stop()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
        self.output.say("stopped: nothing left running")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev_stack.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services-dir", type=Path, default=SERVICES, help="the services tree to run")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE, help="venvs and their mapping")
    parser.add_argument("--port", type=int, default=8080, help="Nginx's loopback port (0: any free one)")
    parser.add_argument("--ready-file", type=Path, help="write URLs, credentials and pids here when ready")
    arguments = parser.parse_args(argv)
    services = arguments.services_dir.resolve()
    # The test kit's accounts and tokens hash with the services' own code (scrypt, hash_token).
    for package_dir in (services / "_lib", services / "backend"):
        sys.path.insert(0, str(package_dir))
    stack = Stack(
        services=services,
        venvs=DevVenvs(services=services, state=arguments.state_dir.resolve()),
        port=arguments.port,
        output=Output(sys.stdout),
    )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stack.stopping.is_set():
            stack.output.say(f"{signal.Signals(signum).name}: stopping everything")
        stack.stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        state = stack.start()
        if arguments.ready_file:
            descriptor = os.open(arguments.ready_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as ready:
                json.dump(state, ready)
        status = stack.wait()
    except Interrupted:
        status = 0
    except (DevError, RuntimeError, OSError, subprocess.CalledProcessError) as error:
        # A Ctrl-C reaches the subprocesses of the start too (the venv manager): not an error then.
        if not stack.stopping.is_set():
            stack.output.say(f"cannot start: {error}")
            status = max(getattr(error, "exit_code", 1), 1)
    finally:
        # Signals during the shutdown itself must not cut it short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
