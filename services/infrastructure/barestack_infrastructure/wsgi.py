"""gunicorn entry point: ``gunicorn barestack_infrastructure.wsgi:app``."""

from barestack_infrastructure.app import create_app

app = create_app(start_sampler=True)  # each worker samples for the charts (one per slot writes)
