"""A snapshot of the Ansible project (ansible.cfg, site.yml, playbooks, plugins, roles, inventories, files).

A run takes half an hour; roles edited meanwhile would make its runs measure different code (a
changed unit template turns a graceful reload into a restart). Every playbook of a run therefore
comes from one copy taken at its start, and the results name that copy by its content hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from barestack_bench.settings import REPO_ROOT

PROJECT_FILES = ("ansible.cfg", "site.yml")
PROJECT_DIRS = ("playbooks", "plugins", "roles", "inventories", "files")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "host_vars", ".secrets")


@dataclass(frozen=True)
class Project:
    root: Path
    content_hash: str

    @property
    def ansible_cfg(self) -> Path:
        return self.root / "ansible.cfg"

    @property
    def site(self) -> Path:
        return self.root / "site.yml"

    @property
    def rollback(self) -> Path:
        return self.root / "playbooks" / "rollback.yml"

    @property
    def local_group_vars(self) -> Path:
        return self.root / "inventories" / "local" / "group_vars"


def content_hash(root: Path) -> str:
    """sha256 over relative paths and contents, in a stable order."""
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def snapshot_project(destination: Path, source: Path = REPO_ROOT) -> Project:
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy2(source / name, destination / name)
    for name in PROJECT_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, destination / name, ignore=IGNORED, symlinks=True)
    return Project(root=destination, content_hash=content_hash(destination)[:16])
