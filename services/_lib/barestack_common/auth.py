"""Who is logged in, for the frontend and the dashboard alike: accounts file, session cookie, CSRF.

- **Accounts** live in a JSON file (``BARESTACK_ACCOUNTS_FILE``, default
  ``/etc/barestack/accounts.json``) written by ``python -m barestack_frontend.accounts sync``::

      {"users": {"alice": {"password_hash": "scrypt:...", "operator": true}}}

  It is re-read whenever its mtime, size or inode change, so an account removed from it is
  logged out on its next request, in every process.
- **The session** is Flask's signed cookie ``barestack_session`` (path ``/``, HttpOnly,
  SameSite=Lax, Secure when ``BARESTACK_COOKIE_SECURE=1``), signed with ``SECRET_KEY``. The
  frontend sets it at ``/login``; the dashboard, served at ``/infra/`` of the same site, reads it.
  It holds the user name, the login time (sessions end 8 h after login, however active), a
  fingerprint of the password hash (changing a password logs that user out everywhere) and the
  CSRF token; never the operator flag, which is read from the accounts file on every request.
- **CSRF**: every form carries the session's token in a hidden ``csrf_token`` field, compared
  with :func:`hmac.compare_digest`; only form encodings are accepted for posts.

Flask and werkzeug are imported here, so like ``request_log`` this module is only imported by the
web apps (and the accounts CLI, which runs with the frontend's venv).
"""

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Request, Response, abort, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.security import check_password_hash, generate_password_hash

from barestack_common import env

ACCOUNTS_FILE_ENV = "BARESTACK_ACCOUNTS_FILE"
DEFAULT_ACCOUNTS_FILE = "/etc/barestack/accounts.json"
COOKIE_NAME = "barestack_session"
SESSION_LIFETIME = timedelta(hours=8)
DEFAULT_MAX_BODY_BYTES = 65536
MIN_SECRET_KEY_LENGTH = 32
MIN_PASSWORD_LENGTH = 12
USERNAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
PASSWORD_HASH_METHOD = "scrypt"
# Where a person logs in: the frontend, at the site's root (the dashboard links there from /infra/).
LOGIN_PATH = "/login"
CSRF_FIELD = "csrf_token"
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
EXTENSION_KEY = "barestack_common.auth"

log = logging.getLogger("barestack_common.auth")


class AccountsError(ValueError):
    """The accounts file (or a list of accounts) is not in the expected form."""


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str = field(repr=False)
    operator: bool = False


def parse_accounts(document: Any) -> dict[str, Account]:
    """The accounts of a parsed accounts file; anything malformed is an ``AccountsError``."""
    if not isinstance(document, dict) or not isinstance(document.get("users"), dict):
        raise AccountsError('the accounts file must be a JSON object with a "users" object')
    accounts: dict[str, Account] = {}
    for name, entry in document["users"].items():
        if not USERNAME.fullmatch(name):
            raise AccountsError(f"invalid user name {name[:40]!r}")
        if not isinstance(entry, dict) or not isinstance(entry.get("password_hash"), str):
            raise AccountsError(f"user {name!r} has no password_hash")
        operator = entry.get("operator", False)
        if not isinstance(operator, bool):
            raise AccountsError(f"user {name!r}: operator must be true or false")
        accounts[name] = Account(name, entry["password_hash"], operator)
    return accounts


def accounts_document(accounts: Mapping[str, Account]) -> dict[str, Any]:
    """The JSON document of an accounts file (users sorted by name)."""
    return {
        "users": {
            name: {"password_hash": accounts[name].password_hash, "operator": accounts[name].operator}
            for name in sorted(accounts)
        }
    }


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


_dummy_hash_lock = threading.Lock()
_dummy_hash: str | None = None


def _dummy_password_hash() -> str:
    """A hash nobody's password matches, checked for unknown users so they take as long as known ones."""
    global _dummy_hash
    with _dummy_hash_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(24))
        return _dummy_hash


