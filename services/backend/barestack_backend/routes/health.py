"""``GET /health``: PostgreSQL (SELECT 1) and Redis (PING), each with a short timeout.

Open to anyone. Anonymous callers learn which check failed and the error's class; the message
(which names hosts and ports) goes to callers with a token and to the log only.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from barestack_common.redact import describe_error
from flask import Blueprint, Response, jsonify

from barestack_backend import auth
from barestack_backend.services import current

blueprint = Blueprint("health", __name__)
log = logging.getLogger("barestack_backend.health")


def _timed_check(
    name: str, check: Callable[[], object], secrets: list[str], detailed: bool
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
        result: dict[str, Any] = {"ok": True}
    except Exception as error:  # any failure of the dependency is a health result, not a 500
        reason = describe_error(error, secrets)
        log.warning("health: %s: %s: %s", name, reason["error"], reason["message"])
        if not detailed:
            reason["message"] = f"{name} unavailable"
        result = {"ok": False, **reason}
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    services = current()
    detailed = auth.current_identity() is not None
    checks = {
        "postgresql": _timed_check("postgresql", services.database.check, services.secrets, detailed),
        "redis": _timed_check("redis", services.redis.ping, services.secrets, detailed),
    }
    healthy = all(check["ok"] for check in checks.values())
    return jsonify({"status": "ok" if healthy else "unavailable", "checks": checks}), 200 if healthy else 503
