"""Log lines: bare request lines, and priorities that journald understands; which requests get one."""

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from barestack_common.env import ConfigError
from barestack_common.log_setup import JournalFormatter, request_logger_name
from flask import Flask
from flask.testing import FlaskClient
from svc_testkit.ports import free_port


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("name", "level", "message", "expected"),
    [
        ("barestack_backend.request", logging.INFO, "GET /health 200 1.0ms", "<6>GET /health 200 1.0ms"),
        ("barestack_backend.request", logging.WARNING, "GET /health 503 2.0ms", "<4>GET /health 503 2.0ms"),
        (
            "barestack_backend.worker",
            logging.WARNING,
            "retrying",
            "<4>WARNING barestack_backend.worker: retrying",
        ),
        (
            "barestack_backend.errors",
            logging.ERROR,
            "unhandled X",
            "<3>ERROR barestack_backend.errors: unhandled X",
        ),
    ],
)
def test_under_journald_lines_carry_their_priority(
    name: str, level: int, message: str, expected: str
) -> None:
    formatter = JournalFormatter(journal=True, request_logger=request_logger_name("barestack_backend"))
    assert formatter.format(record(name, level, message)) == expected


def test_outside_journald_lines_are_plain() -> None:
    formatter = JournalFormatter(journal=False, request_logger=request_logger_name("barestack_backend"))
    assert formatter.format(record("barestack_backend.request", logging.INFO, "GET / 200")) == "GET / 200"
    assert (
        formatter.format(record("barestack_backend.worker", logging.INFO, "x"))
        == "INFO barestack_backend.worker: x"
    )


class Records(logging.Handler):
    """The request logger's records, with their levels (stderr shows the level only under journald)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def request_records() -> Iterator[Records]:
    logger = logging.getLogger(request_logger_name("barestack_backend"))
    handler = Records()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def backend_client(environ: dict[str, str]) -> FlaskClient:
    from barestack_backend.app import create_app
    from barestack_backend.settings import Settings

    return create_app(Settings.from_env(environ)).test_client()


def request_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if REQUEST_LINE.fullmatch(line)]


REQUEST_LINE = re.compile(r"(GET|POST|PUT|DELETE|HEAD) /\S* [0-9]{3} [0-9.]+ms from=\S+")


def test_fast_answers_write_no_line(
    backend_env: dict[str, str], capsys: pytest.CaptureFixture[str], request_records: Records
) -> None:
    # Nginx's access log has every request; the journal only what an operator must look at.
    client = backend_client(backend_env)
    capsys.readouterr()
    assert client.get("/health").status_code == 200
    assert client.get("/runs").status_code == 401
    assert client.get("/no-such-page").status_code == 404
    assert request_lines(capsys.readouterr().err) == []
    assert request_records.records == []


def test_a_server_error_is_a_warning_line(
    backend_env: dict[str, str], capsys: pytest.CaptureFixture[str], request_records: Records
) -> None:
    # Redis on a port nothing listens on: /health answers 503, however fast.
    client = backend_client({**backend_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    capsys.readouterr()
    assert client.get("/health").status_code == 503
    assert re.fullmatch(r"GET /health 503 [0-9.]+ms from=\S+", *request_lines(capsys.readouterr().err))
    assert [record.levelno for record in request_records.records] == [logging.WARNING]


def test_a_slow_request_is_a_line_without_its_query_string(
    backend_env: dict[str, str], capsys: pytest.CaptureFixture[str], request_records: Records
) -> None:
    # Every request takes at least 0 s: a threshold of 0 logs them all (an operator's escape hatch).
    client = backend_client({**backend_env, "BARESTACK_SLOW_REQUEST_SECONDS": "0"})
    capsys.readouterr()
    assert client.get("/health").status_code == 200
    assert client.get("/runs?limit=5&secret=hunter2").status_code == 401
    err = capsys.readouterr().err
    lines = request_lines(err)
    assert re.fullmatch(r"GET /health 200 [0-9.]+ms from=\S+", lines[0]), lines
    assert re.fullmatch(r"GET /runs 401 [0-9.]+ms from=\S+", lines[1]), lines
    assert len(lines) == 2
    assert "hunter2" not in err
    # Slowness is not an error: these stay at INFO, out of the dashboard's recent warnings.
    assert [record.levelno for record in request_records.records] == [logging.INFO, logging.INFO]


def test_a_request_over_the_threshold_is_a_line_with_its_whole_duration(
    capsys: pytest.CaptureFixture[str], request_records: Records
) -> None:
    # The duration is the metrics middleware's: from the request reaching the app to its answer.
    from barestack_common import metrics, request_log

    app = Flask(__name__)
    request_log.install(app, package="barestack_backend", slow_s=0.05)

    @app.get("/slow")
    def slow() -> str:
        time.sleep(0.08)
        return "slow"

    @app.get("/fast")
    def fast() -> str:
        return "fast"

    metrics.install(app, environ={})
    client = app.test_client()
    capsys.readouterr()
    assert client.get("/fast").status_code == 200
    assert client.get("/slow").status_code == 200
    (line,) = request_lines(capsys.readouterr().err)
    method, path, status, duration, _ = line.split()
    assert (method, path, status) == ("GET", "/slow", "200")
    assert 80 <= float(duration.removesuffix("ms")) < 1000
    assert [record.levelno for record in request_records.records] == [logging.INFO]


@pytest.mark.parametrize("value", ["-1", "soon", "3601"])
def test_a_bad_threshold_names_its_variable(backend_env: dict[str, str], value: str) -> None:
    from barestack_backend.settings import Settings

    with pytest.raises(ConfigError, match="BARESTACK_SLOW_REQUEST_SECONDS"):
        Settings.from_env({**backend_env, "BARESTACK_SLOW_REQUEST_SECONDS": value})


def test_every_web_service_takes_the_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from barestack_frontend.app import create_app as create_frontend
    from barestack_frontend.settings import Settings as FrontendSettings
    from barestack_infrastructure.app import create_app as create_dashboard
    from barestack_infrastructure.settings import Settings as DashboardSettings

    # Neither app calls anything to answer a 404; no accounts file means no login.
    frontend = {"BACKEND_API_URL": "http://127.0.0.1:9", "BARESTACK_ACCOUNTS_FILE": str(tmp_path / "none")}
    dashboard = {
        "BACKEND_URL": "http://127.0.0.1:9",
        "FRONTEND_URL": "http://127.0.0.1:9",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "BARESTACK_ACCOUNTS_FILE": str(tmp_path / "none"),
    }
    for threshold, expected in (("", 0), ("0", 2)):
        clients = [
            create_frontend(
                FrontendSettings.from_env({**frontend, "BARESTACK_SLOW_REQUEST_SECONDS": threshold})
            ),
            create_dashboard(
                DashboardSettings.from_env({**dashboard, "BARESTACK_SLOW_REQUEST_SECONDS": threshold})
            ),
        ]
        capsys.readouterr()
        for app in clients:
            assert app.test_client().get("/no-such-page").status_code == 404
        assert len(request_lines(capsys.readouterr().err)) == expected, threshold
