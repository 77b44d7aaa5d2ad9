"""The kept-serializer session interface opens the same sessions as Flask's own.

No database: a bare app with the same session settings, requests with and without cookies.
"""

import pytest
from barestack_common.auth import COOKIE_NAME, KeptSerializerSessions
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

SECRET = "s" * 40


def signed_cookie(data: dict[str, str]) -> str:
    app = Flask(__name__)
    app.secret_key = SECRET
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return str(serializer.dumps(data))


def opened(interface: SecureCookieSessionInterface, secret: str | None, cookie: str | None) -> object:
    app = Flask(__name__)
    app.secret_key = secret
    app.config["SESSION_COOKIE_NAME"] = COOKIE_NAME
    headers = {"Cookie": cookie} if cookie is not None else {}
    with app.test_request_context("/", headers=headers) as context:
        session = interface.open_session(app, context.request)
    return None if session is None else (type(session), dict(session))


@pytest.mark.parametrize("secret", [SECRET, None])
@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "",
        "other=1",
        f"{COOKIE_NAME}=",
        f"{COOKIE_NAME}=forged.value.sig",
        f"{COOKIE_NAME}={signed_cookie({'user': 'alice'})}",
        f"a=1; {COOKIE_NAME}={signed_cookie({'csrf': 'token'})}",
    ],
)
def test_a_request_opens_the_session_flask_opens(secret: str | None, cookie: str | None) -> None:
    expected = opened(SecureCookieSessionInterface(), secret, cookie)
    assert opened(KeptSerializerSessions(), secret, cookie) == expected
    if secret is not None and cookie is not None and "alice" in cookie:
        assert expected == (SecureCookieSessionInterface.session_class, {"user": "alice"})
