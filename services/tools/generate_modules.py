#!/usr/bin/env python3
"""Generate N synthetic numbered modules (``<service>/gen-0001`` ...) to exercise the venv manager at scale.

Each module gets a small working app.py (it imports its pinned packages, checks their versions
and fingerprints its arguments) and a requirements.txt drawn from a small pool of pure-Python
packages, so a tree holds a few distinct requirement sets shared by many modules, conflicting
versions included. ``services/_lib`` (the modules' ``barestack_common``) is copied in too.
The same --seed always gives byte-identical output.

With ``--distinct-sets N`` (the realistic mode) the modules use exactly N distinct sets of 1-3
pinned pure-Python packages drawn from a larger pool of real PyPI releases (REALISTIC_POOL): some
pull in dependencies (requests, rich, anyio, ...), most packages come in two or three versions, so
sets pin conflicting versions of the same package, like the modules of a real code base do. Every
set is used by at least one module, the rest of the modules share them unevenly (a few sets are
popular, most are used once or twice).

    generate_modules.py --out DIR --count 400 [--services backend,frontend,infrastructure] [--seed 0]
                        [--distinct-sets 250]
"""

import argparse
import json
import random
import re
import shutil
import sys
from pathlib import Path

SERVICES_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SERVICES = ("backend", "frontend", "infrastructure")
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
GENERATED_MODULE_RE = re.compile(r"^gen-\d{4,}$")
MODULE_PREFIX = "gen"

# distribution -> import name, for every package the pool uses.
IMPORT_NAMES = {
    "attrs": "attr",
    "idna": "idna",
    "more-itertools": "more_itertools",
    "packaging": "packaging",
    "python-dateutil": "dateutil",
    "six": "six",
    "typing-extensions": "typing_extensions",
}

# The realistic mode's pool: distribution -> (import name, versions), all real releases on PyPI
# with a pure-Python wheel that installs on Python 3.11 to 3.13. Versions were picked so that any
# two packages of the pool resolve together (e.g. requests allows every idna and urllib3 here).
REALISTIC_POOL: dict[str, tuple[str, tuple[str, ...]]] = {
    "anyio": ("anyio", ("4.4.0", "4.6.2")),  # -> idna, sniffio
    "asgiref": ("asgiref", ("3.8.1",)),
    "async-timeout": ("async_timeout", ("4.0.3", "5.0.1")),
    "attrs": ("attr", ("23.2.0", "24.2.0", "24.3.0")),
    "beautifulsoup4": ("bs4", ("4.12.2", "4.12.3")),  # -> soupsieve
    "blinker": ("blinker", ("1.8.2", "1.9.0")),
    "cachetools": ("cachetools", ("5.4.0", "5.5.0")),
    "certifi": ("certifi", ("2024.8.30", "2024.12.14")),
    "chardet": ("chardet", ("5.2.0",)),
    "click": ("click", ("8.1.7", "8.1.8")),
    "colorama": ("colorama", ("0.4.6",)),
    "decorator": ("decorator", ("5.1.1",)),
    "defusedxml": ("defusedxml", ("0.7.1",)),
    "distlib": ("distlib", ("0.3.8", "0.3.9")),
    "docutils": ("docutils", ("0.20.1", "0.21.2")),
    "filelock": ("filelock", ("3.15.4", "3.16.1")),
    "h11": ("h11", ("0.14.0",)),
    "humanize": ("humanize", ("4.10.0", "4.11.0")),
    "idna": ("idna", ("3.7", "3.10")),
    "importlib-metadata": ("importlib_metadata", ("8.4.0", "8.5.0")),  # -> zipp
    "iniconfig": ("iniconfig", ("2.0.0",)),
    "itsdangerous": ("itsdangerous", ("2.1.2", "2.2.0")),
    "jmespath": ("jmespath", ("1.0.1",)),
    "markdown-it-py": ("markdown_it", ("3.0.0",)),  # -> mdurl
    "more-itertools": ("more_itertools", ("10.4.0", "10.5.0")),
    "packaging": ("packaging", ("23.2", "24.1", "24.2")),
    "platformdirs": ("platformdirs", ("4.2.2", "4.3.6")),
    "pluggy": ("pluggy", ("1.5.0",)),
    "pygments": ("pygments", ("2.17.2", "2.18.0")),
    "pyparsing": ("pyparsing", ("3.1.4", "3.2.0")),
    "python-dateutil": ("dateutil", ("2.8.2", "2.9.0.post0")),  # -> six
    "python-slugify": ("slugify", ("8.0.4",)),  # -> text-unidecode
    "pytz": ("pytz", ("2024.1", "2024.2")),
    "requests": ("requests", ("2.31.0", "2.32.3")),  # -> certifi, charset-normalizer, idna, urllib3
    "rich": ("rich", ("13.7.1", "13.9.4")),  # -> markdown-it-py, pygments
    "semver": ("semver", ("3.0.2",)),
    "six": ("six", ("1.16.0", "1.17.0")),
    "sniffio": ("sniffio", ("1.3.1",)),
    "soupsieve": ("soupsieve", ("2.5", "2.6")),
    "sqlparse": ("sqlparse", ("0.5.1", "0.5.2")),
    "structlog": ("structlog", ("24.1.0", "24.4.0")),
    "tabulate": ("tabulate", ("0.9.0",)),
    "termcolor": ("termcolor", ("2.4.0", "2.5.0")),
    "tomlkit": ("tomlkit", ("0.12.5", "0.13.2")),
    "toolz": ("toolz", ("0.12.1", "1.0.0")),
    "typing-extensions": ("typing_extensions", ("4.10.0", "4.12.2")),
    "tzdata": ("tzdata", ("2024.1", "2024.2")),
    "urllib3": ("urllib3", ("1.26.20", "2.2.3")),
    "wcwidth": ("wcwidth", ("0.2.13",)),
    "zipp": ("zipp", ("3.20.2", "3.21.0")),
}
# How many packages a realistic set pins: 1, 2 or 3, mostly one or two.
SET_SIZE_WEIGHTS = ((1, 5), (2, 4), (3, 2))

