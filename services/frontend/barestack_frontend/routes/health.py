"""``GET /health``: the frontend is up (200) and says whether the backend answers."""

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from barestack_frontend.backend_client import BackendClient, BackendUnavailable

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> Response:
    client: BackendClient = current_app.extensions["barestack_frontend.backend"]
    started = time.perf_counter()
    backend: dict[str, Any]
    try:
        answer = client.health()
        backend = {"ok": answer["http_status"] == 200, **answer}
    except BackendUnavailable as error:
        backend = {"ok": False, "error": str(error)}
    backend["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    # The frontend itself is healthy whenever it can answer; a backend outage shows as "degraded"
    # so that a process supervisor does not restart the frontend for somebody else's failure.
    return jsonify({"status": "ok" if backend["ok"] else "degraded", "checks": {"backend": backend}})
