"""Errors as short plain pages; unexpected ones are logged by class only (messages may hold secrets)."""

import logging

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

log = logging.getLogger("barestack_infrastructure.errors")


def install(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[str, int]:
        return render_template("error.html", title=error.name, message=error.description), error.code or 500

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        log.error("unhandled %s", error.__class__.__name__)
        return render_template(
            "error.html", title="Something went wrong", message="The page could not be shown."
        ), 500
