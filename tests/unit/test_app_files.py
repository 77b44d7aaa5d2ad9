"""The scripts the app role ships: the deploy's health gate and the source tree hash.

The health gate is run against a real HTTP server on loopback; nothing is mocked.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

FILES = Path(__file__).resolve().parents[2] / "roles" / "app" / "files"
sys.path.insert(0, str(FILES.parents[2] / "tests" / "services"))

from svc_testkit.tls import make_tls_files  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    statuses: ClassVar[dict[str, int]] = {"/ok": 200, "/down": 503}

    def do_GET(self) -> None:
        self.send_response(self.statuses.get(self.path, 404))
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def gate(*arguments: str) -> tuple[int, dict[str, object]]:
    completed = subprocess.run(
        [sys.executable, str(FILES / "health_gate.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout)


def test_gate_passes_when_every_check_answers_as_expected(server: str) -> None:
    code, report = gate("--base", server, "--check", "/ok=200", "--check", "/down=503", "--deadline", "3")
    assert code == 0
    assert report["passed"] is True and report["failed"] == []


def test_gate_names_exactly_the_failing_checks(server: str) -> None:
    code, report = gate(
        "--base", server, "--check", "/ok=200", "--check", "/down=200", "--deadline", "1", "--interval", "0.2"
    )
    assert code == 1
    assert report["failed"] == [{"path": "/down", "expected": 200, "got": 503}]


def test_gate_reports_a_refused_connection() -> None:
    code, report = gate("--base", "http://127.0.0.1:9", "--check", "/=200", "--deadline", "0.5")
    assert code == 1
    assert "Connection" in str(report["failed"][0]["got"])  # type: ignore[index]


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[Path]:
    """The same handler on a unix socket, as gunicorn serves a colour before it gets traffic."""

    class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self) -> tuple[object, tuple[str, int]]:
            request, _ = super().get_request()
            return request, ("local", 0)

    path = tmp_path / "green.sock"
    httpd = UnixServer(str(path), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield path
    httpd.shutdown()
    httpd.server_close()


def test_gate_checks_a_colour_through_its_socket_naming_the_public_path(unix_server: Path) -> None:
    code, report = gate(
        "--check",
        f"{unix_server}|/api|/ok=200",
        "--check",
        f"{unix_server}|/api|/down=200",
        "--deadline",
        "1",
        "--interval",
        "0.2",
    )
    assert code == 1
    assert report["failed"] == [{"path": "/api/down", "expected": 200, "got": 503}]


def test_gate_waits_for_a_socket_that_is_not_there_yet_then_fails(tmp_path: Path) -> None:
    code, report = gate("--check", f"{tmp_path / 'blue.sock'}||/=200", "--deadline", "0.5")
    assert code == 1
    assert report["failed"][0]["path"] == "/"  # type: ignore[index]
    assert "FileNotFoundError" in str(report["failed"][0]["got"])  # type: ignore[index]


def lock(*arguments: str) -> tuple[int, dict[str, object]]:
    completed = subprocess.run(
        [sys.executable, str(FILES / "deploy_lock.py"), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout)


def test_deploy_lock_refuses_a_second_holder_and_hands_over_a_stale_one(tmp_path: Path) -> None:
    path = str(tmp_path / "deploy.json")
    first = json.dumps({"controller": "ctl", "pid": 100, "started": "2026-01-01T00:00:00Z"})
    second = json.dumps({"controller": "ctl", "pid": 200, "started": "2026-01-01T00:01:00Z"})
    assert lock("acquire", path, first)[0] == 0
    assert lock("acquire", path, first) == (0, {"changed": False, "holder": json.loads(first)})
    code, report = lock("acquire", path, second)
    assert code == 3 and report["holder"] == json.loads(first)
    # Another stale holder than the one in the file changes nothing.
    assert lock("acquire", path, second, "--stale", second)[0] == 3
    assert lock("acquire", path, second, "--stale", first)[0] == 0
    assert lock("release", path, first)[1]["changed"] is False
    assert lock("release", path, second)[1]["changed"] is True
    assert not (tmp_path / "deploy.json").exists()


def tree_hash(root: Path) -> str:
    completed = subprocess.run(
        [sys.executable, str(FILES / "tree_hash.py"), str(root)], capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def test_tree_hash_follows_content_names_and_exec_bits_only(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    app = tmp_path / "backend" / "app.py"
    app.write_text("print('a')\n")
    first = tree_hash(tmp_path)

    (tmp_path / "backend" / "__pycache__").mkdir()
    (tmp_path / "backend" / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\0")
    (tmp_path / "backend" / "app.py~").write_text("editor backup")
    assert tree_hash(tmp_path) == first

    os.chmod(app, 0o755)
    executable = tree_hash(tmp_path)
    assert executable != first

    app.write_text("print('b')\n")
    assert tree_hash(tmp_path) not in {first, executable}


def test_start_live_names_each_deployed_services_live_colour(tmp_path: Path) -> None:
    # start-live has no .py suffix (it is installed as a command), so it is loaded by path.
    loader = importlib.machinery.SourceFileLoader("start_live", str(FILES / "start-live"))
    start_live = importlib.util.module_from_spec(importlib.util.spec_from_loader("start_live", loader))
    loader.exec_module(start_live)
    (tmp_path / "backend.json").write_text(json.dumps({"live": "green", "good": ["r1"]}))
    (tmp_path / "frontend.json").write_text(json.dumps({"live": "blue"}))
    (tmp_path / "infrastructure.json").write_text(json.dumps({"pending": {"colour": "blue"}}))
    services = ["backend", "frontend", "infrastructure", "never-deployed"]
    programs = start_live.live_programs(str(tmp_path), services)
    assert programs == ["barestack-backend-green", "barestack-frontend-blue"]


def test_gate_checks_a_colour_on_its_own_tls_port_against_the_project_ca(tmp_path: Path) -> None:
    # With Nginx on another host each colour answers the gate on a loopback TLS port of its own.
    import ssl

    tls = make_tls_files(tmp_path)
    ca, certificate, key = tls.ca, tls.certificate, tls.key
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    target = f"https://127.0.0.1:{httpd.server_address[1]}|/api"
    try:
        code, report = gate("--cafile", str(ca), "--check", f"{target}|/ok=200", "--deadline", "3")
        assert code == 0, report
        # Without the project CA the certificate is not trusted: the gate fails, naming the check.
        code, report = gate("--check", f"{target}|/ok=200", "--deadline", "1", "--interval", "0.2")
        assert code == 1
        assert report["failed"][0]["path"] == "/api/ok"
        assert "CERTIFICATE_VERIFY_FAILED" in str(report["failed"][0]["got"])
    finally:
        httpd.shutdown()
