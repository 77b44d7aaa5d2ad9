"""A minimal HTTP client for service-to-service calls, over TCP or a unix socket.

It uses http.client directly rather than urllib: no proxy variables from the environment
apply to these internal calls, redirects are not followed behind our back, and a unix socket
(``http+unix://%2Frun%2Fbarestack%2Fbackend.sock/prefix``, the requests-unixsocket spelling)
works the same way as a TCP address.
"""

import http.client
import json
import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

SUPPORTED_SCHEMES = ("http", "https", "http+unix")
MAX_BODY_BYTES = 8 * 1024 * 1024
# Methods sent again on a new connection when a kept one turns out to be closed by the server.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
# A kept connection idle longer than this is not used for a non-idempotent request: the server
# (gunicorn's keepalive is 2 s by default) may be closing it right now, and a POST is never resent.
FRESH_ENOUGH_S = 1.0


class HttpUnavailable(Exception):
    """No HTTP answer at all: refused, timed out, reset, not HTTP."""


@dataclass(frozen=True)
class HttpResponse:
    """A complete answer: status, lower-cased header names, body read to the end."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: only ``connect`` differs from TCP."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _connection(url: str, timeout_s: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    target = _target(url)
    if parts.scheme == "http+unix":
        return _UnixHTTPConnection(unquote(parts.netloc), timeout_s), target
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout_s), target
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.netloc, timeout=timeout_s), target
    raise HttpUnavailable(f"unsupported URL scheme {parts.scheme!r}")


def _body_and_headers(payload: Any, headers: dict[str, str] | None) -> tuple[bytes | None, dict[str, str]]:
    all_headers = {"Accept": "application/json", **(headers or {})}
    body = None
    if payload is not None:
        body = json.dumps(payload).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    return body, all_headers


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    body: bytes | None,
    headers: dict[str, str],
    deadline: float,
) -> tuple[HttpResponse, bool]:
    """Send one request and read the whole answer; returns it and whether the server will close."""

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    connection.timeout = remaining()
    if connection.sock is not None:
        connection.sock.settimeout(remaining())
    connection.request(method, target, body=body, headers=headers)
    if connection.sock is not None:  # the answer gets what is left of the whole budget
        connection.sock.settimeout(remaining())
    response = connection.getresponse()
    # Read in pieces, each with what is left of the budget: one read of the whole body would
    # reset the socket timeout on every byte of a trickling answer.
    chunks, size = [], 0
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(remaining())
        chunk = response.read1(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HttpUnavailable(f"answer larger than {MAX_BODY_BYTES} bytes")
    response.close()  # the body is read: the connection can carry the next request
    data = b"".join(chunks)
    answer = HttpResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    return answer, bool(response.will_close)


def _unavailable(error: Exception) -> HttpUnavailable:
    # e.g. ConnectionRefusedError, TimeoutError, RemoteDisconnected
    return HttpUnavailable(f"{error.__class__.__name__}: {error}".rstrip(": "))


def request(
    method: str, url: str, timeout_s: float, payload: Any = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """One request on a fresh connection; anything short of an HTTP answer is ``HttpUnavailable``."""
    connection, target = _connection(url, timeout_s)
    body, all_headers = _body_and_headers(payload, headers)
    try:
        return _exchange(connection, method, target, body, all_headers, time.monotonic() + timeout_s)[0]
    except HttpUnavailable:
        raise
    except (OSError, http.client.HTTPException) as error:
        raise _unavailable(error) from None
    finally:
        connection.close()


def _server_hung_up(connection: http.client.HTTPConnection) -> bool:
    """An idle kept connection with something to read has been closed by the server (EOF)."""
    if connection.sock is None:
        return True
    try:
        readable, _, _ = select.select([connection.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class KeepAliveClient:
    """HTTP/1.1 keep-alive to internal services: one kept connection per thread and address.

    A connection is reused while the server keeps it open (gunicorn's gthread workers do; its sync
    workers answer ``Connection: close`` and the connection is then dropped after each request).
    A kept connection the server has since closed is noticed before use, or, for an idempotent
    request, by its failure, and the request goes out once more on a new connection. The whole
    request, connecting and reading included, must finish within ``timeout_s``.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self.connections_opened = 0  # for tests and diagnostics

    def _kept(self) -> dict[str, tuple[http.client.HTTPConnection, float]]:
        kept = getattr(self._local, "connections", None)
        if kept is None or getattr(self._local, "pid", None) != os.getpid():
            kept = self._local.connections = {}
            self._local.pid = os.getpid()
        return kept

    def close(self) -> None:
        """Close the calling thread's connections."""
        for connection, _ in self._kept().values():
            connection.close()
        self._kept().clear()

    def request(
        self,
        method: str,
        url: str,
        timeout_s: float,
        payload: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        kept = self._kept()
        body, all_headers = _body_and_headers(payload, headers)
        deadline = time.monotonic() + timeout_s
        held = kept.pop(key, None)
        reused = None
        if held is not None:
            connection, idle_since = held
            fresh_enough = method in IDEMPOTENT or time.monotonic() - idle_since < FRESH_ENOUGH_S
            if fresh_enough and not _server_hung_up(connection):
                reused = connection
            else:
                connection.close()
        for attempt in ("kept", "new") if reused is not None else ("new",):
            if attempt == "kept" and reused is not None:
                connection, target = reused, _target(url)
            else:
                connection, target = _connection(url, timeout_s)
                self.connections_opened += 1
            try:
                answer, will_close = _exchange(connection, method, target, body, all_headers, deadline)
            except HttpUnavailable:
                connection.close()
                raise
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                # Only a kept connection's failure before any answer is worth one more try.
                stale = isinstance(
                    error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                )
                if attempt == "kept" and stale and method in IDEMPOTENT and time.monotonic() < deadline:
                    continue
                raise _unavailable(error) from None
            if will_close:
                connection.close()
            else:
                kept[key] = (connection, time.monotonic())
            return answer
        raise HttpUnavailable("no connection")  # not reached: the last attempt returns or raises