class Accounts:
    """The accounts file, re-read when it changes; a missing or broken file means nobody can log in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._accounts: dict[str, Account] = {}

    def exists(self) -> bool:
        return self.path.exists()

    def _current(self) -> dict[str, Account]:
        try:
            stat = self.path.stat()
        except OSError:
            stamp = None
        else:
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._accounts = self._load() if stamp is not None else {}
                self._stamp = stamp
            return self._accounts

    def _load(self) -> dict[str, Account]:
        try:
            return parse_accounts(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            # ValueError covers JSON errors and AccountsError; the file's content is never logged.
            log.error("accounts file %s cannot be used, nobody can log in: %s", self.path, _reason(error))
            return {}

    def get(self, name: str) -> Account | None:
        return self._current().get(name)

    def authenticate(self, name: str, password: str) -> Account | None:
        account = self.get(name)
        if account is None:
            check_password_hash(_dummy_password_hash(), password)
            return None
        return account if check_password_hash(account.password_hash, password) else None


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return error.strerror or error.__class__.__name__
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON (line {error.lineno})"
    return str(error)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise env.ConfigError(f"environment variable {name} must be 1 or 0, got {raw!r}")


@dataclass(frozen=True)
class AuthSettings:
    """Session and account settings, shared by the frontend and the dashboard."""

    accounts_file: Path = Path(DEFAULT_ACCOUNTS_FILE)
    secret_key: str | None = field(default=None, repr=False)
    cookie_secure: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "AuthSettings":
        accounts_file = Path(env.optional(environ, ACCOUNTS_FILE_ENV, DEFAULT_ACCOUNTS_FILE))
        secret_key = environ.get("SECRET_KEY", "").strip() or None
        if secret_key is None and accounts_file.exists():
            raise env.ConfigError(
                f"environment variable SECRET_KEY is not set, but the accounts file {accounts_file} exists: "
                "login sessions cannot be signed without it (give it at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters, the same for the frontend and the dashboard)"
            )
        if secret_key is not None and len(secret_key) < MIN_SECRET_KEY_LENGTH:
            raise env.ConfigError(
                f"environment variable SECRET_KEY is too short: it needs at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters"
            )
        return cls(
            accounts_file=accounts_file,
            secret_key=secret_key,
            cookie_secure=_flag(environ, "BARESTACK_COOKIE_SECURE"),
            max_body_bytes=env.positive_int(environ, "BARESTACK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        )


class KeptSerializerSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key, not per request.

    Flask builds it on every request, visitors without a cookie included (and building it encodes
    a probe value to learn its type): a tenth of a cached page view. It depends only on the
    secret key and its fallbacks, so it is kept until they change; it holds no per-request state.
    A request without a Cookie header gets its empty session without parsing cookies.
    """

    def __init__(self) -> None:
        self._kept: tuple[tuple[object, ...], URLSafeTimedSerializer | None] | None = None

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # No Cookie header at all (most anonymous visitors): the empty session Flask would find,
        # without request.cookies, which looks for the header by walking the whole environ.
        if "HTTP_COOKIE" not in request.environ and self.get_signing_serializer(app) is not None:
            return self.session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        kept = self._kept  # one read: another thread may replace it meanwhile, never half of it
        if kept is None or kept[0] != key:
            kept = (key, super().get_signing_serializer(app))
            self._kept = kept
        return kept[1]


def install(app: Flask, settings: AuthSettings) -> Accounts:
    """Session cookie, body limit, the template helpers ``current_user()`` and ``csrf_token()``, and
    the templates both apps include (``barestack_head.html``), after the app's own."""
    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(Path(__file__).parent / "templates")])
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/",  # the frontend at / and the dashboard at /infra/ share it
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The cookie is written when the session changes (login, logout, CSRF token), never just
        # re-signed on each request: the 8 hours count from the login.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_body_bytes,
    )
    app.session_interface = KeptSerializerSessions()
    accounts = Accounts(settings.accounts_file)
    app.extensions[EXTENSION_KEY] = accounts
    app.add_template_global(current_user)
    app.add_template_global(csrf_token)
    app.add_template_global(login_enabled)

    @app.after_request
    def _private_when_logged_in(response: Response) -> Response:
        # What a logged-in person sees (runs, their name, a CSRF token) is for their browser only.
        if g._get_current_object().get("barestack_user") is not None:  # type: ignore[attr-defined]
            response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    return accounts


def accounts() -> Accounts:
    return current_app.extensions[EXTENSION_KEY]


def login_enabled() -> bool:
    """Sessions need a secret key; without one (and so without an accounts file) nobody logs in."""
    return bool(current_app._get_current_object().secret_key)  # type: ignore[attr-defined]


def _fingerprint(account: Account) -> str:
    """Ties a session to the password it was opened with, without putting the hash in the cookie."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, account.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def current_user() -> Account | None:
    """The logged-in account, checked against the accounts file now; otherwise None (and logged out)."""
    # Asked on every page view: g is looked up once (each read through the proxy walks the context).
    found = g._get_current_object()  # type: ignore[attr-defined]
    if "barestack_user" in found:
        return found.barestack_user  # type: ignore[no-any-return]
    user: Account | None = None
    if login_enabled():
        name = session.get("user")
        if isinstance(name, str):
            account = accounts().get(name)
            logged_in_at = session.get("at")
            fresh = isinstance(logged_in_at, int) and 0 <= time.time() - logged_in_at < (
                SESSION_LIFETIME.total_seconds()
            )
            if account is not None and fresh and session.get("pw") == _fingerprint(account):
                user = account
            else:
                session.clear()  # removed, password changed or expired: logged out
    found.barestack_user = user
    return user


def log_in(account: Account) -> None:
    session.clear()  # a fresh session (and CSRF token) at login: no session fixation
    session.permanent = True
    session["user"] = account.name
    session["at"] = int(time.time())
    session["pw"] = _fingerprint(account)
    session["csrf"] = secrets.token_urlsafe(32)
    g.barestack_user = account


def log_out() -> None:
    session.clear()
    g.barestack_user = None


def csrf_token() -> str:
    """The session's CSRF token (created on first use), for a hidden ``csrf_token`` form field."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_form_post() -> None:
    """A post must be a form (not text/plain or JSON) and carry this session's CSRF token."""
    if request.mimetype not in FORM_TYPES:
        abort(400, description="This address only accepts form posts from this site's pages.")
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD, "")
    valid = isinstance(expected, str) and bool(expected)
    if not valid or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        abort(
            403,
            description="The form has expired or was not sent from this site's pages. "
            "Reload the page and try again.",
        )


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site (``/...``), else None: no open redirect."""
    if not target or len(target) > 2048 or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def login_url(next_path: str, login_path: str = LOGIN_PATH) -> str:
    return f"{login_path}?next={quote(next_path, safe='/')}"


def requested_path() -> str:
    """The path (and query) the browser asked for, with the proxy's prefix: where to come back after login."""
    query = request.query_string.decode("latin-1")
    return f"{request.script_root}{request.path}" + (f"?{query}" if query else "")
