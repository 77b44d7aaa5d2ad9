"""Who is calling: bearer tokens, people acting through a delegating token, and what each may do.

Every request but a few needs ``Authorization: Bearer <token>``, a token that
``python -m barestack_backend.tokens`` made (or imported) and did not revoke. Only
``GET /health``, ``GET /modules`` and ``GET /modules/<service>/<module>`` are open to anonymous
callers, and those then show no run data. A new route is closed unless it is added to
``ANONYMOUS_ENDPOINTS``: forgetting to protect a route cannot happen, only forgetting to open one.

A token created with ``--act-for-users`` (the frontend's) may name the person it acts for in
``X-Barestack-User``; runs then record that person as ``requested_by`` and the token as
``requested_via``. Any other token sending that header is refused (403).

A token is checked with one query on the pooled connection, through the unique index on
``token_hash``. A process then trusts a token it found live for ``BARESTACK_TOKEN_CACHE_SECONDS``
(1 s by default; 0 checks every request): a client making many calls costs one query per second
per process instead of one per call, and a revoked token is refused within that time. Unknown and
revoked tokens are never kept, so a new token works at once and guessing fills no memory.
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg2
from barestack_common import replay
from flask import Flask, Request, current_app, g, request
from psycopg2.extras import RealDictCursor

from barestack_backend import run_request
from barestack_backend.errors import DATABASE_UNAVAILABLE, ApiError, database_unavailable, log_database_error
from barestack_backend.services import current

TOKEN_PREFIX = "bst_"
TOKEN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
USER_HEADER = "X-Barestack-User"
USER_ENVIRON = "HTTP_" + USER_HEADER.upper().replace("-", "_")  # the header as WSGI names it
# token68 (RFC 7235), which is what a bearer token may be made of.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MAX_TOKEN_CHARS = 512
ANONYMOUS_ENDPOINTS = frozenset({"health.health", "modules.list_modules", "modules.get_module"})

_LOOKUP = (
    # One round trip: find the live token and, at most once a minute, note that it was used.
    "WITH hit AS (SELECT name, token_hash, act_for_users, last_used_at FROM barestack.api_tokens "
    "WHERE token_hash = %s AND revoked_at IS NULL), "
    "touch AS (UPDATE barestack.api_tokens AS t SET last_used_at = now() FROM hit WHERE t.name = hit.name "
    "AND (hit.last_used_at IS NULL OR hit.last_used_at < now() - interval '60 seconds')) "
    "SELECT name, token_hash, act_for_users FROM hit"
)


def hash_token(token: str) -> str:
    """SHA-256 in hex: enough for long random tokens (see the api_tokens migration)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def well_formed_token(token: str) -> bool:
    return len(token) <= MAX_TOKEN_CHARS and _TOKEN_CHARS.fullmatch(token) is not None


@dataclass(frozen=True)
class Identity:
    token: str  # the token's name
    user: str | None = None  # the person a delegating token acts for

    @property
    def requested_by(self) -> str:
        return self.user or self.token

    @property
    def requested_via(self) -> str | None:
        return self.token if self.user else None


class LookupFailed(Exception):
    """The token could not be checked because PostgreSQL did not answer."""


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="barestack"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def unauthenticated(detail: str, error: str | None = None) -> ApiError:
    return ApiError(401, "unauthenticated", detail, _challenge(error))


@dataclass(frozen=True)
class Token:
    name: str
    act_for_users: bool


def find_token(cur: RealDictCursor, token: str) -> Token | None:
    """The live token, or None for an unknown or revoked one."""
    digest = hash_token(token)
    cur.execute(_LOOKUP, (digest,))
    row = cur.fetchone()
    # The index found the row by equality already; compare_digest keeps the final check constant-time.
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return Token(name=row["name"], act_for_users=row["act_for_users"])


class TokenCache:
    """Tokens found live, by hash, each trusted for ``ttl_s`` after its check (per process)."""

    MAX_ENTRIES = 1024

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._found: dict[str, tuple[Token, float]] = {}  # digest -> (token, trusted until)
        self.lookups = 0  # queries made: what the cache exists to keep low

    def get(self, digest: str) -> tuple[Token, float] | None:
        """The token and until when (``time.monotonic()``) it is trusted; None if not or no longer."""
        with self._lock:
            kept = self._found.get(digest)
        if kept is None or time.monotonic() >= kept[1]:
            return None
        return kept

    def put(self, digest: str, token: Token) -> float:
        """Trust ``token`` for ``ttl_s`` from now; returns until when (now with a ttl of 0)."""
        until = time.monotonic() + self.ttl_s
        if self.ttl_s <= 0:
            return until
        with self._lock:
            if len(self._found) >= self.MAX_ENTRIES:
                self._found.clear()
            self._found[digest] = (token, until)
        return until


