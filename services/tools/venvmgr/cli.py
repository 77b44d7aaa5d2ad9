"""Command line: ``build`` (default, on the host), ``wheelhouse`` (controller), ``extract-uv`` (host).

Every command prints one JSON report on stdout, which the Ansible module returns as is.
Exit codes: 0 success, 1 something failed (the report says what), 2 bad input (nothing changed).

The wheelhouse module is imported only for its command: it needs ``packaging``, which the
controller's Python has (ansible-core depends on it) and the host's stdlib-only python3 has not.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .build import BuildOptions, exclusive_lock, extract_uv, find_uv, run_build
from .discovery import VenvManagerError, is_valid_key
from .report import error_report

COMMANDS = ("build", "wheelhouse", "extract-uv")
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _only_key(value: str) -> str:
    if not is_valid_key(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a venv key like backend/a-001 or backend")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


class _JsonErrorParser(argparse.ArgumentParser):
    """Usage errors also end in a JSON report: the Ansible module always gets one to return."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        print(json.dumps(error_report(message), indent=2, sort_keys=True))
        sys.exit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    parser = _JsonErrorParser(prog="venv_manager.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_JsonErrorParser)

    build = commands.add_parser("build", help="create/update/remove the venvs of a services tree")
    build.add_argument("--services-dir", type=Path, required=True, help="tree of <service>/<module>/app.py")
    build.add_argument("--venvs-dir", type=Path, required=True, help="venvs go to <dir>/<service>/<module>")
    build.add_argument("--mapping", type=Path, required=True, help="venv_mapping.json to maintain")
    build.add_argument("--wheelhouse", type=Path, required=True, help="folder of wheels (the only source)")
    build.add_argument("--python", default=sys.executable, help="venv interpreter (default: this one)")
    build.add_argument("--uv", help="uv binary (default: uv on PATH)")
    build.add_argument(
        "--cache-dir", type=Path, help="uv cache for all venvs (default: <venvs-dir>/.uv-cache)"
    )
    build.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1, help="parallel builds")
    build.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    build.add_argument("--only", type=_only_key, action="append", default=[], help="limit to this venv key")

    wheelhouse = commands.add_parser("wheelhouse", help="download the wheels of a services tree for a target")
    wheelhouse.add_argument("--services-dir", type=Path, required=True)
    wheelhouse.add_argument("--out", type=Path, required=True, help="wheelhouse folder to fill")
    wheelhouse.add_argument("--python-version", required=True, help="target Python, 3.Y or better 3.Y.Z")
    wheelhouse.add_argument("--platform", default="x86_64-manylinux_2_28", help="target as uv spells it")
    wheelhouse.add_argument("--uv", help="uv binary used to resolve (default: uv on PATH)")
    wheelhouse.add_argument("--jobs", type=_positive_int, default=8, help="parallel uv resolutions")
    wheelhouse.add_argument(
        "--cache-dir", type=Path, help="uv cache shared by the resolutions (default: uv's own cache)"
    )

    extract = commands.add_parser("extract-uv", help="unpack the uv binary from the wheelhouse")
    extract.add_argument("--wheelhouse", type=Path, required=True)
    extract.add_argument("--dest", type=Path, required=True, help="where the uv binary goes")
    return parser


def _run(arguments: argparse.Namespace) -> tuple[dict[str, Any], int]:
    if arguments.command == "build":
        options = BuildOptions(
            services_dir=arguments.services_dir,
            venvs_dir=Path(os.path.abspath(arguments.venvs_dir)),
            mapping=Path(os.path.abspath(arguments.mapping)),
            wheelhouse=Path(os.path.abspath(arguments.wheelhouse)),
            python=arguments.python,
            uv=arguments.uv,
            cache_dir=arguments.cache_dir,
            jobs=arguments.jobs,
            dry_run=arguments.dry_run,
            only=tuple(arguments.only),
        )
        return run_build(options)
    if arguments.command == "wheelhouse":
        try:
            from . import wheelhouse
        except ModuleNotFoundError as error:
            raise VenvManagerError(
                f"the wheelhouse command runs on the controller and needs {error.name!r} "
                f"(the Python that runs Ansible has it); {sys.executable} has not"
            ) from None
        target = wheelhouse.Target.parse(arguments.python_version, arguments.platform)
        out = Path(os.path.abspath(arguments.out))
        # One build of a folder at a time, the lock beside it (the folder's contents go to hosts):
        # site.yml starts the build early in the background, and the app role's build then waits
        # for it and finds the wheelhouse up to date.
        with exclusive_lock(out.parent, f"{out.name}.lock"):
            return wheelhouse.build_wheelhouse(
                wheelhouse.WheelhouseOptions(
                    services_dir=arguments.services_dir,
                    out=out,
                    target=target,
                    uv=find_uv(arguments.uv),
                    jobs=arguments.jobs,
                    cache_dir=Path(os.path.abspath(arguments.cache_dir)) if arguments.cache_dir else None,
                )
            )
    return extract_uv(arguments.wheelhouse, arguments.dest), 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in (*COMMANDS, "-h", "--help"):
        args.insert(0, "build")  # build is the default command
    arguments = _parser().parse_args(args)
    try:
        report, exit_code = _run(arguments)
    except VenvManagerError as error:
        print(f"venv_manager: {error}", file=sys.stderr)
        report, exit_code = error_report(str(error)), EXIT_BAD_INPUT
    except OSError as error:
        # Disk full, permissions: the run stopped part way, so report it as a failure (exit 1),
        # still as JSON. Venvs are swapped in whole, so none is left half built.
        print(f"venv_manager: {error}", file=sys.stderr)
        report, exit_code = error_report(f"stopped by an OS error: {error}"), EXIT_FAILED
    print(json.dumps(report, indent=2, sort_keys=True))
    return exit_code
