"""Only operators see the dashboard page and /metrics; /health stays open for deploy gates.

The session is the frontend's login cookie (``barestack_common.auth``, path ``/``, so the browser
sends it to /infra/ too). Each request re-reads the account from the accounts file: an account
removed from it, or whose operator flag was taken away, loses access at once.
"""

from collections.abc import Callable
from functools import wraps
from typing import Literal, ParamSpec, TypeVar

from barestack_common import auth
from flask import Response, make_response, render_template

_P = ParamSpec("_P")
_R = TypeVar("_R")
Kind = Literal["html", "text"]  # the page's refusal is an HTML page, /metrics' is plain text


def _refusal(status: int, kind: Kind, logged_in: bool) -> Response:
    if kind == "text":
        message = (
            "403 Forbidden: operators only\n" if logged_in else "401 Unauthorized: log in as an operator\n"
        )
        response = make_response(message, status)
        response.mimetype = "text/plain"
    else:
        response = make_response(
            render_template(
                "login_required.html",
                logged_in=logged_in,
                login_href=auth.login_url(auth.requested_path()),
            ),
            status,
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def operator_required(kind: Kind) -> Callable[[Callable[_P, _R]], Callable[_P, _R | Response]]:
    """401 without a (still valid) login, 403 for a logged-in person who is not an operator."""

    def decorate(view: Callable[_P, _R]) -> Callable[_P, _R | Response]:
        @wraps(view)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R | Response:
            user = auth.current_user()
            if user is None:
                return _refusal(401, kind, logged_in=False)
            if not user.operator:
                return _refusal(403, kind, logged_in=True)
            response = make_response(view(*args, **kwargs))
            response.headers["Cache-Control"] = "no-store"  # what an operator saw is not for a shared cache
            return response

        return guarded

    return decorate
