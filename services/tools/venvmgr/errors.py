"""Errors the CLI turns into a clear message and exit code 2, before anything is changed."""


class VenvManagerError(Exception):
    """Bad input or environment: the run stops and changes nothing."""
