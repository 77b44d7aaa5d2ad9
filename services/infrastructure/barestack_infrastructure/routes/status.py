"""``/`` (HTML), ``/health`` (JSON, 503 when a critical component is down) and ``/metrics`` (Prometheus).

The page and /metrics are for logged-in operators; /health answers anyone (deploy gates, local checks).
"""

import threading
import time

from barestack_common import auth
from barestack_common import metrics as request_metrics
from flask import Blueprint, Response, current_app, render_template, request, session

from barestack_infrastructure import metrics
from barestack_infrastructure.access import operator_required
from barestack_infrastructure.collector import Snapshot, SnapshotCache

blueprint = Blueprint("status", __name__)
PAGE_REFRESH_SECONDS = 15


def snapshot() -> Snapshot:
    """The process's last snapshot (a few seconds old at most): a request never runs the checks."""
    cache: SnapshotCache = current_app.extensions["barestack_infrastructure.collector"]
    return cache.get()


class RenderedPages:
    """Dashboard pages rendered from the current snapshot, each reused within its wall-clock second.

    A page shows the snapshot, ages counted in whole seconds from now, and its viewer's name and
    CSRF token (the logout form). So the snapshot object, the second, the proxy's prefix, the
    viewer and their session's CSRF token make the key: within a second, an operator reloading or
    a monitor polling gets the same HTML again instead of a render of every unit and backup. A new
    snapshot drops every kept page; at most ``MAX_PAGES`` are kept.
    """

    MAX_PAGES = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._pages: dict[tuple[object, ...], str] = {}
        self.renders = 0

    def get(self, current: Snapshot, key: tuple[object, ...]) -> str | None:
        with self._lock:
            return self._pages.get(key) if self._snapshot is current else None

    def put(self, current: Snapshot, key: tuple[object, ...], page: str) -> None:
        with self._lock:
            self.renders += 1
            if self._snapshot is not current or len(self._pages) >= self.MAX_PAGES:
                self._snapshot, self._pages = current, {}
            self._pages[key] = page


PAGES_KEY = "barestack_infrastructure.pages"


def rendered_pages() -> RenderedPages:
    # setdefault is atomic: concurrent first calls all end up with the one stored instance.
    return current_app.extensions.setdefault(PAGES_KEY, RenderedPages())


def _render_dashboard(current: Snapshot) -> str:
    return render_template(
        "dashboard.html", snapshot=current, backups=current.backups, refresh_seconds=PAGE_REFRESH_SECONDS
    )


@blueprint.get("/")
@operator_required("html")
def dashboard() -> tuple[str, int]:
    current = snapshot()
    user = auth.current_user()  # an operator: operator_required let the request through
    csrf = session.get("csrf")
    if user is None or not isinstance(csrf, str) or not csrf:
        return _render_dashboard(current), 200  # the render creates the session's CSRF token
    key = (int(time.time()), request.script_root, user.name, csrf)
    page = rendered_pages().get(current, key)
    if page is None:
        page = _render_dashboard(current)
        rendered_pages().put(current, key, page)
    # The page itself always renders (200): it is how an operator finds out what is down.
    return page, 200


class HealthBodies:
    """The parts of /health's JSON that only change with the snapshot, encoded once per snapshot.

    The status, age and staleness are computed on each call (a snapshot turns stale as it ages,
    and /health must never call stale data healthy); the checks, units and backups, most of the
    body, are encoded when a new snapshot comes and spliced in after them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._tail = ""
        self.encodings = 0

    def body(self, current: Snapshot, live: dict[str, object]) -> str:
        with self._lock:
            if self._snapshot is not current:
                self._snapshot, self._tail = current, _compact(current.fixed_json())[1:]
                self.encodings += 1
            tail = self._tail
        return f"{_compact(live)[:-1]},{tail}\n"


def _compact(document: object) -> str:
    return current_app.json.dumps(document, separators=(",", ":"))


HEALTH_KEY = "barestack_infrastructure.health"


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    current = snapshot()
    bodies: HealthBodies = current_app.extensions.setdefault(HEALTH_KEY, HealthBodies())
    live = current.live_json()  # once: the status code says what the body says
    body = bodies.body(current, live)
    status = 200 if live["status"] == "ok" else 503
    return current_app.response_class(body, mimetype="application/json"), status


@blueprint.get("/metrics")
@operator_required("text")
def prometheus_metrics() -> Response:
    own: request_metrics.RequestMetrics = current_app.extensions[request_metrics.EXTENSION_KEY]
    text = metrics.render(snapshot()) + request_metrics.render(own.workers())
    return Response(text, content_type=metrics.CONTENT_TYPE)
