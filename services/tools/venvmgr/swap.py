"""Put a freshly built venv in place, or take one away, without ever leaving half a venv.

Builds happen in a temp folder beside the final path (same filesystem, so rename is atomic);
the old venv is renamed aside before the new one is renamed in, and only then deleted.
"""

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
LOCK_FILENAME = ".lock"


def temp_path_beside(final: Path) -> Path:
    """A fresh, not yet existing path next to ``final`` (uv venv creates it)."""
    return final.parent / f"{TEMP_PREFIX}{final.name}-{os.getpid()}-{secrets.token_hex(4)}"


def _aside_path(final: Path) -> Path:
    return final.parent / f"{OLD_PREFIX}{final.name}-{os.getpid()}-{secrets.token_hex(4)}"


def swap_in(built: Path, final: Path) -> None:
    """Replace ``final`` with ``built``; on failure the previous venv is back at ``final``."""
    if not os.path.lexists(final):
        os.rename(built, final)
        return
    aside = _aside_path(final)
    os.rename(final, aside)
    try:
        os.rename(built, final)
    except OSError:
        os.rename(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def remove_venv(final: Path) -> None:
    """Delete a venv: renamed aside first so nothing half-deleted is ever found at its path."""
    if os.path.lexists(final):
        aside = _aside_path(final)
        os.rename(final, aside)
        shutil.rmtree(aside, ignore_errors=True)
    with contextlib.suppress(OSError):
        final.parent.rmdir()  # only succeeds once the service has no venv left


def remove_leftovers(venvs_dir: Path) -> None:
    """Delete temp/aside folders a killed run left behind (they never hold a live venv)."""
    if not venvs_dir.is_dir():
        return
    for service_dir in venvs_dir.iterdir():
        if not service_dir.is_dir() or service_dir.name.startswith("."):
            continue
        for entry in service_dir.iterdir():
            if entry.name.startswith((TEMP_PREFIX, OLD_PREFIX)):
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(venvs_dir: Path) -> Iterator[None]:
    """Serialise runs on one host: two builds swapping the same venv would race."""
    venvs_dir.mkdir(parents=True, exist_ok=True)
    with open(venvs_dir / LOCK_FILENAME, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
