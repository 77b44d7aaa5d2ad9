"""Every error the API returns is JSON: ``{"error": <what>, "detail": <why>}``.

Database trouble is told to the client as a plain "database unavailable": driver messages name
hosts, users and ports, so they go to the log (credentials redacted) and nowhere else.
"""

import logging
from collections.abc import Iterable, Mapping

from barestack_common.redact import describe_error
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("barestack_backend.errors")

DATABASE_UNAVAILABLE = "database unavailable"
TRY_LATER = "the run database cannot be reached; try again later"


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})


def log_database_error(error: BaseException, secrets: Iterable[str]) -> None:
    reason = describe_error(error, secrets)
    log.warning("%s: %s: %s", DATABASE_UNAVAILABLE, reason["error"], reason["message"])


def database_unavailable(error: BaseException, secrets: Iterable[str]) -> ApiError:
    log_database_error(error, secrets)
    return ApiError(503, DATABASE_UNAVAILABLE, TRY_LATER)


def error_response(
    status: int, error: str, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> tuple[Response, int]:
    body: dict[str, str] = {"error": error}
    if detail:
        body["detail"] = detail
    response = jsonify(body)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response, status


def install(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return error_response(error.status, error.error, error.detail, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        # Every werkzeug/Flask HTTP error (404 path, 405 method, 413 body, 400 bad request...) as
        # JSON, keeping its own headers (Allow on a 405, say) but not its HTML content type.
        headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        return error_response(error.code or 500, (error.name or "error").lower(), error.description, headers)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        # Only the class name goes out and to the log: messages may quote connection strings.
        log.error("unhandled %s", error.__class__.__name__)
        return error_response(500, "internal server error")
