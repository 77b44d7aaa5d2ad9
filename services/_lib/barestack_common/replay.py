"""Answers replayed to identical requests for as long as everything they were built from is fresh.

The services already keep their most asked-for answers encoded and ready (the backend's run
listings and catalogue for ``BARESTACK_ANSWER_CACHE_SECONDS``, the frontend's anonymous front
page for its catalogue TTL). Serving one of those kept answers still went through all of Flask
(request and app contexts, routing, the before- and after-request hooks, a response object):
on a 2-core machine about twice the CPU gunicorn itself spends on a request. This middleware,
between the request counting (``metrics``, outermost) and the rest of the app, keeps the answers
of such requests whole (status, headers, body) and gives the next identical request the same
bytes without calling the app, until the earliest deadline of what the answer depended on.

What counts as identical: the method (GET only), the path and the query string, and every
header an answer may depend on (``VARY_ON``: the credentials, the proxy's prefix, host and
scheme). A request with any other credential, cookie, user or prefix is a different request
and goes to the app. Conditional and range requests always go to the app, which answers 304s.

What may be replayed is the app's decision, never this module's. A view offers its answer with
``offer(environ, until, still_valid)``: ``until`` (``time.monotonic()``) is when what it built the
answer from stops being fresh (a kept answer's own expiry), and ``still_valid``, if given, is
asked before each replay whether that is still what the app would use (the backend's module
mapping, re-read when the file changes). Anything else the answer relied
on bounds it with ``bound(environ, until)``: the backend's token check does, as a token is
trusted for the token cache's interval after its check, so a revoked token stops being answered
as soon as it would through the app. An answer is kept only if it was offered, its deadline is
still ahead, its status is 200 and it sets no cookie. Every request that may change state (any
method but GET, HEAD and OPTIONS) forgets the process's kept answers before and after the app
handles it, as the services' own caches forget theirs, so its sender sees its change on the
next read.

Per process, standard library only, at most ``MAX_ENTRIES`` answers and ``MAX_BYTES`` of bodies
(all forgotten when either is reached: a new interval refills what is asked for).
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The request headers (WSGI environ keys) an offered answer may depend on, besides path and query.
VARY_ON = (
    "HTTP_AUTHORIZATION",
    "HTTP_COOKIE",
    "HTTP_X_BARESTACK_USER",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_HOST",
    "SCRIPT_NAME",
)
# Requests that must reach the app: it alone answers conditional and partial requests.
PASS_ON = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_RANGE")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OFFER_KEY = "barestack.replay_offered"  # the offer's still_valid (or True without one)
UNTIL_KEY = "barestack.replay_until"
EXTENSION_KEY = "barestack_common.replay"


def offer(environ: dict[str, Any], until: float, still_valid: Callable[[], bool] | None = None) -> None:
    """Let this request's answer be replayed until ``until`` (``time.monotonic()``) at the latest,
    each time only if ``still_valid()`` (when given) says so."""
    environ[OFFER_KEY] = still_valid or True
    bound(environ, until)


def bound(environ: dict[str, Any], until: float) -> None:
    """Whatever is offered for this request stops being replayed at ``until`` or earlier."""
    kept = environ.get(UNTIL_KEY)
    environ[UNTIL_KEY] = until if kept is None else min(kept, until)


@dataclass(frozen=True, slots=True)
class _Kept:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    until: float
    still_valid: Callable[[], bool] | None


class ReplayMiddleware:
    """Wraps a WSGI app; see the module's docstring."""

    MAX_ENTRIES = 256
    MAX_BYTES = 16 * 1024 * 1024  # e.g. 140 per-user copies of a 400-module catalogue (113 KB)

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()  # guards changes to _kept and _bytes
        self._kept: dict[tuple[str | None, ...], _Kept] = {}
        self._bytes = 0
        # Requests answered from what was kept, for tests: incremented without the lock, so
        # concurrent replays may be counted as one.
        self.replays = 0

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()
            self._bytes = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method != "GET":
            if method in SAFE_METHODS:
                return self.app(environ, start_response)
            self.forget()
            try:
                return self.app(environ, start_response)
            finally:
                # A write's effect is in place once the app has answered: nothing kept may predate it.
                self.forget()
        for name in PASS_ON:
            if name in environ:
                return self.app(environ, start_response)
        key = (environ.get("PATH_INFO"), environ.get("QUERY_STRING"), *map(environ.get, VARY_ON))
        kept = self._kept.get(key)  # a dict read is atomic; the lock guards the writes
        if kept is not None:
            if time.monotonic() < kept.until and (kept.still_valid is None or kept.still_valid()):
                start_response(kept.status, kept.headers)
                self.replays += 1
                return [kept.body]
            with self._lock:
                if self._kept.get(key) is kept:
                    del self._kept[key]
                    self._bytes -= len(kept.body)
        return self._call_and_keep(key, environ, start_response)

    def _call_and_keep(
        self, key: tuple[str | None, ...], environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        offered = environ.get(OFFER_KEY)
        if not offered or len(answer) != 2:
            return body
        status, headers = answer
        until = environ.get(UNTIL_KEY, 0.0)
        if not status.startswith("200 ") or any(name.lower() == "set-cookie" for name, _ in headers):
            return body
        # An offered answer is a kept, already encoded one: the app hands it over as one list of
        # bytes (werkzeug's response iterable over it); joining costs nothing worth mentioning.
        try:
            whole = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if time.monotonic() < until and len(whole) <= self.MAX_BYTES:
            with self._lock:
                if len(self._kept) >= self.MAX_ENTRIES or self._bytes + len(whole) > self.MAX_BYTES:
                    self._kept.clear()
                    self._bytes = 0
                replaced = self._kept.get(key)
                if replaced is not None:
                    self._bytes -= len(replaced.body)
                still_valid = None if offered is True else offered
                self._kept[key] = _Kept(status, list(headers), whole, until, still_valid)
                self._bytes += len(whole)
        return [whole]


def install(app: Any) -> ReplayMiddleware:
    """Replay ``app``'s (a Flask app's) offered answers; install it just before ``metrics``."""
    middleware = ReplayMiddleware(app.wsgi_app)
    app.wsgi_app = middleware
    app.extensions[EXTENSION_KEY] = middleware
    return middleware
