"""Read a requirements file and normalise it, so equal requirement sets hash equally.

Module requirement files may only list plain requirement specifiers: the wheelhouse is the
sole package source on the host, so index options, includes, editable installs and direct
URLs would either be ignored or break the offline build. They are rejected with the line
number instead.
"""

import re
from pathlib import Path

REQUIREMENTS_FILENAME = "requirements.txt"

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
