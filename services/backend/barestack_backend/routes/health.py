"""``GET /health``: PostgreSQL (SELECT 1) and Redis (PING), each with a short timeout."""

import time
from collections.abc import Callable
from typing import Any

from barestack_common.redact import describe_error
from flask import Blueprint, Response, jsonify

from barestack_backend.services import current

blueprint = Blueprint("health", __name__)


def _timed_check(check: Callable[[], object], secrets: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
        result: dict[str, Any] = {"ok": True}
    except Exception as error:  # any failure of the dependency is a health result, not a 500
        result = {"ok": False, **describe_error(error, secrets)}
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    services = current()
    checks = {
        "postgresql": _timed_check(services.database.check, services.secrets),
        "redis": _timed_check(services.redis.ping, services.secrets),
    }
    healthy = all(check["ok"] for check in checks.values())
    return jsonify({"status": "ok" if healthy else "unavailable", "checks": checks}), 200 if healthy else 503
