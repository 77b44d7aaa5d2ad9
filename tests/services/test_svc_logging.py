"""Log lines: bare request lines, and priorities that journald understands."""

import logging

import pytest
from barestack_common.log_setup import JournalFormatter, request_logger_name


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


def test_each_request_is_one_line_without_its_query_string(
    backend_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    from barestack_backend.app import create_app
    from barestack_backend.settings import Settings

    client = create_app(Settings.from_env(backend_env)).test_client()
    capsys.readouterr()
    assert client.get("/health").status_code == 200
    assert client.get("/runs?limit=5&secret=hunter2").status_code == 401
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"GET /health 200 [0-9.]+ms from=\S+", lines[0]), lines
    assert re.fullmatch(r"GET /runs 401 [0-9.]+ms from=\S+", lines[1]), lines
    assert "hunter2" not in "\n".join(lines)
