"""The modules that can be run, read from the venv manager's ``venv_mapping.json``.

The file is re-read only when it changes (mtime/size), so a deployment that rebuilds venvs
is picked up without a restart and a request never parses a 400-module file needlessly. Each
reading is one immutable ``Catalog``: whatever a caller derives from it (the API's encoded
listing) stays valid for as long as ``ModuleCatalog.current()`` returns that same object.
"""

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_FORMAT = 1


class CatalogUnavailable(Exception):
    """The mapping file is missing or not in the expected shape; the message says which."""


@dataclass(frozen=True)
class ModuleEntry:
    service: str
    module: str
    python: str | None
    packages: dict[str, str]
    hash: str | None

    @property
    def key(self) -> str:
        return f"{self.service}/{self.module}"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "module": self.module,
            "python": self.python,
            "packages": self.packages,
            "hash": self.hash,
        }


def _parse(path: Path, document: Any) -> dict[str, ModuleEntry]:
    if not isinstance(document, dict) or document.get("format") != SUPPORTED_FORMAT:
        raise CatalogUnavailable(f'{path}: expected a JSON object with "format": {SUPPORTED_FORMAT}')
    venvs = document.get("venvs")
    if not isinstance(venvs, dict):
        raise CatalogUnavailable(f'{path}: "venvs" must be an object')
    modules: dict[str, ModuleEntry] = {}
    for key, entry in venvs.items():
        if not isinstance(entry, dict) or entry.get("kind") != "module":
            continue
        service, module = entry.get("service"), entry.get("module")
        if not isinstance(service, str) or not isinstance(module, str) or key != f"{service}/{module}":
            raise CatalogUnavailable(f"{path}: entry {key!r} must have service and module matching its key")
        packages = entry.get("packages") or {}
        if not isinstance(packages, dict):
            raise CatalogUnavailable(f'{path}: entry {key!r} has "packages" that is not an object')
        modules[key] = ModuleEntry(
            service=service,
            module=module,
            python=entry.get("python") or document.get("python"),
            packages={str(name): str(version) for name, version in packages.items()},
            hash=entry.get("hash"),
        )
    return dict(sorted(modules.items()))


@dataclass(frozen=True, eq=False)
class Catalog:
    """One reading of the mapping: entries sorted by key. Compared by identity, never by value."""

    by_key: dict[str, ModuleEntry]

    @property
    def entries(self) -> list[ModuleEntry]:
        return list(self.by_key.values())


class ModuleCatalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._catalog = Catalog({})

    def current(self) -> Catalog:
        """The mapping as it is now on disk (re-read only when it changed)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise CatalogUnavailable(f"module mapping {self.path} does not exist") from None
        except OSError as error:
            raise CatalogUnavailable(f"module mapping {self.path} cannot be read: {error.strerror}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    document = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                    raise CatalogUnavailable(
                        f"module mapping {self.path} is not valid JSON: {error}"
                    ) from None
                self._catalog = Catalog(_parse(self.path, document))
                self._stamp = stamp
            return self._catalog

    def is_current(self, catalog: Catalog) -> bool:
        """Whether ``catalog`` is still the mapping on disk (False when it cannot be read)."""
        try:
            return self.current() is catalog
        except CatalogUnavailable:
            return False

    def modules(self) -> list[ModuleEntry]:
        return self.current().entries

    def get(self, service: str, module: str) -> ModuleEntry | None:
        return self.current().by_key.get(f"{service}/{module}")
