"""Login accounts for the services' tests: a real accounts file and real logins through /login.

The file is written with the same code as ``python -m barestack_frontend.accounts`` writes it
(scrypt hashes); logging in goes through the frontend's form, CSRF token included.
"""

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from flask.testing import FlaskClient

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class User:
    name: str
    password: str = field(repr=False)
    operator: bool


OPERATOR = User("olga", "olga-operator-passphrase", operator=True)
PERSON = User("piet", "piet-plain-passphrase", operator=False)


@dataclass(frozen=True)
class AccountsFixture:
    path: Path
    secret_key: str = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The frontend's and the dashboard's login settings: the same file and key for both."""
        return {"BARESTACK_ACCOUNTS_FILE": str(self.path), "SECRET_KEY": self.secret_key}


def write_accounts(path: Path, users: list[User]) -> None:
    from barestack_common.auth import Account, accounts_document, hash_password

    accounts = {u.name: Account(u.name, hash_password(u.password), u.operator) for u in users}
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(accounts_document(accounts)), encoding="utf-8")
    temp.replace(path)  # a new inode, as the sync CLI's rename gives: the services notice the change


def make_accounts(directory: Path) -> AccountsFixture:
    path = directory / "accounts.json"
    write_accounts(path, [OPERATOR, PERSON])
    return AccountsFixture(path, secrets.token_urlsafe(48))


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def login(client: FlaskClient, user: User, next_path: str | None = None) -> None:
    """Log in through the form as a browser would; fails the test unless the login succeeds."""
    page = client.get("/login")
    assert page.status_code == 200, page.status_code
    data = {"username": user.name, "password": user.password, "csrf_token": csrf_from(page.get_data(True))}
    if next_path is not None:
        data["next"] = next_path
    response = client.post("/login", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)


def logged_in_cookie(frontend: FlaskClient, user: User) -> str:
    """The session cookie the frontend sets when ``user`` logs in, to hand to the dashboard."""
    login(frontend, user)
    cookie = frontend.get_cookie("barestack_session")
    assert cookie is not None and cookie.path == "/", "the frontend set no site-wide session cookie"
    return cookie.value


def session_cookie(env: dict[str, str], user: User) -> str:
    """A login session cookie for ``user``, made by a real frontend login with the env's accounts and key.

    For a dashboard test client: ``client.set_cookie("barestack_session", session_cookie(env, OPERATOR))``.
    """
    from barestack_frontend.app import create_app
    from barestack_frontend.settings import Settings

    frontend_env = {
        "BACKEND_API_URL": env.get("BACKEND_URL") or env.get("BACKEND_API_URL") or "http://127.0.0.1:9",
        "BARESTACK_ACCOUNTS_FILE": env["BARESTACK_ACCOUNTS_FILE"],
        "SECRET_KEY": env["SECRET_KEY"],
    }
    return logged_in_cookie(create_app(Settings.from_env(frontend_env)).test_client(), user)


def session_csrf(client: FlaskClient) -> str:
    """The CSRF token of the client's current session, as the pages put it in their forms."""
    with client.session_transaction() as session:
        return str(session["csrf"])
