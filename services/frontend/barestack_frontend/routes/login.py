"""``/login`` and ``/logout``, and what every page uses to ask for a login or guard a form post.

Accounts, the session cookie and CSRF tokens are ``barestack_common.auth``'s (shared with the
dashboard, which reads the same cookie at /infra/).
"""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from barestack_common import auth
from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from barestack_frontend.same_origin import require_same_origin

blueprint = Blueprint("login", __name__)
FAILED = "The user name or password is wrong."
_P = ParamSpec("_P")
_R = TypeVar("_R")


def protect_form_post() -> None:
    """Every form post: from this site's pages (Origin/Sec-Fetch-Site), a form, with the CSRF token."""
    require_same_origin()
    auth.check_form_post()


def login_page(next_path: str | None, status: int, error: str | None = None, username: str = "") -> Response:
    response = make_response(
        render_template("login.html", next_path=next_path, error=error, username=username), status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def ask_for_login(next_path: str) -> Response:
    """The 401 page: this needs a login, with a link back here afterwards."""
    response = make_response(
        render_template(
            "login_required.html", login_href=url_for("login.login", next=auth.safe_next(next_path))
        ),
        401,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def login_required(view: Callable[_P, _R]) -> Callable[_P, _R | Response]:
    """Anonymous visitors get the 401 page; a GET comes back to itself after login, a post to the index."""

    @wraps(view)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R | Response:
        if auth.current_user() is None:
            back = auth.requested_path() if request.method in ("GET", "HEAD") else url_for("pages.index")
            return ask_for_login(back)
        return view(*args, **kwargs)

    return guarded


def _require_login_enabled() -> None:
    if not auth.login_enabled():
        abort(503, description="Logging in is not set up on this server (no accounts and no SECRET_KEY).")


@blueprint.get("/login")
def login() -> Response:
    _require_login_enabled()
    auth.csrf_token()  # the login form is a form post too: the session gets its token now
    return login_page(auth.safe_next(request.args.get("next")), 200)


@blueprint.post("/login")
def login_post() -> Response:
    _require_login_enabled()
    protect_form_post()
    next_path = auth.safe_next(request.form.get("next"))
    username = request.form.get("username", "").strip().lower()
    password = request.form.get("password", "")
    account = auth.accounts().authenticate(username, password) if username and password else None
    if account is None:
        # One message for an unknown user and a wrong password: nobody learns which names exist.
        return login_page(next_path, 401, FAILED, username[:64])
    auth.log_in(account)
    # 303: the browser follows with a GET; reloading does not post the password again.
    return redirect(next_path or url_for("pages.index"), code=303)


@blueprint.post("/logout")
def logout() -> Response:
    protect_form_post()
    auth.log_out()
    return redirect(url_for("pages.index"), code=303)