# (weight, pins): most modules share a few sets; two versions of packaging, six and attrs
# make conflicting pins across modules, which the venvs must keep apart.
REQUIREMENT_POOL: tuple[tuple[int, tuple[str, ...]], ...] = (
    (6, ()),
    (5, ("packaging==24.2",)),
    (3, ("packaging==23.2",)),
    (3, ("six==1.17.0",)),
    (2, ("six==1.16.0",)),
    (3, ("idna==3.10",)),
    (2, ("attrs==24.2.0",)),
    (2, ("attrs==23.2.0", "six==1.16.0")),
    (2, ("python-dateutil==2.9.0.post0",)),
    (2, ("more-itertools==10.5.0",)),
    (2, ("idna==3.10", "packaging==24.2")),
    (1, ("typing-extensions==4.12.2",)),
)

APP_TEMPLATE = '''"""Synthetic module {key}: checks its venv holds {summary} and fingerprints its arguments.

Generated by services/tools/generate_modules.py (seed {seed}) to exercise the venv manager at scale.
Usage: python app.py [WORD...]    prints {{"module", "packages", "sha256"}}; exits 1 on a wrong venv.
"""

import hashlib
import importlib
import importlib.metadata
import sys

from barestack_common.module import emit_json, fail

MODULE = {key!r}
# distribution -> (import name, pinned version)
PINNED = {pinned!r}


def main(argv: list[str]) -> int:
    packages = {{}}
    for distribution, (import_name, pinned_version) in PINNED.items():
        importlib.import_module(import_name)
        packages[distribution] = importlib.metadata.version(distribution)
        if packages[distribution] != pinned_version:
            fail(f"{{distribution}} is {{packages[distribution]}} in this venv, {{pinned_version}} is pinned")
    digest = hashlib.sha256(" ".join(argv).encode()).hexdigest()
    emit_json({{"module": MODULE, "packages": packages, "sha256": digest}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def import_name(distribution: str) -> str:
    if distribution in IMPORT_NAMES:
        return IMPORT_NAMES[distribution]
    return REALISTIC_POOL[distribution][0]


def pinned_table(pins: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for pin in pins:
        distribution, _, version = pin.partition("==")
        table[distribution] = (import_name(distribution), version)
    return table


def realistic_sets(count: int, rng: random.Random) -> list[tuple[str, ...]]:
    """``count`` distinct sets of 1-3 pins of different packages from REALISTIC_POOL, in draw order."""
    names = sorted(REALISTIC_POOL)
    sizes, size_weights = zip(*SET_SIZE_WEIGHTS, strict=True)
    sets: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    attempts = 0
    while len(sets) < count:
        attempts += 1
        if attempts > count * 100:
            raise ValueError(f"cannot draw {count} distinct requirement sets from the pool")
        size = rng.choices(sizes, weights=size_weights)[0]
        pins = tuple(
            sorted(f"{name}=={rng.choice(REALISTIC_POOL[name][1])}" for name in rng.sample(names, size))
        )
        if pins not in seen:
            seen.add(pins)
            sets.append(pins)
    return sets


def realistic_assignment(count: int, distinct_sets: int, rng: random.Random) -> list[tuple[str, ...]]:
    """The pins of each of ``count`` modules: every set used once, the rest shared unevenly."""
    sets = realistic_sets(distinct_sets, rng)
    # Zipf-like popularity: the k-th set is picked again with weight 1/k.
    extra = rng.choices(sets, weights=[1 / rank for rank in range(1, len(sets) + 1)], k=count - len(sets))
    assignment = sets + extra
    rng.shuffle(assignment)
    return assignment


def module_name(number: int, count: int) -> str:
    return f"{MODULE_PREFIX}-{number:0{max(4, len(str(count)))}d}"


def write_module(module_dir: Path, key: str, pins: tuple[str, ...], seed: int) -> None:
    module_dir.mkdir(parents=True, exist_ok=True)
    summary = ", ".join(pins) or "no packages"
    app = APP_TEMPLATE.format(key=key, summary=summary, seed=seed, pinned=pinned_table(pins))
    (module_dir / "app.py").write_text(app, encoding="utf-8")
    requirements = module_dir / "requirements.txt"
    if pins:
        requirements.write_text("".join(f"{pin}\n" for pin in pins), encoding="utf-8")
    else:
        requirements.unlink(missing_ok=True)


def copy_library(out: Path) -> None:
    """services/_lib beside the generated services, as on a host: the modules import barestack_common."""
    destination = out / "_lib"
    if destination.resolve() != (SERVICES_DIR / "_lib").resolve():
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(SERVICES_DIR / "_lib", destination, dirs_exist_ok=True, ignore=ignore)


def generate(
    out: Path, count: int, services: list[str], seed: int, distinct_sets: int | None = None
) -> dict[str, object]:
    """Write the tree; generated modules beyond ``count`` from an earlier run are deleted.

    Without ``distinct_sets`` the modules draw from the small REQUIREMENT_POOL; with it, from
    exactly that many distinct sets of the realistic pool (at most ``count``).
    """
    if distinct_sets is not None and not 1 <= distinct_sets <= count:
        raise ValueError(f"--distinct-sets must be between 1 and --count ({count}), got {distinct_sets}")
    rng = random.Random(seed)
    weights = [weight for weight, _ in REQUIREMENT_POOL]
    assignment = realistic_assignment(count, distinct_sets, rng) if distinct_sets else None
    wanted: dict[str, set[str]] = {service: set() for service in services}
    used_sets: set[tuple[str, ...]] = set()
    for number in range(1, count + 1):
        service = services[(number - 1) % len(services)]
        name = module_name(number, count)
        if assignment is not None:
            pins = assignment[number - 1]
        else:
            pins = rng.choices([pins for _, pins in REQUIREMENT_POOL], weights=weights)[0]
        write_module(out / service / name, f"{service}/{name}", pins, seed)
        wanted[service].add(name)
        used_sets.add(pins)
    for service in services:
        service_out = out / service
        service_out.mkdir(parents=True, exist_ok=True)
        for stale in service_out.iterdir():
            if GENERATED_MODULE_RE.match(stale.name) and stale.name not in wanted[service]:
                shutil.rmtree(stale)
    copy_library(out)
    return {
        "out": str(out),
        "count": count,
        "services": services,
        "seed": seed,
        "requirement_sets": len(used_sets),
        "distinct_packages": len({pin.partition("==")[0] for pins in used_sets for pin in pins}),
    }


def _services(value: str) -> list[str]:
    services = [service.strip() for service in value.split(",") if service.strip()]
    bad = [service for service in services if not SERVICE_NAME_RE.match(service)]
    if not services or bad or len(set(services)) != len(services):
        raise argparse.ArgumentTypeError(
            f"expected distinct service names like backend,frontend; got {value!r}"
        )
    return services


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="services tree to write into")
    parser.add_argument("--count", type=_count, required=True, help="number of modules")
    parser.add_argument("--services", type=_services, default=list(DEFAULT_SERVICES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--distinct-sets",
        type=_count,
        help="realistic mode: exactly N distinct sets of 1-3 pins from a pool of real PyPI packages",
    )
    arguments = parser.parse_args(argv)
    if arguments.distinct_sets is not None and arguments.distinct_sets > arguments.count:
        parser.error(f"--distinct-sets ({arguments.distinct_sets}) cannot exceed --count ({arguments.count})")
    summary = generate(
        arguments.out, arguments.count, arguments.services, arguments.seed, arguments.distinct_sets
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
