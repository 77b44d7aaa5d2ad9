"""barestack backend: the module-run API (Flask) and its queue worker.

``create_app`` is imported lazily so that the worker (``python -m barestack_backend.worker``)
does not pay for importing Flask.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from barestack_backend.app import create_app

        return create_app
    raise AttributeError(f"module 'barestack_backend' has no attribute {name!r}")
