"""The dashboard's blueprints: the page, /health and /metrics."""
