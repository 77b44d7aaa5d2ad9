"""The three services as systemd starts them: ``gunicorn <package>.wsgi:app``, settings in the environment."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from svc_testkit.ports import free_port, wait_for_port

SERVICES = Path(__file__).resolve().parents[2] / "services"
SHARED_LIB = SERVICES / "_lib"
GUNICORN = Path(sys.executable).with_name("gunicorn")


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_gunicorn(service: str, port: int, env: dict[str, str], log_dir: Path) -> Gunicorn:
    log_path = log_dir / f"{service}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                # The import path as deployed: the service's folder, then the shared helpers.
                "--chdir",
                str(SERVICES / service),
                "--pythonpath",
                str(SHARED_LIB),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                f"barestack_{service}.wsgi:app",
            ],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=log,
            stderr=log,
        )
    return Gunicorn(process, port, log_path)


def stop(server: Gunicorn) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def stack(backend_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, Gunicorn]]:
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} not found")
    ports = {name: free_port() for name in ("backend", "frontend", "infrastructure")}
    backend_url, frontend_url = (
        f"http://127.0.0.1:{ports['backend']}",
        f"http://127.0.0.1:{ports['frontend']}",
    )
    # A threshold of 0 logs every request; the frontend's of a minute must leave its fast /health
    # without a line (the default, 0.5 s, could be passed on a busy machine).
    environments = {
        "backend": {**backend_env, "BARESTACK_SLOW_REQUEST_SECONDS": "0"},
        "frontend": {"BACKEND_API_URL": backend_url, "BARESTACK_SLOW_REQUEST_SECONDS": "60"},
        "infrastructure": {
            "BACKEND_URL": backend_url,
            "FRONTEND_URL": frontend_url,
            "DATABASE_URL": backend_env["DATABASE_URL"],
            "REDIS_URL": backend_env["REDIS_URL"],
            "NGINX_URL": f"http://127.0.0.1:{free_port()}/",
            # What systemd sets when stderr goes to journald: lines then carry a <priority> prefix.
            "JOURNAL_STREAM": "8:123456",
            "BARESTACK_SLOW_REQUEST_SECONDS": "0",
        },
    }
    servers = {name: start_gunicorn(name, ports[name], environments[name], tmp_path) for name in ports}
    try:
        for server in servers.values():
            wait_for_port(server.port, timeout_s=20)
        yield servers
    finally:
        for server in servers.values():
            stop(server)


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_each_service_serves_health_under_gunicorn_and_logs_requests_as_told(
    stack: dict[str, Gunicorn],
) -> None:
    for name in ("backend", "frontend", "infrastructure"):
        status, body = get_json(stack[name].url + "/health")
        assert status == 200, (name, body)
        assert body["status"] == "ok", (name, body)
    time.sleep(0.2)  # let the log lines reach the files
    for name, server in stack.items():
        prefix = "<6>" if name == "infrastructure" else ""
        request_lines = [
            line for line in server.log.splitlines() if line.startswith(f"{prefix}GET /health 200 ")
        ]
        if name == "frontend":
            assert request_lines == [], f"{name} logged a fast request:\n{server.log}"
            continue
        assert request_lines, f"{name} logged no request line:\n{server.log}"
        assert request_lines[0].endswith("from=127.0.0.1")


def test_a_service_without_its_settings_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    server = start_gunicorn("backend", free_port(), {}, tmp_path)
    try:
        assert server.process.wait(timeout=20) != 0
    finally:
        stop(server)
    assert "environment variable DATABASE_URL is not set" in server.log
