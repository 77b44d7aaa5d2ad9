"""The ``wheelhouse`` command (controller side): every wheel the host's venvs will need.

Cost scales with the distinct packages, not with the requirement sets:

- uv resolves for the target Python and platform (``uv pip compile --format pylock.toml``: the
  lock names the exact wheel, URL, size and sha256 of every package, chosen by uv for the target),
  in a pool of uv processes sharing one uv cache: each distinct requirement once, mostly offline
  after a few batch calls warmed the cache; a set of several requirements is the union of their
  closures when those agree, and only a set whose closures clash is resolved by uv (resolve_sets);
- a set's wheels are remembered in the stamp under a hash of the set and the target, so the next
  run resolves only the sets that are new or changed (a changed pin costs that set alone);
- every distinct wheel is downloaded once, concurrently, and checked against its sha256; wheels
  already in the folder are kept, wheels no set asks for any more are deleted.

Conflicting pins (packaging 23.2 here, 24.2 there) are different files, so both stay side by
side. The uv wheel the host builds venvs with is one more set (``uv==<controller's version>``).
The host installs only from this folder (``--offline --no-index --find-links``).
"""

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion

from .discovery import RequirementsError, VenvManagerError, discover, read_requirements
from .plan import write_if_changed

STAMP_FILENAME = ".barestack-wheelhouse.json"
# 2: the stamp remembers each set's wheels (format 1 had only the list of files).
WHEELHOUSE_FORMAT = 2
COMPILE_TIMEOUT_SECONDS = 600
DOWNLOAD_TIMEOUT_SECONDS = 120
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_JOBS = 16
_UV_VERSION_RE = re.compile(r"^uv (\d+\.\d+\.\d+)\b")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}(?:\.\d{1,2})?$")
_PLATFORM_RE = re.compile(r"^(?P<arch>x86_64|aarch64)-manylinux_2_(?P<glibc_minor>\d{1,2})$")
# The oldest glibc a manylinux wheel can claim (manylinux1 is glibc 2.5).
_OLDEST_GLIBC_MINOR = 5
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}

RequirementSets = dict[tuple[str, ...], list[str]]


@dataclass(frozen=True)
class Target:
    """The target host's Python version and platform, spelled for uv and for pip.

    The controller's Python is not the host's (trixie has 3.13, bookworm 3.11), so wheels are
    chosen for the target's version and glibc, never for the machine building the wheelhouse.
    ``python_version`` is X.Y or X.Y.Z (prefer the host's full version: markers such as
    ``python_full_version < '3.11.3'`` pull in extra packages on bookworm's 3.11.2).
    """

    python_version: str
    platform: str

    @classmethod
    def parse(cls, python_version: str, platform: str) -> "Target":
        if not _PYTHON_VERSION_RE.match(python_version):
            raise VenvManagerError(f"bad --python-version {python_version!r}: expected 3.Y or 3.Y.Z")
        if not _PLATFORM_RE.match(platform):
            raise VenvManagerError(
                f"bad --platform {platform!r}: expected ARCH-manylinux_2_N, e.g. x86_64-manylinux_2_28"
            )
        return cls(python_version, platform)

    def pip_platforms(self) -> list[str]:
        """Every manylinux tag a host with this glibc accepts, newest first, for pip --platform."""
        match = _PLATFORM_RE.match(self.platform)
        assert match is not None  # checked in parse()
        arch = match["arch"]
        tags: list[str] = []
        for minor in range(int(match["glibc_minor"]), _OLDEST_GLIBC_MINOR - 1, -1):
            tags.append(f"manylinux_2_{minor}_{arch}")
            if minor in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
        return tags


class ResolveError(Exception):
    """A set cannot be resolved for the target; the message is uv's."""


class DownloadError(Exception):
    """A wheel could not be fetched, or its bytes are not the ones the lock names."""


