"""Serialise commands that allocate addresses, change the bridge or build a rootfs.

Two `testmachine create` running at once (e.g. a molecule scenario with three hosts) must not pick
the same address or both build the same cache. flock() is released by the kernel if the holder dies,
so a crashed command never leaves a stale lock behind.
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
