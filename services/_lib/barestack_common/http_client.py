"""A minimal HTTP client for service-to-service calls, over TCP or a unix socket.

It uses http.client directly rather than urllib: no proxy variables from the environment
apply to these internal calls, redirects are not followed behind our back, and a unix socket
(``http+unix://%2Frun%2Fbarestack%2Fbackend.sock/prefix``, the requests-unixsocket spelling)
works the same way as a TCP address.
"""

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

SUPPORTED_SCHEMES = ("http", "https", "http+unix")
MAX_BODY_BYTES = 8 * 1024 * 1024


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


def _connection(url: str, timeout_s: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    if parts.scheme == "http+unix":
        return _UnixHTTPConnection(unquote(parts.netloc), timeout_s), target
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout_s), target
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.netloc, timeout=timeout_s), target
    raise HttpUnavailable(f"unsupported URL scheme {parts.scheme!r}")


def request(
    method: str, url: str, timeout_s: float, payload: Any = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """One request on a fresh connection; anything short of an HTTP answer is ``HttpUnavailable``."""
    connection, target = _connection(url, timeout_s)
    all_headers = {"Accept": "application/json", **(headers or {})}
    body = None
    if payload is not None:
        body = json.dumps(payload).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    try:
        connection.request(method, target, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise HttpUnavailable(f"answer larger than {MAX_BODY_BYTES} bytes")
        return HttpResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except (OSError, http.client.HTTPException) as error:
        # e.g. ConnectionRefusedError, TimeoutError, RemoteDisconnected
        raise HttpUnavailable(f"{error.__class__.__name__}: {error}".rstrip(": ")) from None
    finally:
        connection.close()
