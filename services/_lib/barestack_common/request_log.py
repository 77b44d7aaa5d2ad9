"""A stderr line (journald collects it) for the requests an operator needs to see: method, path,
status, duration.

Nginx's access log is the complete per-request record (buffered, every request, with its status
and time). The apps add a journal line only where they know more than Nginx or where it matters:

- **server errors** (5xx), at WARNING, so they show among a unit's recent errors on the dashboard
  (``journalctl -p warning``), next to the traceback ``errors`` logs for an unhandled one;
- **slow requests**: those that took at least ``slow_s`` seconds (``BARESTACK_SLOW_REQUEST_SECONDS``,
  0.5 by default), at INFO, whatever their status. 0 logs every request, as before.

Fast 2xx, 3xx and 4xx get no line. A journal line per request cost about an eighth of a small
request (the line, then journald storing it), and under load journald's rate limit dropped most
of them anyway, so the journal was neither complete nor cheap. 4xx are left to Nginx's log on
purpose: they are the client's doing, and scanners and unauthenticated pollers make them in bulk,
which would bring the rate limit back. A slow request stays at INFO: slowness is not an error,
and a threshold of 0 must not turn every request into a warning.

A request's duration is counted from the moment ``metrics``' middleware (installed by every app
factory, outermost) received it, the clock its histogram reads: the log and ``/metrics`` agree,
and no before-request hook runs on every request just to read the time.

Each line carries the proxied prefix, no query string and a priority. The only module here that
needs Flask besides ``auth``: it hooks into the app it is given, so it is imported by the app
factories alone (the worker never loads it, nor Flask through it).
"""

import logging
import time

from flask import Flask, Response, request

from barestack_common import log_setup, metrics


def install(app: Flask, package: str, slow_s: float) -> None:
    """Log ``app``'s server errors and requests of ``slow_s`` seconds or more through ``package``'s
    logger (see ``log_setup.configure``)."""
    log_setup.configure(package)
    logger = logging.getLogger(log_setup.request_logger_name(package))
    perf_counter = time.perf_counter

    @app.after_request
    def _log_request(response: Response) -> Response:
        # The request object itself: an attribute read through the proxy costs ~0.9 us, on it ~0.15.
        started = request._get_current_object().environ.get(metrics.STARTED_KEY)  # type: ignore[attr-defined]
        duration_s = perf_counter() - started if started is not None else 0.0
        status = response.status_code
        if status >= 500:
            level = logging.WARNING
        elif duration_s >= slow_s:
            level = logging.INFO
        else:
            return response  # the common case: Nginx's access log has it
        if not logger.isEnabledFor(level):
            return response
        # The query string is left out on purpose: it is user input and may carry anything.
        # The record is made directly: logger.log() would also walk the stack to find its caller,
        # which no formatter here shows.
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
                status,
                duration_s * 1000,
                request.remote_addr or "-",
            ),
            None,
        )
        logger.handle(record)
        return response
