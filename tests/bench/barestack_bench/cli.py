"""Command line: ``python -m barestack_bench [--part all|<part>,...]``.

Parts: converge, nochange, venvs, requests, deploy, wheelhouse, backup.

Writes bench/results/bench-<parts>.json and .md (bench-<parts>-supervisor.* with --process-manager
supervisor) and prints the Markdown. Exit codes: 0 every part ran (targets missed or not: the report
says), 1 a part failed (the others still ran and are reported), 2 bad input (nothing was started).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from barestack_bench.environment import controller_facts, load_average
from barestack_bench.parts import ALL_PARTS, PARTS
from barestack_bench.parts.requests import Credentials
from barestack_bench.project import content_hash
from barestack_bench.report import (
    RunReport,
    load_report,
    render_markdown,
    write_report,
    write_text_atomically,
)
from barestack_bench.results import PartResult
from barestack_bench.session import Session
from barestack_bench.settings import PROCESS_MANAGERS, RESULTS_DIR, BenchSettings


def _parts(value: str) -> list[str]:
    names = list(ALL_PARTS) if value == "all" else [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"parts are all or a comma list of {', '.join(PARTS)}; got {value!r}"
        )
    # Always in the canonical order: the venvs part must not run before the ones it would disturb.
    return [name for name in PARTS if name in names]


def _counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(word) for word in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected module counts like 400,1000; got {value!r}") from None
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"module counts must be positive; got {value!r}")
    return counts


def _scales(value: str) -> tuple[tuple[int, int], ...]:
    try:
        scales = tuple(
            (int(count), int(sets)) for count, sets in (word.split(":") for word in value.split(","))
        )
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MODULES:SETS pairs like 400:250,1000:600; got {value!r}"
        ) from None
    if not scales or any(not 1 <= sets <= count for count, sets in scales):
        raise argparse.ArgumentTypeError(f"each pair needs 1 <= SETS <= MODULES; got {value!r}")
    return scales


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="barestack_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", type=_parts, default=list(ALL_PARTS), help="all (default) or a comma list")
    parser.add_argument(
        "--iterations", type=_positive, default=BenchSettings.iterations, help="runs per figure"
    )
    parser.add_argument(
        "--module-counts",
        type=_counts,
        default=BenchSettings.module_counts,
        help="generated module counts for the venvs part (default 400,1000)",
    )
    parser.add_argument(
        "--wheelhouse-scales",
        type=_scales,
        default=BenchSettings.wheelhouse_scales,
        help="MODULES:SETS of the wheelhouse part's trees (default 400:250,1000:600)",
    )
    parser.add_argument(
        "--naive-sample",
        type=_positive,
        default=BenchSettings.naive_sample,
        help="modules the naive baseline is measured on (split over the runs)",
    )
    parser.add_argument(
        "--request-seconds",
        type=_positive,
        default=int(BenchSettings.request_duration_s),
        help="seconds per wrk run in the requests part (default 10)",
    )
    parser.add_argument(
        "--request-connections",
        type=_counts,
        default=BenchSettings.request_connections,
        help="wrk concurrencies of the requests part (default 8,32)",
    )
    parser.add_argument(
        "--backup-size-mb",
        type=_positive,
        default=BenchSettings.backup_size_mb,
        help="size of the database the backup part generates, MiB (default 1024)",
    )
    parser.add_argument(
        "--stack-modules",
        type=_positive,
        default=BenchSettings.stack_modules,
        help="realistic generated modules the converged stack deploys (converge, nochange; default 400)",
    )
    parser.add_argument(
        "--stack-distinct-sets",
        type=_positive,
        default=BenchSettings.stack_distinct_sets,
        help="their distinct requirement sets (generate_modules.py --distinct-sets; default 250)",
    )
    parser.add_argument(
        "--machine-name",
        default=BenchSettings.machine_name,
        help="the bench machine's name (bench-..., default bench-stack); an existing one is replaced",
    )
    parser.add_argument(
        "--process-manager",
        choices=PROCESS_MANAGERS,
        default=BenchSettings.process_manager,
        help="app_process_manager on the bench's machines (default systemd); results get a -<manager> "
        "suffix unless systemd. The requests part needs systemd (its baseline copies the backend's unit)",
    )
    parser.add_argument(
        "--api-token-file",
        type=Path,
        help="a file holding an API token for /api/ (default: one the requests part creates on its machine)",
    )
    parser.add_argument(
        "--infra-cookie-file",
        type=Path,
        help="a file holding the login cookie (name=value) for /infra/ (default: the part logs in as admin)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--work-dir", type=Path, help="logs, inventory, trees (default: a new /tmp folder)")
    parser.add_argument(
        "--keep-machine", action="store_true", help="leave the bench machine running at the end"
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only write the Markdown of an earlier run's JSON again"
    )
    arguments = parser.parse_args(argv)
    if arguments.process_manager != "systemd" and "requests" in arguments.part:
        parser.error(
            "the requests part's hello-world baseline is a copy of the backend's systemd unit: "
            f"run it with --process-manager systemd, not {arguments.process_manager}"
        )
    return arguments


def run_name(parts: list[str], process_manager: str) -> str:
    """The results' file name: bench-<parts>[-<manager>], so a supervisor run keeps systemd's files."""
    name = "bench-" + ("all" if parts == list(ALL_PARTS) else "-".join(parts))
    return name if process_manager == "systemd" else f"{name}-{process_manager}"


def run_command(parts: list[str], process_manager: str) -> str:
    """How to run the same again, as the report quotes it."""
    command = "make bench" + ("" if parts == list(ALL_PARTS) else f" PART={','.join(parts)}")
    if process_manager != "systemd":
        command += f" BENCH_ARGS='--process-manager {process_manager}'"
    return command


def _read_secret(path: Path | None) -> str | None:
    """A credential from a file (never from the command line, where ps would show it)."""
    if path is None:
        return None
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty")
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_again(json_path: Path) -> int:
    try:
        report = load_report(json_path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"barestack_bench: cannot read {json_path}: {error}", file=sys.stderr)
        return 2
    markdown_path = json_path.with_suffix(".md")
    write_text_atomically(markdown_path, render_markdown(report))
    print(f"wrote {markdown_path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.render:
        return render_again(arguments.render)
    if os.geteuid() != 0:
        print("barestack_bench: test machines need root; run as root (make bench)", file=sys.stderr)
        return 2
    try:
        settings = BenchSettings(
            iterations=arguments.iterations,
            module_counts=arguments.module_counts,
            wheelhouse_scales=arguments.wheelhouse_scales,
            naive_sample=arguments.naive_sample,
            keep_machine=arguments.keep_machine,
            machine_name=arguments.machine_name,
            process_manager=arguments.process_manager,
            request_duration_s=float(arguments.request_seconds),
            request_connections=arguments.request_connections,
            backup_size_mb=arguments.backup_size_mb,
            stack_modules=arguments.stack_modules,
            stack_distinct_sets=arguments.stack_distinct_sets,
        )
        credentials = Credentials(
            api_token=_read_secret(arguments.api_token_file),
            infra_cookie=_read_secret(arguments.infra_cookie_file),
        )
    except (ValueError, OSError) as error:
        print(f"barestack_bench: {error}", file=sys.stderr)
        return 2
    work_dir = arguments.work_dir or Path(tempfile.mkdtemp(prefix="barestack-bench-"))
    session = Session(settings, work_dir)
    session.credentials = credentials
    session.progress(f"parts {', '.join(arguments.part)}; logs in {work_dir}/logs")
    started_at, started = _now(), time.monotonic()
    controller = controller_facts()
    # What this run measures, copied now: later edits to the repository do not reach its runs.
    controller["project_snapshot"] = session.project.content_hash
    controller["services_snapshot"] = content_hash(session.default_tree())[:16]
    parts: list[PartResult] = []
    errors: list[dict[str, str]] = []
    try:
        for name in arguments.part:
            part_started = time.monotonic()
            session.progress(f"part {name}")
            try:
                part = PARTS[name](session)
            except Exception as error:  # one broken part must not cost the numbers of the others
                traceback.print_exc()
                errors.append({"part": name, "error": f"{type(error).__name__}: {error}"})
                continue
            part.duration_s = time.monotonic() - part_started
            parts.append(part)
    finally:
        session.close()
    controller["load_average_end"] = load_average()
    report = RunReport(
        command=run_command(arguments.part, settings.process_manager),
        started=started_at,
        finished=_now(),
        duration_s=time.monotonic() - started,
        settings={**asdict(settings), "argv": shlex.join(sys.argv[1:] if argv is None else argv)},
        controller=controller,
        parts=parts,
        errors=errors,
    )
    name = run_name(arguments.part, settings.process_manager)
    json_path, markdown_path, markdown = write_report(report, arguments.results_dir, name)
    print(markdown)
    session.progress(f"wrote {json_path} and {markdown_path}")
    return 1 if errors else 0
