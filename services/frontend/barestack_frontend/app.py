"""The frontend's app factory (gunicorn: ``barestack_frontend.wsgi:app``)."""

import logging

from barestack_common import auth, metrics, replay, request_log
from barestack_common.proxy_fix import NginxProxyFix
from flask import Flask

from barestack_frontend import errors, formatting
from barestack_frontend.backend_client import BackendClient
from barestack_frontend.routes import health, login, pages
from barestack_frontend.settings import Settings

EXTENSION_KEY = "barestack_frontend.backend"
log = logging.getLogger("barestack_frontend.app")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    # Served at / by nginx; ProxyFix keeps url_for() right if it is ever mounted under a prefix.
    app.wsgi_app = NginxProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    app.extensions[EXTENSION_KEY] = BackendClient(
        settings.backend_api_url,
        settings.backend_timeout_s,
        settings.frontend_token,
        settings.catalogue_ttl_s,
    )
    auth.install(app, settings.auth)
    formatting.install(app)
    errors.install(app)
    request_log.install(app, package="barestack_frontend", slow_s=settings.slow_request_s)
    if settings.auth.accounts_file.exists() and not settings.frontend_token:
        log.warning("BARESTACK_FRONTEND_TOKEN is not set: the backend may refuse to start runs")
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(login.blueprint)
    app.register_blueprint(health.blueprint)
    replay.install(app)  # the anonymous front page, to the same request while its listing is fresh
    metrics.install(app)  # outermost: times whole requests; answers /metrics to direct callers
    return app
