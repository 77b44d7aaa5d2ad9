"""Sorts version strings the PEP 440 way (1.10 after 1.9, 2.0rc1 before 2.0) with packaging 24.2.

Usage: python app.py [VERSION...]
Prints {"packaging": "<version this venv has>", "sorted": [...], "invalid": [...]}; exits 1 if
any argument is not a valid version. a-002 pins packaging 23.2: each module sees its own.
"""

import importlib.metadata
import sys

from barestack_common.module import emit_json
from packaging.version import InvalidVersion, Version


def sort_versions(candidates: list[str]) -> tuple[list[str], list[str]]:
    """(valid versions oldest first, arguments that are not versions)."""
    valid: list[Version] = []
    invalid: list[str] = []
    for candidate in candidates:
        try:
            valid.append(Version(candidate))
        except InvalidVersion:
            invalid.append(candidate)
    return [str(version) for version in sorted(valid)], invalid


def main(argv: list[str]) -> int:
    ordered, invalid = sort_versions(argv)
    emit_json({"packaging": importlib.metadata.version("packaging"), "sorted": ordered, "invalid": invalid})
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