@dataclass(frozen=True)
class Wheel:
    """One wheel file as uv's lock names it."""

    filename: str
    url: str
    sha256: str
    size: int | None

    @property
    def name_and_version(self) -> tuple[str, str]:
        return wheel_name_and_version(self.filename)

    def to_json(self) -> dict[str, Any]:
        return {"filename": self.filename, "url": self.url, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, data: Any) -> "Wheel":
        """A wheel from the stamp; ValueError if the entry is not one we wrote."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        filename, url, sha256, size = (
            data.get("filename"),
            data.get("url"),
            data.get("sha256"),
            data.get("size"),
        )
        if not isinstance(filename, str) or "/" in filename or not is_wheel_filename(filename):
            raise ValueError(f"bad wheel file name {filename!r}")
        if not isinstance(url, str) or not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
            raise ValueError(f"bad url or sha256 for {filename}")
        if size is not None and not isinstance(size, int):
            raise ValueError(f"bad size for {filename}")
        return cls(filename, url, sha256, size)


def _parse_wheel_filename(filename: str) -> tuple[str, str, frozenset[Tag]]:
    """Canonical name, version and tags of a wheel file name; DownloadError if it is none."""
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        raise DownloadError(f"not a wheel file name: {filename}") from None
    return name, str(version), tags


def wheel_name_and_version(filename: str) -> tuple[str, str]:
    """``MarkupSafe-3.0.2-cp311-...whl`` -> (``markupsafe``, ``3.0.2``)."""
    name, version, _tags = _parse_wheel_filename(filename)
    return name, version


def is_wheel_filename(filename: str) -> bool:
    try:
        _parse_wheel_filename(filename)
    except DownloadError:
        return False
    return True


# --- which sets the tree has ---------------------------------------------------------------


def requirement_sets(services_dir: Path) -> tuple[RequirementSets, list[dict[str, Any]]]:
    """Distinct non-empty requirement sets -> the venv keys using each; plus unreadable files."""
    sets: RequirementSets = {}
    failures: list[dict[str, Any]] = []
    for spec in discover(services_dir):
        try:
            requirements = read_requirements(spec.requirements_file)
        except RequirementsError as error:
            failures.append({"venvs": [spec.key], "error": str(error)})
            continue
        if requirements:
            sets.setdefault(requirements, []).append(spec.key)
    return sets, failures


def uv_version(uv: str) -> str:
    """Version of the controller's uv; the host gets the same uv from the wheelhouse."""
    try:
        output = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise VenvManagerError(f"cannot run {uv} --version: {error}") from None
    match = _UV_VERSION_RE.match(output.stdout.strip())
    if match is None:
        raise VenvManagerError(f"cannot read the uv version from {output.stdout.strip()!r}")
    return match[1]


def wheelhouse_key(sets: RequirementSets, target: Target, uv: str) -> str:
    """The whole tree's key: unchanged means nothing to do (and no network)."""
    digest = hashlib.sha256()
    digest.update(f"wheelhouse-format={WHEELHOUSE_FORMAT}\npython={target.python_version}\n".encode())
    digest.update(f"platform={target.platform}\nuv={uv}\n".encode())
    for requirements in sorted(sets):
        digest.update(("\n".join(requirements) + "\n--\n").encode())
    return digest.hexdigest()


def set_key(requirements: Sequence[str], target: Target) -> str:
    """One set's key: what it resolved to is reused while the set and the target stay the same."""
    digest = hashlib.sha256()
    digest.update(f"wheelhouse-format={WHEELHOUSE_FORMAT}\npython={target.python_version}\n".encode())
    digest.update(f"platform={target.platform}\n".encode())
    digest.update(("\n".join(requirements) + "\n").encode())
    return digest.hexdigest()


# --- resolving: uv picks the wheels ----------------------------------------------------------


def _wheel_rank(filename: str, target: Target) -> tuple[int, int]:
    """Lower is better: the interpreter-specific build over abi3 over pure, the newest glibc first."""
    _name, _version, tags = _parse_wheel_filename(filename)
    cpython = "cp" + "".join(target.python_version.split(".")[:2])
    abis = {tag.abi for tag in tags}
    interpreter = 0 if cpython in abis else 1 if "abi3" in abis else 2
    order = [*target.pip_platforms(), "any"]
    platforms = [order.index(tag.platform) for tag in tags if tag.platform in order]
    return interpreter, min(platforms, default=len(order))


