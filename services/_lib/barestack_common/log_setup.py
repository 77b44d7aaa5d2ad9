"""Logging to stderr, where journald collects it, with the message priority journald understands.

Under systemd (JOURNAL_STREAM is set) each line starts with a ``<N>`` syslog priority prefix,
so ``journalctl -p warning`` (the dashboard's "recent errors") finds warnings and errors.
Request lines are bare ("GET /path 200 1.2ms ..."); other lines say their level and origin.
Only some requests get one (see ``request_log``): those slower than ``slow_request_seconds``
and server errors.

Each service configures the logger named after its own package (``barestack_backend``, ...),
so its modules' ``logging.getLogger("<package>.<part>")`` loggers write through it.
"""

import logging
import os
import sys
from collections.abc import Mapping

from barestack_common import env

# logging level -> syslog priority (sd-daemon(3) prefixes)
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_HANDLER_MARK = "_barestack_stderr"

# A request at least this slow gets a journal line whatever its status (0: every request does).
SLOW_REQUEST_ENV = "BARESTACK_SLOW_REQUEST_SECONDS"
DEFAULT_SLOW_REQUEST_S = 0.5
MAX_SLOW_REQUEST_S = 3600.0


def slow_request_seconds(environ: Mapping[str, str]) -> float:
    """The web services' slow-request threshold, from ``BARESTACK_SLOW_REQUEST_SECONDS``."""
    return env.seconds(environ, SLOW_REQUEST_ENV, DEFAULT_SLOW_REQUEST_S, 0, MAX_SLOW_REQUEST_S)


def request_logger_name(package: str) -> str:
    """The logger a package's request lines go to; the formatter leaves its lines bare."""
    return f"{package}.request"


class JournalFormatter(logging.Formatter):
    """Bare request lines, ``LEVEL origin: message`` otherwise, priority-prefixed under journald."""

    def __init__(self, journal: bool, request_logger: str) -> None:
        super().__init__()
        self.journal = journal
        self.request_logger = request_logger

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name != self.request_logger:
            message = f"{record.levelname} {record.name}: {message}"
        if self.journal:
            return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{message}"
        return message


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is logged, not when logging was set up
    (a server or test harness may replace it after start)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(package: str) -> logging.Logger:
    """Set up ``package``'s logger once; safe to call from every app factory and the worker."""
    logger = logging.getLogger(package)
    if not any(getattr(handler, _HANDLER_MARK, False) for handler in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(
            JournalFormatter(
                journal=bool(os.environ.get("JOURNAL_STREAM")), request_logger=request_logger_name(package)
            )
        )
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
