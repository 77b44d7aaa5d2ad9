#!/usr/bin/env python3
"""Print one sha256 over a source tree: relative paths, executable bits and contents.

The deploy compares it with the current release's to decide whether a new release is needed, so
bytecode caches and editor droppings must not count.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".git"}
IGNORED_SUFFIXES = (".pyc", ".pyo", "~", ".swp")


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in IGNORED_DIRS)
        for name in sorted(files):
            if name.endswith(IGNORED_SUFFIXES):
                continue
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            executable = "x" if os.access(path, os.X_OK) else "-"
            digest.update(f"{relative}\0{executable}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: tree_hash.py SOURCE_DIR")
    print(tree_hash(Path(sys.argv[1])))