def parse_lock(text: str, target: Target) -> list[Wheel]:
    """The wheel of every package in uv's pylock.toml; of several that fit, the one pip would pick."""
    try:
        lock = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ResolveError(f"cannot read uv's lock: {error}") from None
    wheels: list[Wheel] = []
    for package in lock.get("packages", []):
        name = package.get("name", "?")
        candidates: list[Wheel] = []
        for entry in package.get("wheels") or []:
            url, sha256 = entry.get("url"), (entry.get("hashes") or {}).get("sha256")
            if not isinstance(url, str) or not isinstance(sha256, str):
                raise ResolveError(f"uv's lock has no URL or sha256 for a wheel of {name}")
            filename = urllib.request.url2pathname(url.rsplit("/", 1)[-1].split("#", 1)[0])
            if not is_wheel_filename(filename):
                raise ResolveError(f"uv's lock names {url!r} for {name}, not a wheel")
            candidates.append(Wheel(filename, url, sha256.lower(), entry.get("size")))
        if not candidates:
            raise ResolveError(f"no wheel of {name} {package.get('version', '')} for the target")
        wheels.append(
            min(candidates, key=lambda wheel: (_wheel_rank(wheel.filename, target), wheel.filename))
        )
    return wheels


def _uv_environment(cache_dir: Path | None) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update({"NO_COLOR": "1", "UV_NO_PROGRESS": "1"})
    if cache_dir is not None:
        environment["UV_CACHE_DIR"] = str(cache_dir)
    return environment


