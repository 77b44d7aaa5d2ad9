"""Checks that the stack's TCP ports accept connections (PostgreSQL, Redis, Nginx by default).

Usage: python app.py [HOST:PORT...]    (default 127.0.0.1:5432 127.0.0.1:6379 127.0.0.1:80)
Prints {"checks": [{"target": "127.0.0.1:5432", "open": true, "elapsed_ms": 0.4, "error": null}],
"all_open": bool}; exits 1 if any port is closed, 2 on a malformed HOST:PORT.
"""

import socket
import sys
import time
from typing import Any

from barestack_common.module import EXIT_BAD_INPUT, emit_json, fail

DEFAULT_TARGETS = ("127.0.0.1:5432", "127.0.0.1:6379", "127.0.0.1:80")
TIMEOUT_S = 3.0


def parse_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {target!r}")
    return host.strip("[]"), int(port)


def check(host: str, port: int) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            error = None
    except OSError as problem:
        error = problem.strerror or str(problem)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return {"target": f"{host}:{port}", "open": error is None, "elapsed_ms": elapsed_ms, "error": error}


def main(argv: list[str]) -> int:
    try:
        targets = [parse_target(target) for target in (argv or DEFAULT_TARGETS)]
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    checks = [check(host, port) for host, port in targets]
    all_open = all(result["open"] for result in checks)
    emit_json({"checks": checks, "all_open": all_open})
    return 0 if all_open else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
