"""Tells which versions satisfy a PEP 440 specifier, with packaging 23.2.

Usage: python app.py [SPECIFIER [VERSION...]]    e.g.  python app.py ">=1.0,<2" 0.9 1.5 2.0
Prints {"packaging": "<version this venv has>", "specifier": ..., "matching": [...],
"not_matching": [...]}; exits 2 on a malformed specifier. a-001 pins packaging 24.2 instead.
"""

import importlib.metadata
import sys

from barestack_common.module import EXIT_BAD_INPUT, emit_json, fail
from packaging.specifiers import InvalidSpecifier, SpecifierSet


def split_by_specifier(specifier: SpecifierSet, versions: list[str]) -> tuple[list[str], list[str]]:
    matching = [version for version in versions if specifier.contains(version, prereleases=True)]
    return matching, [version for version in versions if version not in matching]


def main(argv: list[str]) -> int:
    report: dict[str, object] = {
        "packaging": importlib.metadata.version("packaging"),
        "specifier": None,
        "matching": [],
        "not_matching": [],
    }
    if argv:
        try:
            specifier = SpecifierSet(argv[0])
        except InvalidSpecifier:
            fail(f"not a version specifier: {argv[0]!r}", EXIT_BAD_INPUT)
        matching, not_matching = split_by_specifier(specifier, argv[1:])
        report.update(specifier=str(specifier), matching=matching, not_matching=not_matching)
    emit_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
