"""Helpers shared by the frontend's modules (stdlib only): ``from _shared.output import emit_json``.

run_module.sh puts ``services/frontend`` on PYTHONPATH, which makes this package importable.
"""
