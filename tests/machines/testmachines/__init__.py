"""Disposable Debian test machines: systemd-nspawn containers booted with systemd in their own netns.

Standard library only: the `testmachine` wrapper runs with the system python3, before any venv exists.
"""
