"""Asks the backend API for its health, as the frontend does before rendering a page.

Usage: python app.py [PATH]    (BACKEND_API_URL from the environment, default http://127.0.0.1:5000;
PATH defaults to /health). Prints {"url": ..., "status": 200, "ok": true, "elapsed_ms": ...,
"body": <JSON body or null>}; exits 1 unless the backend answers 2xx.
"""

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from barestack_common.module import EXIT_BAD_INPUT, emit_json, fail, optional_env

DEFAULT_BACKEND = "http://127.0.0.1:5000"
TIMEOUT_S = 5


def probe(url: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return {"url": url, "status": status, "ok": 200 <= status < 300, "elapsed_ms": elapsed_ms, "body": body}


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "/health"
    if not path.startswith("/"):
        fail(f"path must start with '/': {path!r}", EXIT_BAD_INPUT)
    base = optional_env("BACKEND_API_URL", DEFAULT_BACKEND).rstrip("/")
    if not base.startswith(("http://", "https://")):
        fail(f"BACKEND_API_URL must be an http(s) URL, got {base!r}", EXIT_BAD_INPUT)
    try:
        result = probe(base + path)
    except (urllib.error.URLError, OSError) as error:
        fail(f"backend unreachable at {base}: {getattr(error, 'reason', error)}")
    emit_json(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
