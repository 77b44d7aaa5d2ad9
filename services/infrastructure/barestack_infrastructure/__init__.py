"""barestack infrastructure dashboard: one page, /health and /metrics for the whole stack."""

from barestack_infrastructure.app import create_app

__all__ = ["create_app"]
