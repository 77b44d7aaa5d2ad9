"""One stderr line per request (journald collects it): method, path, status, duration.

The only access log of the web services: gunicorn runs without ``--access-logfile``, so each
request is one journal line, with the proxied prefix, no query string and a priority.

The only module here that needs Flask: it hooks into the app it is given, so it is imported
by the app factories alone (the worker never loads it, nor Flask through it).
"""

import logging
import time

from flask import Flask, Response, g, request

from barestack_common import log_setup


def install(app: Flask, package: str) -> None:
    """Log every request of ``app`` through ``package``'s logger (see ``log_setup.configure``)."""
    log_setup.configure(package)
    logger = logging.getLogger(log_setup.request_logger_name(package))

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.get("request_started")
        duration_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        # Server errors are warnings, so they show among a unit's recent errors on the dashboard.
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        if not logger.isEnabledFor(level):
            return response
        # The query string is left out on purpose: it is user input and may carry anything.
        # The record is made directly: logger.log() would also walk the stack to find its caller
        # (a few percent of a small request), which no formatter here shows.
        record = logger.makeRecord(
            logger.name,
            level,
            __file__,
            0,
            "%s %s%s %d %.1fms from=%s",
            (
                request.method,
                request.script_root,
                request.path,
                response.status_code,
                duration_ms,
                request.remote_addr or "-",
            ),
            None,
        )
        logger.handle(record)
        return response
