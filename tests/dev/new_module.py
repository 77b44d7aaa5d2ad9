"""``make new-module SERVICE=backend``: scaffold the service's next free module.

Writes ``services/<service>/<prefix>-<NNN>/app.py`` and ``requirements.txt`` in the shape of the
existing modules (``barestack_common.module`` for the JSON result and the exit codes, ``main(argv) -> int``),
where NNN is one more than the highest number any module of the service has and the prefix is the
one most of its modules use (``--prefix`` to choose). Exit 2 for an unknown service or a bad prefix.
"""

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
# As the venv manager's discovery and run_module.sh accept them.
MODULE_NAME = re.compile(r"^(?P<prefix>[a-z]+)-(?P<number>\d{3,})$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PREFIX = re.compile(r"^[a-z]+$")

APP = '''\
"""{key}: say what this module does in one line.

Usage: python app.py NAME...
Prints one JSON document on stdout, {{"module": "{key}", "greetings": [...]}}.
Exit codes: 0 done, 1 the work failed, 2 bad arguments (see services/README.md).
"""

import os
import sys

from barestack_common.module import EXIT_BAD_INPUT, emit_json, fail


def main(argv: list[str]) -> int:
    if not argv:
        fail("usage: app.py NAME...", EXIT_BAD_INPUT)
    module = os.environ.get("BARESTACK_MODULE", "{key}")
    emit_json({{"module": module, "greetings": [f"hello, {{name}}" for name in argv]}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''

REQUIREMENTS = """\
# {key}: one requirement per line, pinned exactly (packaging==24.2); no file or no line = an
# empty venv. Only names and versions: no -r, --index-url, URLs or paths (services/README.md).
"""


class ScaffoldError(ValueError):
    pass


def next_module(service_dir: Path, prefix: str | None = None) -> str:
    modules = [m for m in (MODULE_NAME.match(p.name) for p in service_dir.iterdir() if p.is_dir()) if m]
    if prefix is None:
        counts = Counter(m["prefix"] for m in modules)
        prefix = counts.most_common(1)[0][0] if counts else service_dir.name[0]
    if not PREFIX.match(prefix):
        raise ScaffoldError(f"bad prefix {prefix!r}: lower-case letters only")
    number = max((int(m["number"]) for m in modules), default=0) + 1
    width = max([3, *(len(m["number"]) for m in modules)])
    return f"{prefix}-{number:0{width}d}"


def scaffold(services: Path, service: str, prefix: str | None = None) -> Path:
    service_dir = services / service
    # A service folder is one with its Flask package, barestack_<service>/ (not _lib, not tools).
    if not SERVICE_NAME.match(service) or not (service_dir / f"barestack_{service}").is_dir():
        known = sorted(p.parent.name for p in services.glob("*/barestack_*") if p.is_dir())
        raise ScaffoldError(f"unknown service {service!r} (one of: {', '.join(known)})")
    name = next_module(service_dir, prefix)
    module_dir = service_dir / name
    module_dir.mkdir()  # never overwrites: an existing folder is an error
    key = f"{service}/{name}"
    (module_dir / "app.py").write_text(APP.format(key=key), encoding="utf-8")
    (module_dir / "requirements.txt").write_text(REQUIREMENTS.format(key=key), encoding="utf-8")
    return module_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="new_module.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("service", help="backend, frontend or infrastructure")
    parser.add_argument("--prefix", help="module name prefix (default: the one most modules use)")
    parser.add_argument("--services-dir", type=Path, default=SERVICES)
    arguments = parser.parse_args(argv)
    try:
        module_dir = scaffold(arguments.services_dir, arguments.service, arguments.prefix)
    except (ScaffoldError, FileExistsError) as error:
        print(f"new-module: {error}", file=sys.stderr)
        return 2
    key = f"{arguments.service}/{module_dir.name}"
    try:
        shown = module_dir.relative_to(Path.cwd())
    except ValueError:
        shown = module_dir
    print(f"created {shown}/app.py and requirements.txt")
    print(f"run it: make run-module M={key} ARGS='world'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
