"""The frontend keeps its connections to the backend, bounds a slow one, and lists 1,000 modules fast.

Keep-alive needs a server that keeps connections: werkzeug's test server answers every request
with ``Connection: close``, so these tests run the backend under gunicorn's gthread workers, as
it is deployed.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from barestack_backend.app import create_app as create_backend
from barestack_backend.settings import Settings as BackendSettings
from barestack_common import http_client
from barestack_frontend.app import EXTENSION_KEY, create_app
from barestack_frontend.backend_client import BackendClient, BackendUnavailable
from barestack_frontend.settings import Settings
from flask import Flask
from svc_testkit.accounts import PERSON, login, session_csrf
from svc_testkit.live_server import serve
from svc_testkit.ports import free_port, wait_for_port

SERVICES = Path(__file__).resolve().parents[2] / "services"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def frontend(backend_url: str, timeout_s: float = 3.0, env: dict[str, str] | None = None) -> Flask:
    """The frontend app; ``env`` adds settings (login accounts, its backend token)."""
    settings = {"BACKEND_API_URL": backend_url, "BACKEND_TIMEOUT": str(timeout_s), **(env or {})}
    app = create_app(Settings.from_env(settings))
    app.testing = True
    return app


def backend_client(app: Flask) -> BackendClient:
    return app.extensions[EXTENSION_KEY]


class AcceptCounter:
    """A TCP relay in front of the backend that counts the connections it accepts."""

    def __init__(self, target_port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.accepted = 0
        self.target_port = target_port
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def _start_gunicorn(
    env: dict[str, str], bind: str, log: Path, keep_alive_s: int = 5
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                str(GUNICORN),
                *("--chdir", str(SERVICES / "backend"), "--pythonpath", str(SERVICES / "_lib")),
                *("--bind", bind, "--workers", "1", "--worker-class", "gthread", "--threads", "4"),
                *("--keep-alive", str(keep_alive_s)),
                "barestack_backend.wsgi:app",
            ],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=out,
            stderr=out,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def gunicorn_backend(backend_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts the backend under gunicorn gthread on TCP or a unix socket; returns its base URL."""
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} not found")
    processes: list[subprocess.Popen[bytes]] = []

    def start(unix: bool = False, keep_alive_s: int = 5) -> str:
        if unix:
            path = Path(tempfile.mkdtemp(prefix="barestack-sock-")) / "backend.sock"
            processes.append(
                _start_gunicorn(backend_env, f"unix:{path}", tmp_path / "gunicorn.log", keep_alive_s)
            )
            deadline = time.monotonic() + 15
            while not path.exists():
                assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.05)
            url = f"http+unix://{quote(str(path), safe='')}"
            assert http_client.request("GET", url + "/health", 5).status == 200
            return url
        port = free_port()
        processes.append(
            _start_gunicorn(backend_env, f"127.0.0.1:{port}", tmp_path / "gunicorn.log", keep_alive_s)
        )
        wait_for_port(port, timeout_s=15)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        _stop(process)


@pytest.fixture
def counted_backend(gunicorn_backend: Callable[..., str]) -> Iterator[AcceptCounter]:
    counter = AcceptCounter(int(gunicorn_backend().rsplit(":", 1)[1]))
    yield counter
    counter.close()


def test_page_views_reuse_one_connection_to_the_backend(counted_backend: AcceptCounter) -> None:
    client = frontend(counted_backend.url).test_client()
    for _ in range(20):
        assert client.get("/").status_code == 200
        assert client.get("/health").get_json()["checks"]["backend"]["ok"] is True
    # The test client serves every request on this thread: one kept connection carries them all.
    assert counted_backend.accepted == 1


def test_a_connection_the_backend_closed_is_replaced_without_an_error(
    gunicorn_backend: Callable[..., str], auth_env: dict[str, str]
) -> None:
    app = frontend(gunicorn_backend(keep_alive_s=1), env=auth_env)
    client = app.test_client()
    login(client, PERSON)  # the login form is the frontend's own: no backend call
    assert client.get("/").status_code == 200
    time.sleep(2.5)  # gunicorn closes a connection idle past its keep-alive (checked once a second)
    assert client.get("/").status_code == 200
    time.sleep(1.5)
    # A POST is never sent twice: after an idle second it goes out on a new connection.
    response = client.post(
        "/modules/backend/echo-001/run", data={"args": "x", "csrf_token": session_csrf(client)}
    )
    assert response.status_code == 303
    assert backend_client(app).http.connections_opened == 3


def test_a_werkzeug_backend_that_closes_every_connection_still_works(live_backend: str) -> None:
    app = frontend(live_backend, env={"BARESTACK_CATALOGUE_TTL": "0"})  # every view calls the backend
    client = app.test_client()
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert backend_client(app).http.connections_opened == 3


def test_connections_are_kept_over_a_unix_socket_too(gunicorn_backend: Callable[..., str]) -> None:
    app = frontend(gunicorn_backend(unix=True))
    client = app.test_client()
    for _ in range(10):
        assert "backend/echo-001" in client.get("/").get_data(as_text=True)
    assert backend_client(app).http.connections_opened == 1


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """Answers a request with a valid HTTP head, then one body byte every 0.3 s: slow, never silent."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
            while not stop.is_set():
                conn.sendall(b" ")
                time.sleep(0.3)
        except OSError:
            pass
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_a_slow_backend_holds_a_page_no_longer_than_the_timeout(trickling_server: str) -> None:
    client = frontend(trickling_server, timeout_s=1.0).test_client()
    started = time.monotonic()
    response = client.get("/")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert "The backend is not available" in response.get_data(as_text=True)
    # A per-read timeout would wait 30 s here (a byte every 0.3 s); the whole call has 1 s.
    assert elapsed < 1.5, f"the page waited {elapsed:.2f} s on a backend with a 1 s timeout"


def test_the_timeout_covers_the_whole_call(trickling_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out"):
        BackendClient(trickling_server, 0.5).modules()
    assert time.monotonic() - started < 1.0


def test_http_client_request_is_still_one_fresh_connection(counted_backend: AcceptCounter) -> None:
    for _ in range(3):
        assert http_client.request("GET", counted_backend.url + "/health", 3.0).status == 200
    assert counted_backend.accepted == 3


def test_the_catalogue_page_stays_fast_with_1000_modules(backend_env: dict[str, str], tmp_path: Path) -> None:
    mapping = json.loads(Path(backend_env["BARESTACK_VENV_MAPPING"]).read_text())
    template = next(entry for entry in mapping["venvs"].values() if entry["kind"] == "module")
    mapping["venvs"] = {
        f"svc{n % 3}/mod-{n:04d}": {**template, "service": f"svc{n % 3}", "module": f"mod-{n:04d}"}
        for n in range(1000)
    }
    big = tmp_path / "venv_mapping.json"
    big.write_text(json.dumps(mapping))
    settings = BackendSettings.from_env({**backend_env, "BARESTACK_VENV_MAPPING": str(big)})
    backend = serve(create_backend(settings))
    try:
        client = frontend(backend.url).test_client()
        assert client.get("/").status_code == 200  # warm: catalogue parsed, connection open
        timings = []
        for _ in range(5):
            started = time.monotonic()
            response = client.get("/")
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "svc0/mod-0000" in html and "svc0/mod-0999" in html
        median = sorted(timings)[2]
        assert median < 0.5, f"the catalogue page with 1,000 modules took {median:.3f} s (median)"
    finally:
        backend.stop()
