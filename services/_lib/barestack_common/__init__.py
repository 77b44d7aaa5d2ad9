"""Helpers the three barestack services and their modules share, kept once here instead of copied.

Not a venv and not a service: the venv manager skips ``services/_lib`` (a private folder), and
every process finds it on its import path instead (gunicorn ``--pythonpath``, the worker's
``PYTHONPATH``, and run_module.sh's for a module run). So it adds no requirements of its own: each
file uses the standard library only, except ``request_log``, ``metrics`` and ``auth``, which hook
into the Flask app they are handed and so only run where Flask already is, and ``pg``, which needs
psycopg2 (the backend's and the dashboard's venvs).

- ``module``: what a module's app.py needs: its settings, one JSON result, failures and exit codes.
- ``env``: settings from environment variables, errors that name the variable, never its value.
- ``redact``: credentials taken out of text that leaves the process.
- ``http_client``: service-to-service HTTP over TCP or a unix socket.
- ``log_setup``: a service package's logger writing journald-ready lines to stderr.
- ``request_log``: a log line per server error or slow request of a Flask app (Nginx logs them all).
- ``metrics``: request counts and a duration histogram per worker, on ``GET /metrics``.
- ``replay``: an answer the app offers, given again to the identical request without the app.
- ``auth``: the login session the frontend and the dashboard share (accounts file, cookie, CSRF).
- ``pg``: whether a kept PostgreSQL session can still take a query.
"""
