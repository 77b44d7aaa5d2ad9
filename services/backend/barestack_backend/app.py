"""The backend API's app factory (gunicorn: ``barestack_backend.wsgi:app``)."""

from barestack_common import metrics, replay, request_log
from barestack_common.proxy_fix import NginxProxyFix
from flask import Flask

from barestack_backend import auth, errors
from barestack_backend.routes import health, modules, runs
from barestack_backend.services import EXTENSION_KEY, BackendServices
from barestack_backend.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    if settings.secret_key:
        app.config["SECRET_KEY"] = settings.secret_key
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Bodies beyond this are refused with 413 while being read, before any parsing.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Behind nginx at /api/: trust one proxy hop for client address, scheme, host and prefix,
    # so url_for() and Location headers point at /api/... as the client sees it.
    app.wsgi_app = NginxProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    app.extensions[EXTENSION_KEY] = BackendServices.build(settings)
    errors.install(app)
    request_log.install(app, package="barestack_backend", slow_s=settings.slow_request_s)
    auth.install(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(modules.blueprint)
    app.register_blueprint(runs.blueprint)
    # Kept answers offered by the views go to the next identical request without Flask (and
    # without ProxyFix: replay tells requests apart by the raw headers).
    replay.install(app)
    metrics.install(app)  # outermost: times whole requests; answers /metrics before the token check
    return app
