"""Error pages: a person sees what went wrong in words, never a traceback."""

import logging

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from barestack_frontend.backend_client import BackendUnauthorized, BackendUnavailable

log = logging.getLogger("barestack_frontend.errors")


def install(app: Flask) -> None:
    @app.errorhandler(BackendUnavailable)
    def _backend_down(error: BackendUnavailable) -> tuple[str, int]:
        log.warning("backend unavailable: %s", error)
        return (
            render_template(
                "error.html",
                title="The backend is not available",
                message="The module service is not answering right now, so modules cannot be listed or run. "
                "Try again in a moment.",
                detail=str(error),
            ),
            503,
        )

    @app.errorhandler(BackendUnauthorized)
    def _backend_refuses_us(error: BackendUnauthorized) -> tuple[str, int]:
        log.error("backend refused the frontend's token: %s", error)
        return (
            render_template(
                "error.html",
                title="The frontend may not use the backend",
                message="The module service refused this site's credentials, so modules cannot be listed "
                "or run. An administrator needs to check the frontend's API token.",
                detail=str(error),
            ),
            503,
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[str, int]:
        return (
            render_template("error.html", title=error.name, message=error.description, detail=None),
            error.code or 500,
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        log.error("unhandled %s", error.__class__.__name__)
        return (
            render_template(
                "error.html",
                title="Something went wrong",
                message="The page could not be shown.",
                detail=None,
            ),
            500,
        )
