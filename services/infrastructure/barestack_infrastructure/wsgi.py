"""gunicorn entry point: ``gunicorn barestack_infrastructure.wsgi:app``."""

from barestack_infrastructure.app import create_app

app = create_app()
