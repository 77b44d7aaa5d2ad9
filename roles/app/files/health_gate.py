#!/usr/bin/env python3
"""Poll HTTP checks until all pass or a deadline passes; print JSON naming the failures.

Run on the host by the deploy's health gate (ansible.builtin.script): one task for every check,
all polled together, so a broken release is detected in one deadline rather than one per check.

Two kinds of check:
  --check PATH=STATUS                 through --base (e.g. Nginx at http://127.0.0.1)
  --check SOCKET|PREFIX|PATH=STATUS   straight to a gunicorn unix socket, before any traffic goes
                                      there (PREFIX is sent as X-Forwarded-Prefix, as Nginx does)
  --check https://HOST:PORT|PREFIX|PATH=STATUS
                                      the same to a gunicorn serving TLS on a TCP port of its own
                                      (its certificate checked against --cafile)
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request

USER_AGENT = "barestack-health-gate"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (the standard library has no such handler)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def status_via_socket(
    socket_path: str, prefix: str, path: str, timeout: float, cafile: str | None = None
) -> int | str:
    connection: http.client.HTTPConnection
    if socket_path.startswith("https://"):
        host, _, port = socket_path.removeprefix("https://").rpartition(":")
        context = ssl.create_default_context(cafile=cafile)
        connection = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
    else:
        connection = UnixHTTPConnection(socket_path, timeout)
    try:
        connection.request(
            "GET", path, headers={"User-Agent": USER_AGENT, "Host": "localhost", "X-Forwarded-Prefix": prefix}
        )
        return connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def status_of(url: str, timeout: float) -> int | str:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError) as error:
        return f"{type(error).__name__}: {getattr(error, 'reason', error)}"


def parse_check(text: str) -> tuple[str, int]:
    target, _, status = text.rpartition("=")
    path = target.rsplit("|", 1)[-1]
    if not path.startswith("/") or not status.isdigit() or target.count("|") not in (0, 2):
        raise argparse.ArgumentTypeError(
            f"a check is PATH=STATUS or SOCKET|PREFIX|PATH=STATUS, e.g. /api/health=200 (got {text!r})"
        )
    return target, int(status)


def probe(target: str, base: str | None, timeout: float, cafile: str | None = None) -> int | str:
    if "|" in target:
        socket_path, prefix, path = target.split("|")
        return status_via_socket(socket_path, prefix, path, timeout, cafile)
    if base is None:
        return "no --base for a PATH=STATUS check"
    return status_of(base.rstrip("/") + target, timeout)


def public_path(target: str) -> str:
    """The path as Nginx serves it: /api/health for a backend socket's /health."""
    if "|" not in target:
        return target
    _, prefix, path = target.split("|")
    return (prefix.rstrip("/") + path) or "/"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", help="e.g. http://127.0.0.1 (for PATH=STATUS checks)")
    parser.add_argument("--check", type=parse_check, action="append", required=True)
    parser.add_argument("--cafile", help="CA certificate for https:// checks (default: the system's)")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds to wait for all checks")
    parser.add_argument("--interval", type=float, default=0.5)
    arguments = parser.parse_args()

    pending = dict(arguments.check)
    last: dict[str, int | str] = {}
    give_up = time.monotonic() + arguments.deadline
    while True:
        for target, expected in list(pending.items()):
            last[target] = probe(target, arguments.base, min(5.0, arguments.deadline), arguments.cafile)
            if last[target] == expected:
                del pending[target]
        if not pending or time.monotonic() >= give_up:
            break
        time.sleep(arguments.interval)
    failed = [
        {"path": public_path(target), "expected": expected, "got": last[target]}
        for target, expected in pending.items()
    ]
    print(json.dumps({"passed": not failed, "failed": failed, "last": last}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
