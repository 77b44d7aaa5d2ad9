"""gunicorn entry point: ``gunicorn barestack_backend.wsgi:app``."""

from barestack_backend.app import create_app

app = create_app()
