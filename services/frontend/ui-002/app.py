"""Fingerprints static assets: a short content hash per file, for cache-busting asset URLs.

Usage: python app.py DIRECTORY    Prints {"root": ..., "files": {"css/site.css": "3f2a9c1b07de", ...},
"count": n, "bytes": total}; exits 2 if DIRECTORY is not a directory. Hidden files are skipped.
"""

import hashlib
import sys
from pathlib import Path

from barestack_common.module import EXIT_BAD_INPUT, emit_json, fail

FINGERPRINT_CHARS = 12


def fingerprint(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:FINGERPRINT_CHARS]


def asset_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        fail("usage: app.py DIRECTORY", EXIT_BAD_INPUT)
    root = Path(argv[0])
    if not root.is_dir():
        fail(f"not a directory: {root}", EXIT_BAD_INPUT)
    files = asset_files(root)
    emit_json(
        {
            "root": str(root.resolve()),
            "files": {path.relative_to(root).as_posix(): fingerprint(path) for path in files},
            "count": len(files),
            "bytes": sum(path.stat().st_size for path in files),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
