"""gunicorn entry point: ``gunicorn barestack_frontend.wsgi:app``."""

from barestack_frontend.app import create_app

app = create_app()
