"""``/`` (HTML), ``/health`` (JSON, 503 when a critical component is down) and ``/metrics`` (Prometheus).

The page and /metrics are for logged-in operators; /health answers anyone (deploy gates, local checks).
"""

from barestack_common import metrics as request_metrics
from flask import Blueprint, Response, current_app, jsonify, render_template

from barestack_infrastructure import metrics
from barestack_infrastructure.access import operator_required
from barestack_infrastructure.collector import Snapshot, SnapshotCache

blueprint = Blueprint("status", __name__)
PAGE_REFRESH_SECONDS = 15


def snapshot() -> Snapshot:
    """The process's last snapshot (a few seconds old at most): a request never runs the checks."""
    cache: SnapshotCache = current_app.extensions["barestack_infrastructure.collector"]
    return cache.get()


@blueprint.get("/")
@operator_required("html")
def dashboard() -> tuple[str, int]:
    current = snapshot()
    page = render_template(
        "dashboard.html", snapshot=current, backups=current.backups, refresh_seconds=PAGE_REFRESH_SECONDS
    )
    # The page itself always renders (200): it is how an operator finds out what is down.
    return page, 200


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    current = snapshot()
    return jsonify(current.to_json()), 200 if current.healthy else 503


@blueprint.get("/metrics")
@operator_required("text")
def prometheus_metrics() -> Response:
    own: request_metrics.RequestMetrics = current_app.extensions[request_metrics.EXTENSION_KEY]
    text = metrics.render(snapshot()) + request_metrics.render(own.workers())
    return Response(text, content_type=metrics.CONTENT_TYPE)
