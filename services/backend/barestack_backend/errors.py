"""Every error the API returns is JSON: ``{"error": <what>, "detail": <why>}``."""

import logging
from collections.abc import Iterable

from barestack_common.redact import describe_error
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("barestack_backend.errors")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def database_unavailable(error: BaseException, secrets: Iterable[str]) -> ApiError:
    return ApiError(503, "database unavailable", describe_error(error, secrets)["message"])


def error_response(status: int, error: str, detail: str | None = None) -> tuple[Response, int]:
    body: dict[str, str] = {"error": error}
    if detail:
        body["detail"] = detail
    return jsonify(body), status


def install(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return error_response(error.status, error.error, error.detail)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        return error_response(error.code or 500, (error.name or "error").lower(), error.description)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        # Only the class name goes out and to the log: messages may quote connection strings.
        log.error("unhandled %s", error.__class__.__name__)
        return error_response(500, "internal server error")