def resolve_set(
    uv: str, requirements: Sequence[str], target: Target, cache_dir: Path | None = None, offline: bool = False
) -> list[Wheel]:
    """The wheels of the full closure of ``requirements`` on the target (``offline``: from uv's cache)."""
    command = [
        uv,
        "pip",
        "compile",
        "-",
        "--format",
        "pylock.toml",
        "--quiet",
        "--no-header",
        "--only-binary",
        ":all:",
        # Markers come from --python-version and wheels only are allowed, so no interpreter of
        # the target's version is needed: naming ours skips uv's search of PATH (seconds per call
        # with pyenv shims on it) and never makes it fetch one.
        "--no-python-downloads",
        "--python",
        sys.executable,
        "--python-version",
        target.python_version,
        "--python-platform",
        target.platform,
    ]
    if offline:
        command.append("--offline")
    try:
        completed = subprocess.run(
            command,
            input="".join(f"{requirement}\n" for requirement in requirements),
            capture_output=True,
            text=True,
            env=_uv_environment(cache_dir),
            timeout=COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ResolveError(f"cannot run uv pip compile: {error}") from None
    if completed.returncode != 0:
        raise ResolveError(completed.stderr.strip() or f"uv pip compile exited with {completed.returncode}")
    return parse_lock(completed.stdout, target)


def compose(parts: Sequence[list[Wheel]]) -> list[Wheel] | None:
    """The union of the closures of a set's requirements, each resolved alone, if they agree.

    If no package appears at two versions, the union is a valid resolution of the whole set:
    every requirement of every package in it is met by the very versions that met it alone, and
    each of the set's requirements is in its own closure. Otherwise (None) uv resolves the set.
    """
    union: dict[str, Wheel] = {}
    versions: dict[str, str] = {}
    for wheels in parts:
        for wheel in wheels:
            name, version = wheel.name_and_version
            if versions.setdefault(name, version) != version:
                return None
            union[wheel.filename] = wheel
    return [union[filename] for filename in sorted(union)]


def warm_up_batches(singles: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Lone requirements grouped into batches holding at most one requirement of each package."""
    batches: list[list[str]] = []
    for (requirement,) in sorted(singles):
        package = _package(requirement)
        for batch in batches:
            if all(_package(other) != package for other in batch):
                batch.append(requirement)
                break
        else:
            batches.append([requirement])
    # And every package unpinned: offline answers can only pick versions whose metadata is cached,
    # so the newest releases of shared dependencies (urllib3 under requests) must be fetched too,
    # or a dependency would land on an older version some other set happens to pin.
    names = sorted({_package(requirement) for batch in batches for requirement in batch})
    return [tuple(batch) for batch in [*batches, names] if len(batch) > 1]


def _package(requirement: str) -> str:
    try:
        return Requirement(requirement).name
    except InvalidRequirement:
        return requirement


Resolver = Callable[[tuple[str, ...], bool], list[Wheel]]
Outcome = list[Wheel] | ResolveError


@dataclass
class Resolution:
    """What resolve_sets found: each pending set's outcome, and each lone requirement's."""

    sets: dict[tuple[str, ...], Outcome]
    singles: dict[tuple[str, ...], list[Wheel]]
    uv_calls: int = 0
    composed: int = 0


def resolve_sets(
    resolve: Resolver,
    pending: Iterable[tuple[str, ...]],
    jobs: int,
    known: Mapping[tuple[str, ...], list[Wheel]] | None = None,
    on_resolved: Callable[[tuple[str, ...], list[Wheel]], None] | None = None,
) -> Resolution:
    """Resolve every pending set with as few uv calls as possible, in a pool of ``jobs``.

    A tree's sets are mostly small combinations of the same few dozen requirements, so first each
    distinct requirement is resolved alone (``known`` ones from earlier runs are reused). A uv call
    that asks the index costs ~5x the CPU of one answered from the cache (TLS, revalidation), so
    a few calls holding all those requirements (one version of a package per call) fill the shared
    uv cache first, and each lone requirement is then resolved offline from it, asking the index
    only if the cache falls short. A set of several requirements is the union of their closures
    when those agree (see compose); only a set whose closures disagree (a shared dependency at two
    versions) goes to uv, offline first too.
    """
    known = dict(known or {})
    wanted = set(pending)
    result = Resolution(sets={}, singles={})
    lock = threading.Lock()

    def call(requirements: tuple[str, ...], offline: bool) -> Outcome:
        with lock:
            result.uv_calls += 1
        try:
            wheels = resolve(requirements, offline)
        except ResolveError as error:
            return error
        if on_resolved is not None and requirements in wanted:
            on_resolved(requirements, wheels)
        return wheels

    def cached_first(requirements: tuple[str, ...]) -> Outcome:
        outcome = call(requirements, True)
        return call(requirements, False) if isinstance(outcome, ResolveError) else outcome

    singles = sorted({(requirement,) for requirements in wanted for requirement in requirements})
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for single in singles:
            if single in known:
                result.singles[single] = known[single]
                if single in wanted:
                    result.sets[single] = known[single]
                    if on_resolved is not None:
                        on_resolved(single, known[single])
        unknown = [single for single in singles if single not in known]
        # Warm the cache with few uv calls: every unknown requirement, at most one per package
        # per call. A batch that does not resolve as a whole still fetched most of what it needs.
        list(pool.map(lambda batch: call(batch, False), warm_up_batches(unknown)))
        for single, outcome in zip(unknown, pool.map(cached_first, unknown), strict=True):
            if not isinstance(outcome, ResolveError):
                result.singles[single] = outcome
            if single in wanted:
                result.sets[single] = outcome
        left: list[tuple[str, ...]] = []
        for requirements in sorted(wanted):
            if requirements in result.sets:
                continue
            parts = [result.singles[(one,)] for one in requirements if (one,) in result.singles]
            composed = compose(parts) if len(parts) == len(requirements) else None
            if composed is None:
                left.append(requirements)
                continue
            result.sets[requirements] = composed
            result.composed += 1
            if on_resolved is not None:
                on_resolved(requirements, composed)
        result.sets.update(zip(left, pool.map(cached_first, left), strict=True))
    return result


# --- downloading: each wheel once ------------------------------------------------------------


_connections = threading.local()
_context_lock = threading.Lock()
_contexts: list[ssl.SSLContext] = []


def _ssl_context() -> ssl.SSLContext:
    """One TLS context for all downloads: loading the CA store per request costs more than the wheel."""
    with _context_lock:
        if not _contexts:
            _contexts.append(ssl.create_default_context())
        return _contexts[0]


@contextlib.contextmanager
def _get(url: str) -> Iterator[BinaryIO]:
    """GET ``url``: over a kept-alive HTTPS connection of this thread when no proxy is set, else urllib."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or urllib.request.getproxies().get("https"):
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            yield response
        return
    pool: dict[str, http.client.HTTPSConnection] = _connections.__dict__.setdefault("pool", {})
    connection = pool.get(parts.netloc)
    if connection is None:
        connection = http.client.HTTPSConnection(
            parts.netloc, timeout=DOWNLOAD_TIMEOUT_SECONDS, context=_ssl_context()
        )
        pool[parts.netloc] = connection
    try:
        connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path, parts.query, "")))
        response = connection.getresponse()
        if response.status in (301, 302, 303, 307, 308):
            response.read()
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as redirected:
                yield redirected
            return
        if response.status != 200:
            response.read()
            raise OSError(f"HTTP {response.status} {response.reason}")
        yield response
        response.read()  # drained, so the connection serves the next request
    except (OSError, http.client.HTTPException):
        connection.close()
        pool.pop(parts.netloc, None)
        raise


