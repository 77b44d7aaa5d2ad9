"""The frontend's app factory (gunicorn: ``barestack_frontend.wsgi:app``)."""

from barestack_common import request_log
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from barestack_frontend import errors, formatting
from barestack_frontend.backend_client import BackendClient
from barestack_frontend.routes import health, pages
from barestack_frontend.settings import Settings

EXTENSION_KEY = "barestack_frontend.backend"


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    # Served at / by nginx; ProxyFix keeps url_for() right if it is ever mounted under a prefix.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    app.extensions[EXTENSION_KEY] = BackendClient(settings.backend_api_url, settings.backend_timeout_s)
    formatting.install(app)
    errors.install(app)
    request_log.install(app, package="barestack_frontend")
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(health.blueprint)
    return app
