"""What a services tree asks for: its venvs (one per module, one per service) and their requirements.

A module is ``<service>/<module>/app.py`` with a folder name like ``a-001``. A service is a
folder of the services tree that has modules or its own ``requirements.txt``; folders with
neither (``tools/``) are not services. A folder that looks like a module but is misnamed or
lacks ``app.py`` is an error: silently skipping it would leave a module without a venv.

Requirement files may only list plain requirement specifiers: the wheelhouse is the sole
package source on the host, so index options, includes, editable installs and direct URLs would
either be ignored or break the offline build. They are rejected with the line number instead.
Equal requirement sets are normalised to one spelling, so they hash equally.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

MODULE_NAME_RE = re.compile(r"^[a-z]+-\d{3,}$")
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MODULE_ENTRYPOINT = "app.py"
REQUIREMENTS_FILENAME = "requirements.txt"
# A service's own venv sits beside its modules' venvs under a name no module can have.
SERVICE_VENV_DIRNAME = "_service"


class VenvManagerError(Exception):
    """Bad input or environment: the CLI stops with exit code 2 and changes nothing."""


# --- requirement files ---------------------------------------------------------------------
# Hand-written, not packaging.requirements: this runs on the host under the system python3 with
# the stdlib only (no packaging there), and the normalised spelling is part of every venv's hash.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REQUIREMENT_RE = re.compile(
    rf"^(?P<name>{_NAME})\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)
_SPEC_CLAUSE_RE = re.compile(r"^(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+$")
_EXTRA_RE = re.compile(rf"^{_NAME}$")
# pip treats "#" as a comment only at line start or after whitespace ("pkg==1.0 # why").
_COMMENT_RE = re.compile(r"(^|\s)#.*$")


class RequirementsError(ValueError):
    """A requirements file that the offline build cannot honour."""


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (``Foo_Bar`` and ``foo-bar`` are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def normalize_requirement(line: str) -> str:
    """Return one requirement in a canonical spelling, or raise RequirementsError."""
    if line.startswith("-"):
        option = line.split()[0]
        raise RequirementsError(
            f"option {option!r} is not supported: modules may only list requirements, "
            "the wheelhouse is the only package source"
        )
    if "://" in line or " @ " in line or line.startswith((".", "/")):
        raise RequirementsError(
            f"direct URL or path requirement {line!r} is not supported: add the package to the wheelhouse"
        )
    match = _REQUIREMENT_RE.match(line)
    if match is None:
        raise RequirementsError(f"cannot parse requirement {line!r}")
    name = canonical_name(match["name"])
    extras = [extra.strip() for extra in (match["extras"] or "").split(",") if extra.strip()]
    for extra in extras:
        if not _EXTRA_RE.match(extra):
            raise RequirementsError(f"bad extra {extra!r} in requirement {line!r}")
    clauses = [clause.replace(" ", "") for clause in match["spec"].split(",") if clause.strip()]
    for clause in clauses:
        if not _SPEC_CLAUSE_RE.match(clause):
            raise RequirementsError(f"bad version specifier {clause!r} in requirement {line!r}")
    normalized = name
    if extras:
        normalized += "[" + ",".join(sorted({canonical_name(extra) for extra in extras})) + "]"
    normalized += ",".join(sorted(clauses))
    marker = " ".join((match["marker"] or "").split())
    if marker:
        normalized += f"; {marker}"
    return normalized


def parse_requirements(text: str, source: str) -> tuple[str, ...]:
    """Normalised, sorted, de-duplicated requirements of a file's text.

    Order, comments, blank lines and spelling do not change what gets installed, so they
    must not change the venv hash either (a reformatted file must not rebuild 400 venvs).
    """
    requirements: set[str] = set()
    # Join pip-style continuation lines first so line numbers in errors stay the first line's.
    logical_lines: list[tuple[int, str]] = []
    pending: list[str] = []
    pending_start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            pending_start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        logical_lines.append((pending_start, " ".join(pending)))
        pending = []
    if pending:
        logical_lines.append((pending_start, " ".join(pending)))

    for number, line in logical_lines:
        stripped = _COMMENT_RE.sub("", line).strip()
        if not stripped:
            continue
        try:
            requirements.add(normalize_requirement(stripped))
        except RequirementsError as error:
            raise RequirementsError(f"{source} line {number}: {error}") from None
    return tuple(sorted(requirements))


def read_requirements(path: Path | None) -> tuple[str, ...]:
    """Requirements of a file; a missing file (or None) means no requirements at all."""
    if path is None:
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as error:
        raise RequirementsError(f"{path}: cannot read: {error}") from None
    return parse_requirements(text, str(path))


# --- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VenvSpec:
    """One venv the services tree asks for."""

    service: str
    module: str | None
    source: Path
    requirements_file: Path | None

    @property
    def key(self) -> str:
        """Mapping key: ``backend/a-001`` for a module, ``backend`` for the service itself."""
        return self.service if self.module is None else f"{self.service}/{self.module}"

    @property
    def kind(self) -> str:
        return "service" if self.module is None else "module"

    def venv_path(self, venvs_dir: Path) -> Path:
        return venvs_dir / self.service / (self.module or SERVICE_VENV_DIRNAME)


def venv_path_for_key(venvs_dir: Path, key: str) -> Path:
    """Where the venv of a mapping key lives, derived from the key (never from stored paths)."""
    service, _, module = key.partition("/")
    return venvs_dir / service / (module or SERVICE_VENV_DIRNAME)


def is_valid_key(key: str) -> bool:
    service, slash, module = key.partition("/")
    if not SERVICE_NAME_RE.match(service):
        return False
    return not slash or bool(MODULE_NAME_RE.match(module))


def _is_hidden_or_private(name: str) -> bool:
    return name.startswith((".", "_"))


def _module_folders(service_dir: Path) -> list[str]:
    """Module folder names of one service, raising on folders that look like broken modules."""
    modules: list[str] = []
    problems: list[str] = []
    with os.scandir(service_dir) as entries:
        for entry in entries:
            if not entry.is_dir() or _is_hidden_or_private(entry.name):
                continue
            folder = Path(entry.path)
            has_entrypoint = (folder / MODULE_ENTRYPOINT).is_file()
            if MODULE_NAME_RE.match(entry.name):
                if has_entrypoint:
                    modules.append(entry.name)
                else:
                    problems.append(f"module folder {folder} has no {MODULE_ENTRYPOINT}")
            elif has_entrypoint and not (folder / "__init__.py").exists():
                # A Python package (the service's Flask app) may have an app.py; a loose
                # folder with one is a module whose name run_module.sh could never accept.
                problems.append(
                    f"bad module name {entry.name!r} in {service_dir}: "
                    f"module folders must match {MODULE_NAME_RE.pattern}"
                )
    if problems:
        raise VenvManagerError("; ".join(sorted(problems)))
    return sorted(modules)


def discover(services_dir: Path) -> list[VenvSpec]:
    """All venvs of a services tree, services first then their modules, in a stable order."""
    if not services_dir.is_dir():
        raise VenvManagerError(f"services directory {services_dir} does not exist")
    root = Path(os.path.abspath(services_dir))
    specs: list[VenvSpec] = []
    for service_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        if _is_hidden_or_private(service_dir.name):
            continue
        modules = _module_folders(service_dir)
        service_requirements = service_dir / REQUIREMENTS_FILENAME
        if not modules and not service_requirements.is_file():
            continue
        if not SERVICE_NAME_RE.match(service_dir.name):
            raise VenvManagerError(
                f"bad service name {service_dir.name!r}: service folders must match {SERVICE_NAME_RE.pattern}"
            )
        specs.append(
            VenvSpec(
                service=service_dir.name,
                module=None,
                source=service_dir,
                requirements_file=service_requirements if service_requirements.is_file() else None,
            )
        )
        for module in modules:
            module_dir = service_dir / module
            module_requirements = module_dir / REQUIREMENTS_FILENAME
            specs.append(
                VenvSpec(
                    service=service_dir.name,
                    module=module,
                    source=module_dir,
                    requirements_file=module_requirements if module_requirements.is_file() else None,
                )
            )
    return specs


def venvs_on_disk(venvs_dir: Path) -> set[str]:
    """Keys of the venv folders present under the venvs dir (to prune ones nothing maps)."""
    keys: set[str] = set()
    if not venvs_dir.is_dir():
        return keys
    for service_dir in venvs_dir.iterdir():
        if not service_dir.is_dir() or not SERVICE_NAME_RE.match(service_dir.name):
            continue
        for venv_dir in service_dir.iterdir():
            if not venv_dir.is_dir() or venv_dir.is_symlink():
                continue
            if venv_dir.name == SERVICE_VENV_DIRNAME:
                keys.add(service_dir.name)
            elif MODULE_NAME_RE.match(venv_dir.name):
                keys.add(f"{service_dir.name}/{venv_dir.name}")
    return keys
