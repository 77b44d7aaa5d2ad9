"""The hash that decides whether a venv must be (re)built."""

import hashlib
from collections.abc import Sequence

# Bump when the way venvs are built changes, so every host rebuilds its venvs once.
MANAGER_FORMAT_VERSION = 1


def venv_hash(requirements: Sequence[str], python_version: str) -> str:
    """sha256 over the normalised requirements, the target Python's X.Y.Z and the format version.

    The Python version is part of it because a venv is tied to its interpreter: a point
    release of python3 on the host must rebuild the venvs (compiled wheels, stdlib paths).
    """
    digest = hashlib.sha256()
    digest.update(f"barestack-venv-format={MANAGER_FORMAT_VERSION}\n".encode())
    digest.update(f"python={python_version}\n".encode())
    for requirement in requirements:
        digest.update(f"{requirement}\n".encode())
    return digest.hexdigest()
