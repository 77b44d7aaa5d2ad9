"""``GET /health``: PostgreSQL (SELECT 1) and Redis (PING), each with a short timeout.

Open to anyone. Anonymous callers learn which check failed and the error's class; the message
(which names hosts and ports) goes to callers with a token and to the log only.

The checks' outcome is kept for ``RESULT_TTL_S`` per process: a load balancer or a deploy gate
polling /health many times a second then costs one SELECT 1 and one PING per interval, not per
call, and an outage or a recovery still shows within that interval plus a check's own timeout
(well inside the 2 s the deployment relies on). One request runs the checks while any others
arriving meanwhile wait for its result instead of running their own. A healthy answer is replayed
to the same request until the checks are due again (``barestack_common.replay``), never longer.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from barestack_common import replay
from barestack_common.redact import describe_error
from flask import Blueprint, Flask, Response, current_app, request

from barestack_backend import auth
from barestack_backend.services import EXTENSION_KEY as SERVICES_KEY
from barestack_backend.services import BackendServices

blueprint = Blueprint("health", __name__)
log = logging.getLogger("barestack_backend.health")
RESULT_TTL_S = 0.5
EXTENSION_KEY = "barestack_backend.health"


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    duration_ms: float
    error: str | None = None
    message: str | None = None  # credential-free, but names hosts and ports: for token holders only

    def to_json(self, name: str, detailed: bool) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "duration_ms": self.duration_ms}
        message = self.message if detailed else f"{name} unavailable"
        return {"ok": False, "error": self.error, "message": message, "duration_ms": self.duration_ms}


def _timed_check(name: str, check: Callable[[], object], secrets: list[str]) -> CheckOutcome:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # any failure of the dependency is a health result, not a 500
        reason = describe_error(error, secrets)
        log.warning("health: %s: %s: %s", name, reason["error"], reason["message"])
        return CheckOutcome(False, _ms_since(started), reason["error"], reason["message"])
    return CheckOutcome(True, _ms_since(started))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class HealthResults:
    """The last outcome of the checks in this process, re-run once it is ``ttl_s`` old."""

    def __init__(self, ttl_s: float = RESULT_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._outcomes: dict[str, CheckOutcome] | None = None
        self._checked_at = 0.0
        self._bodies: dict[bool, bytes] = {}  # the answer to each kind of caller, per outcome
        self.runs = 0  # how many times the checks ran: what the cache exists to keep low

    def get(self, services: BackendServices) -> dict[str, CheckOutcome]:
        # The lock is held while checking: callers arriving meanwhile take this run's result.
        with self._lock:
            if self._outcomes is None or time.monotonic() - self._checked_at >= self.ttl_s:
                self._outcomes = {
                    "postgresql": _timed_check("postgresql", services.database.check, services.secrets),
                    "redis": _timed_check("redis", services.redis.ping, services.secrets),
                }
                self._checked_at = time.monotonic()
                self._bodies = {}
                self.runs += 1
            return self._outcomes

    def fresh_until(self, outcomes: dict[str, CheckOutcome]) -> float:
        """When (``time.monotonic()``) ``outcomes`` are due to be checked again; 0 if already replaced."""
        with self._lock:
            return self._checked_at + self.ttl_s if outcomes is self._outcomes else 0.0

    def body(self, outcomes: dict[str, CheckOutcome], detailed: bool) -> bytes:
        """The JSON answer for these outcomes, encoded once per outcome and kind of caller."""
        with self._lock:
            kept = self._bodies.get(detailed) if outcomes is self._outcomes else None
        if kept is not None:
            return kept
        checks = {name: outcome.to_json(name, detailed) for name, outcome in outcomes.items()}
        status = "ok" if all(outcome.ok for outcome in outcomes.values()) else "unavailable"
        text = current_app.json.dumps({"status": status, "checks": checks}, separators=(",", ":"))
        body = (text + "\n").encode()
        with self._lock:
            if outcomes is self._outcomes:
                self._bodies[detailed] = body
        return body


def results(app: Flask) -> HealthResults:
    kept = app.extensions.get(EXTENSION_KEY)
    if kept is None:
        # setdefault is atomic: concurrent first calls all end up with the one stored instance
        # (made only then, not built and thrown away on every request).
        kept = app.extensions.setdefault(EXTENSION_KEY, HealthResults())
    return kept


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    # The app is looked up once: each current_app access walks the context.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    kept = results(app)
    outcomes = kept.get(app.extensions[SERVICES_KEY])
    # Token holders get the failures' messages (hosts, ports); anonymous callers only their class.
    body = kept.body(outcomes, detailed=auth.current_identity() is not None)
    healthy = all(outcome.ok for outcome in outcomes.values())
    # Replayed to the same request until the checks are due again (only a 200 is ever replayed).
    replay.offer(request._get_current_object().environ, kept.fresh_until(outcomes))  # type: ignore[attr-defined]
    return app.response_class(body, content_type="application/json"), 200 if healthy else 503