def fetch_wheel(wheel: Wheel, destination: Path) -> None:
    """Download one wheel to ``destination/<filename>``, checked against the lock's sha256."""
    target = destination / wheel.filename
    partial = destination / f".{wheel.filename}.part"
    last_error = ""
    for _ in range(DOWNLOAD_ATTEMPTS):
        digest = hashlib.sha256()
        try:
            with _get(wheel.url) as response, partial.open("wb") as handle:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    handle.write(chunk)
        except (OSError, http.client.HTTPException) as error:
            last_error = str(error) or type(error).__name__
            continue
        if digest.hexdigest() != wheel.sha256:
            partial.unlink(missing_ok=True)
            raise DownloadError(
                f"{wheel.filename}: sha256 {digest.hexdigest()} is not the locked {wheel.sha256}"
            )
        partial.replace(target)
        return
    partial.unlink(missing_ok=True)
    raise DownloadError(f"cannot download {wheel.url}: {last_error}")


class Downloader:
    """Fetches each wheel once, concurrently, as soon as a set naming it is resolved.

    Downloads overlap the resolutions still running. Files land in ``out/.incoming`` and are
    moved into ``out`` at the end, so an interrupted run leaves no partial wheel behind.
    """

    def __init__(self, out: Path, jobs: int = DOWNLOAD_JOBS) -> None:
        self.out = out
        self.incoming = out / ".incoming"
        shutil.rmtree(self.incoming, ignore_errors=True)
        self.incoming.mkdir(parents=True)
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        self._lock = threading.Lock()
        self._futures: dict[str, Future[str | None]] = {}

    def _fetch(self, wheel: Wheel) -> str | None:
        try:
            fetch_wheel(wheel, self.incoming)
        except DownloadError as error:
            return str(error)
        return None

    def want(self, wheels: Iterable[Wheel]) -> None:
        """Queue the wheels that are neither in ``out`` already nor queued."""
        with self._lock:
            for wheel in wheels:
                if wheel.filename not in self._futures and not _is_present(self.out, wheel):
                    self._futures[wheel.filename] = self._pool.submit(self._fetch, wheel)

    def finish(self) -> tuple[list[str], list[str]]:
        """Wait for every download, move them into ``out``: (wheels added, download errors)."""
        try:
            self._pool.shutdown(wait=True)
            errors = [error for future in self._futures.values() if (error := future.result()) is not None]
            added = []
            for name in sorted(self._futures):
                if (self.incoming / name).is_file():
                    (self.incoming / name).replace(self.out / name)
                    added.append(name)
        finally:
            shutil.rmtree(self.incoming, ignore_errors=True)
        return added, errors


def _is_present(out: Path, wheel: Wheel) -> bool:
    """A file name on PyPI always holds the same bytes: a file of the locked size is that wheel."""
    try:
        size = (out / wheel.filename).stat().st_size
    except OSError:
        return False
    return wheel.size is None or size == wheel.size


# --- the stamp ---------------------------------------------------------------------------------


