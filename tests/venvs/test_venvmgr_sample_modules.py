"""The sample modules do their jobs, run through run_module.sh in their venvs, against real services."""

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from venvmgr_testkit import Layout


@pytest.fixture(scope="module")
def samples(built_samples: tuple[Layout, dict[str, Any]]) -> Layout:
    return built_samples[0]


def env_file(tmp_path: Path, **settings: str) -> Path:
    path = tmp_path / "barestack.env"
    path.write_text("".join(f"{name}='{value}'\n" for name, value in settings.items()))
    path.chmod(0o600)
    return path


def test_a003_reports_tables_and_runs_from_postgresql(samples: Layout, pg_url: str, tmp_path: Path) -> None:
    connection = psycopg2.connect(pg_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO barestack.runs (id, service, module, status) VALUES "
            "(gen_random_uuid(), 'backend', 'a-001', 'succeeded'),"
            "(gen_random_uuid(), 'backend', 'a-001', 'failed'),"
            "(gen_random_uuid(), 'backend', 'a-002', 'succeeded')"
        )
    connection.close()
    password = psycopg2.extensions.parse_dsn(pg_url)["password"]

    result = samples.run_module("backend/a-003", env_file=env_file(tmp_path, DATABASE_URL=pg_url))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tables"]["barestack.runs"] == 3
    assert report["runs"] == {"total": 3, "by_status": {"failed": 1, "succeeded": 2}}
    assert password not in result.stdout + result.stderr


def test_a003_fails_clearly_without_database(samples: Layout, tmp_path: Path) -> None:
    missing = samples.run_module("backend/a-003")
    assert missing.returncode == 2
    assert "DATABASE_URL is not set" in missing.stderr
    unreachable_url = "postgresql://app:s3cret-pw@127.0.0.1:9/none"
    down = samples.run_module("backend/a-003", env_file=env_file(tmp_path, DATABASE_URL=unreachable_url))
    assert down.returncode == 1
    assert "cannot connect to PostgreSQL" in down.stderr and "s3cret-pw" not in down.stderr


def test_a004_counts_runs_in_redis(samples: Layout, redis_url: str, tmp_path: Path) -> None:
    settings = env_file(tmp_path, REDIS_URL=redis_url)
    first = samples.run_module("backend/a-004", "app.py", "smoke", env_file=settings)
    second = samples.run_module("backend/a-004", "app.py", "smoke", env_file=settings)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counter"] == "barestack:counter:smoke"
    assert (json.loads(first.stdout)["value"], json.loads(second.stdout)["value"]) == (1, 2)
    bad_name = samples.run_module("backend/a-004", "app.py", "no spaces", env_file=settings)
    assert bad_name.returncode == 2


def test_a002_matches_a_specifier(samples: Layout) -> None:
    result = samples.run_module("backend/a-002", "app.py", ">=1.0,<2", "0.9", "1.5", "2.0")
    assert json.loads(result.stdout)["matching"] == ["1.5"]
    assert samples.run_module("backend/a-002", "app.py", "=>1").returncode == 2


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        body = json.dumps({"status": "ok" if status == 200 else "down"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backend_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_ui001_probes_backend_health(samples: Layout, backend_url: str, tmp_path: Path) -> None:
    settings = env_file(tmp_path, BACKEND_API_URL=backend_url)
    healthy = samples.run_module("frontend/ui-001", env_file=settings)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["body"] == {"status": "ok"}
    degraded = samples.run_module("frontend/ui-001", "app.py", "/ready", env_file=settings)
    assert degraded.returncode == 1 and json.loads(degraded.stdout)["status"] == 503


def test_ui002_fingerprints_assets(samples: Layout, tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_text("body { margin: 0 }\n")
    (tmp_path / ".hidden").write_text("x")
    result = samples.run_module("frontend/ui-002", "app.py", str(tmp_path))
    report = json.loads(result.stdout)
    assert report["count"] == 1 and list(report["files"]) == ["css/site.css"]
    assert len(report["files"]["css/site.css"]) == 12
    assert samples.run_module("frontend/ui-002", "app.py", str(tmp_path / "nope")).returncode == 2


def test_ui003_escapes_everything_it_renders(samples: Layout) -> None:
    rows = json.dumps([{"module": "a-001", "status": "<script>x</script>"}, {"extra": 1}])
    result = samples.run_module("frontend/ui-003", "app.py", "Runs & results", stdin=rows)
    assert result.returncode == 0, result.stderr
    assert "<caption>Runs &amp; results</caption>" in result.stdout
    assert "<th>module</th><th>status</th><th>extra</th>" in result.stdout
    assert "&lt;script&gt;x&lt;/script&gt;" in result.stdout and "<script>" not in result.stdout
    assert samples.run_module("frontend/ui-003", stdin='{"not": "a list"}').returncode == 2


def test_infra001_reports_disk_and_memory(samples: Layout, tmp_path: Path) -> None:
    result = samples.run_module("infrastructure/infra-001", "app.py", "--max-percent", "100", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["memory"]["total_bytes"] > report["memory"]["available_bytes"] > 0
    assert report["disks"][0]["path"] == str(tmp_path) and report["disks"][0]["total_bytes"] > 0
    strict = samples.run_module("infrastructure/infra-001", "app.py", "--max-percent", "0.001", str(tmp_path))
    assert strict.returncode == 1 and json.loads(strict.stdout)["disks"][0]["over_limit"] is True
    assert samples.run_module("infrastructure/infra-001", "app.py", "/no/such/path").returncode == 2


def test_infra002_checks_ports(samples: Layout) -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        open_target = f"127.0.0.1:{listening.getsockname()[1]}"
        closed_target = f"127.0.0.1:{closed.getsockname()[1]}"
        both = samples.run_module("infrastructure/infra-002", "app.py", open_target, closed_target)
    assert both.returncode == 1
    checks = json.loads(both.stdout)["checks"]
    assert [(check["target"], check["open"]) for check in checks] == [
        (open_target, True),
        (closed_target, False),
    ]
    assert samples.run_module("infrastructure/infra-002", "app.py", "no-port").returncode == 2
