"""barestack frontend: module list, run button and run pages, served from the backend API."""

from barestack_frontend.app import create_app

__all__ = ["create_app"]