def _read_stamp(out: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((out / STAMP_FILENAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(stamp, dict) or stamp.get("format") != WHEELHOUSE_FORMAT:
        return {}
    return stamp


def _stamp_is_current(stamp: Mapping[str, Any], out: Path, key: str) -> bool:
    wheels = stamp.get("wheels")
    return (
        stamp.get("key") == key
        and isinstance(wheels, list)
        and all(isinstance(name, str) and (out / name).is_file() for name in wheels)
    )


def _remembered_sets(stamp: Mapping[str, Any]) -> dict[str, list[Wheel]]:
    """Set key -> its wheels, from an earlier run; an entry that does not parse is resolved again."""
    remembered: dict[str, list[Wheel]] = {}
    entries = stamp.get("sets")
    if not isinstance(entries, dict):
        return remembered
    for key, entry in entries.items():
        try:
            remembered[key] = [Wheel.from_json(wheel) for wheel in entry["wheels"]]
        except (KeyError, TypeError, ValueError):
            continue
    return remembered


# --- the command -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WheelhouseOptions:
    services_dir: Path
    out: Path
    target: Target
    uv: str
    jobs: int
    cache_dir: Path | None = None


def build_wheelhouse(options: WheelhouseOptions) -> tuple[dict[str, Any], int]:
    out, target = options.out, options.target
    sets, failures = requirement_sets(options.services_dir)
    version = uv_version(options.uv)
    key = wheelhouse_key(sets, target, version)
    stamp = _read_stamp(out)
    report: dict[str, Any] = {
        "changed": False,
        "out": str(out),
        "key": key,
        "python_version": target.python_version,
        "platform": target.platform,
        "uv_version": version,
        "requirement_sets": len(sets),
        "resolved_sets": 0,
        "reused_sets": 0,
        "added": [],
        "removed": [],
        "failed": failures,
    }
    if not failures and _stamp_is_current(stamp, out, key):
        report.update(up_to_date=True, reused_sets=len(sets), wheels=stamp["wheels"])
        return report, 0

    # The uv wheel for the host is one more set, remembered like the others.
    wanted: dict[tuple[str, ...], list[str]] = {**sets, (f"uv=={version}",): []}
    keys = {requirements: set_key(requirements, target) for requirements in wanted}
    singles = {(requirement,) for requirements in wanted for requirement in requirements}
    keys.update({single: set_key(single, target) for single in singles if single not in keys})
    remembered = _remembered_sets(stamp)
    resolved: dict[tuple[str, ...], list[Wheel]] = {
        requirements: remembered[keys[requirements]]
        for requirements in wanted
        if keys[requirements] in remembered
    }
    report["reused_sets"] = len([requirements for requirements in resolved if requirements in sets])
    pending = [requirements for requirements in wanted if requirements not in resolved]
    known = {single: remembered[keys[single]] for single in singles if keys[single] in remembered}
    out.mkdir(parents=True, exist_ok=True)
    downloader = Downloader(out, max(options.jobs, DOWNLOAD_JOBS))
    for wheels in resolved.values():
        downloader.want(wheels)

    started = time.monotonic()
    try:
        resolution = resolve_sets(
            lambda requirements, offline: resolve_set(
                options.uv, requirements, target, options.cache_dir, offline
            ),
            pending,
            options.jobs,
            known,
            lambda _requirements, wheels: downloader.want(wheels),
        )
    finally:
        report["seconds"] = {"resolve": round(time.monotonic() - started, 2)}
        added, download_errors = downloader.finish()
        report["seconds"]["total_with_downloads"] = round(time.monotonic() - started, 2)
    for requirements, outcome in resolution.sets.items():
        if isinstance(outcome, ResolveError):
            modules = sorted(wanted[requirements])
            users = ", ".join(modules) or "the host's venv builds"
            failures.append(
                {"venvs": modules, "error": f"{', '.join(requirements)} (used by {users}): {outcome}"}
            )
        else:
            resolved[requirements] = outcome
    report["resolved_sets"] = len([requirements for requirements in resolution.sets if requirements in sets])
    report["composed_sets"] = resolution.composed
    report["uv_calls"] = resolution.uv_calls

    needed: dict[str, Wheel] = {}
    for wheels in resolved.values():
        for wheel in wheels:
            needed.setdefault(wheel.filename, wheel)
    for error in download_errors:
        failures.append({"venvs": [], "error": error})
    wheel_names = sorted(name for name in needed if (out / name).is_file())
    removed = sorted(path.name for path in out.glob("*.whl") if path.name not in needed)
    for name in removed:
        (out / name).unlink()

    new_stamp: Mapping[str, Any] = {
        "format": WHEELHOUSE_FORMAT,
        # Without the key the next run is not a no-op: it retries what failed, and only that.
        "key": None if failures else key,
        "python_version": target.python_version,
        "platform": target.platform,
        "uv_version": version,
        "wheels": wheel_names,
        "sets": {
            keys[requirements]: {
                "requirements": list(requirements),
                "wheels": [wheel.to_json() for wheel in sorted(wheels, key=lambda wheel: wheel.filename)],
            }
            for requirements, wheels in sorted({**known, **resolution.singles, **resolved}.items())
        },
    }
    write_if_changed(out / STAMP_FILENAME, json.dumps(new_stamp, indent=2, sort_keys=True) + "\n")
    report.update(
        changed=bool(added or removed),
        up_to_date=False,
        wheels=wheel_names,
        added=sorted(added),
        removed=removed,
    )
    return report, 1 if failures else 0
