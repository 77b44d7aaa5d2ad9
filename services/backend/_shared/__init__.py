"""Helpers shared by the backend's modules (stdlib only): ``from _shared.output import emit_json``.

run_module.sh puts ``services/backend`` on PYTHONPATH, which makes this package importable.
"""
