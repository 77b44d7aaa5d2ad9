"""What is installed in a venv, read from its dist-info folders (no subprocess per venv)."""

from pathlib import Path

from .requirements import canonical_name


def _name_and_version(metadata_file: Path) -> tuple[str, str] | None:
    name = version = None
    with metadata_file.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                break  # the headers end at the first blank line; the long description follows
            if line.startswith("Name:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("Version:"):
                version = line.partition(":")[2].strip()
    if name and version:
        return canonical_name(name), version
    return None


def installed_packages(venv: Path) -> dict[str, str]:
    """Canonical distribution name -> version of every package in the venv's site-packages."""
    packages: dict[str, str] = {}
    for metadata_file in sorted(venv.glob("lib/python*/site-packages/*.dist-info/METADATA")):
        found = _name_and_version(metadata_file)
        if found is not None:
            packages[found[0]] = found[1]
    return dict(sorted(packages.items()))
