"""Source trees the bench deploys: copies of services/, with generated modules or a release marker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from barestack_bench.settings import SERVICES_DIR

MODULE_FOLDER = re.compile(r"^[a-z]+-\d{3,}$")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache")
# A file at the tree's root: it changes the tree hash (so a deploy makes a new release) and
# nothing else, since the venv manager only looks at service folders.
RELEASE_MARKER = "BENCH_RELEASE"


def copy_services(destination: Path, source: Path = SERVICES_DIR) -> Path:
    """A copy of a services/ tree (by default the repository's: the default scenario's application)."""
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=IGNORED, symlinks=True)
    return destination


def generated_tree(
    destination: Path,
    count: int,
    seed: int,
    source: Path = SERVICES_DIR,
    with_services: bool = True,
    distinct_sets: int | None = None,
) -> Path:
    """``count`` modules from ``source``'s generator, on a copy of ``source`` (or alone); with
    ``distinct_sets``, in the generator's realistic mode (that many distinct requirement sets)."""
    if with_services:
        copy_services(destination, source)
    elif destination.exists():
        shutil.rmtree(destination)
    subprocess.run(
        [
            sys.executable,
            str(source / "tools" / "generate_modules.py"),
            "--out",
            str(destination),
            "--count",
            str(count),
            "--seed",
            str(seed),
            *(["--distinct-sets", str(distinct_sets)] if distinct_sets else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return destination


def marked_tree(destination: Path, marker: str, source: Path = SERVICES_DIR) -> Path:
    """A copy of ``source`` plus a marker file: a new release with the same venvs."""
    copy_services(destination, source)
    (destination / RELEASE_MARKER).write_text(json.dumps({"release": marker}) + "\n", encoding="utf-8")
    return destination


def module_keys(tree: Path, name_prefix: str = "") -> list[str]:
    """``service/module`` for every module folder (with an app.py) in the tree, sorted."""
    keys = []
    for service in sorted(path for path in tree.iterdir() if path.is_dir()):
        for module in sorted(path for path in service.iterdir() if path.is_dir()):
            if (
                MODULE_FOLDER.match(module.name)
                and module.name.startswith(name_prefix)
                and (module / "app.py").is_file()
            ):
                keys.append(f"{service.name}/{module.name}")
    return keys