TOKEN_CACHE_KEY = "barestack_backend.tokens"


def token_cache() -> TokenCache:
    extensions = current_app._get_current_object().extensions  # type: ignore[attr-defined]
    cache = extensions.get(TOKEN_CACHE_KEY)
    if cache is None:
        # setdefault is atomic: concurrent first calls all end up with the one stored instance.
        cache = extensions.setdefault(TOKEN_CACHE_KEY, TokenCache(current().settings.token_cache_s))
    return cache


def _bearer_token(environ: dict[str, Any]) -> str | None:
    # From the WSGI environ, as request.headers would read it: its get() builds the key and, for
    # the anonymous callers that send none, catches a KeyError (a third of this check's time).
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated('send "Authorization: Bearer <token>"', "invalid_request")
    if not well_formed_token(token):
        raise unauthenticated("the bearer token is not valid", "invalid_token")
    return token


def authenticate(current_request: Request) -> Identity | None:
    """The caller's identity, None for an anonymous one; ApiError for a token that does not count."""
    environ = current_request.environ
    token = _bearer_token(environ)
    if token is None:
        return None
    cache = token_cache()
    digest = hash_token(token)
    kept = cache.get(digest)
    if kept is not None:
        found, trusted_until = kept
    else:
        try:
            # One statement (atomic alone): autocommit spares the BEGIN/COMMIT round trips per call.
            with current().database.cursor(autocommit=True) as cur:
                found = find_token(cur, token)
                cache.lookups += 1
        except psycopg2.Error as error:
            raise LookupFailed(error.__class__.__name__) from error
        if found is None:
            raise unauthenticated("the bearer token is unknown or revoked", "invalid_token")
        trusted_until = cache.put(digest, found)
    # An answer built for this token is not replayed to it past the time the token is trusted.
    replay.bound(environ, trusted_until)
    user = environ.get(USER_ENVIRON)  # request.headers.get(USER_HEADER), without building the key
    if user is None:
        return Identity(token=found.name)
    if not found.act_for_users:
        raise ApiError(403, "forbidden", f"token {found.name!r} may not act for users ({USER_HEADER})")
    if USER_NAME.fullmatch(user) is None:
        raise ApiError(400, "invalid user", f"{USER_HEADER} must match {USER_NAME.pattern}")
    return Identity(token=found.name, user=user)


def current_identity() -> Identity | None:
    return g._get_current_object().get("identity")  # type: ignore[attr-defined,no-any-return]


def hidden_runs() -> dict[str, object]:
    """What an endpoint open to anonymous callers says instead of run data."""
    failed = g.get("auth_unavailable")
    if failed:
        reason = {"error": failed, "message": DATABASE_UNAVAILABLE}
    else:
        reason = {"error": "unauthenticated", "message": "runs are shown to callers with an API token"}
    return {"runs_available": False, "runs_error": reason}


def _guard() -> None:
    # Runs before every request: the request object is looked up once, not on each attribute (a
    # proxy's attribute costs ~0.9 us, the object's ~0.15).
    current_request = request._get_current_object()  # type: ignore[attr-defined]
    if current_request.routing_exception is not None:
        return  # unknown path or method: the 404/405 JSON says so, to anyone
    open_to_anonymous = current_request.endpoint in ANONYMOUS_ENDPOINTS
    try:
        identity = authenticate(current_request)
    except LookupFailed as failed:
        services = current()
        if not open_to_anonymous:
            raise database_unavailable(failed.__cause__ or failed, services.secrets) from None
        log_database_error(failed.__cause__ or failed, services.secrets)
        # The catalogue still works without PostgreSQL; it just cannot show runs to anyone.
        g.auth_unavailable = str(failed)
        identity = None
    g._get_current_object().identity = identity  # type: ignore[attr-defined]
    if identity is None and not open_to_anonymous:
        raise unauthenticated('this needs "Authorization: Bearer <token>"')
    if current_request.method == "POST":
        # CSRF: browsers never attach a bearer token on their own, and a cross-site page cannot
        # send application/json without a CORS preflight this API never grants. Requiring both on
        # every POST is what keeps another site from starting runs through a visitor's browser.
        g.json_body = run_request.json_object_body(current_request)


def install(app: Flask) -> None:
    app.before_request(_guard)
