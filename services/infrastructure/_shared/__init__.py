"""Helpers shared by the infrastructure's modules (stdlib only): ``from _shared.output import emit_json``.

run_module.sh puts ``services/infrastructure`` on PYTHONPATH, which makes this package importable.
"""
