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
