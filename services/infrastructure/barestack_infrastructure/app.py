"""The infrastructure dashboard's app factory (gunicorn: ``barestack_infrastructure.wsgi:app``)."""

from barestack_common import auth, metrics, request_log
from barestack_common.proxy_fix import NginxProxyFix
from flask import Flask

from barestack_infrastructure import errors
from barestack_infrastructure.collector import Collector, SnapshotCache
from barestack_infrastructure.routes import charts, status
from barestack_infrastructure.sampler import Sampler
from barestack_infrastructure.settings import Settings


def create_app(settings: Settings | None = None, start_sampler: bool = False) -> Flask:
    """The dashboard; ``start_sampler`` starts the charts' background sampling (gunicorn's wsgi does)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep components and units in display order
    # Behind nginx at /infra/: trust one proxy hop so url_for() links carry the /infra prefix.
    app.wsgi_app = NginxProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    collector = Collector(settings)
    app.extensions["barestack_infrastructure.collector"] = SnapshotCache(
        collector, settings.collect_interval_s, settings.max_age_s
    )
    # The frontend's login session (same cookie, same SECRET_KEY and accounts file), and the body limit.
    auth.install(app, settings.auth)
    errors.install(app)
    request_log.install(app, package="barestack_infrastructure", slow_s=settings.slow_request_s)
    app.register_blueprint(status.blueprint)
    app.register_blueprint(charts.blueprint)
    # Its own requests are counted like the other services'; /metrics stays its operators' page.
    own = metrics.install(app, serve=False)
    # The charts' sampler reads the runs table on the PostgreSQL check's session.
    sampler = Sampler(settings, collector.postgres, own.workers)
    app.extensions[charts.EXTENSION_KEY] = sampler
    if start_sampler:
        sampler.start()
    return app
