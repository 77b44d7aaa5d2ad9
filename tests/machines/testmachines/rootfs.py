"""The cached root filesystem every machine boots from: recipe, cache key, build, prune.

debootstrap takes about a minute, so a rootfs is built once per (release, recipe) and reused by every
machine through a read-only overlay. The cache key hashes the whole recipe (release, mirrors, variant,
packages, every file written and removed afterwards), so changing any of it builds a new cache
instead of silently booting a stale one. A build happens in a temporary directory that is renamed
into place only when complete: a crash mid-build never leaves a half cache that looks valid.

Baked in: sshd allowing root key logins, apt sources for the release over plain HTTP, no
recommends, C.UTF-8, generic /etc/hosts, an empty /etc/machine-id (each machine gets its own id at
first boot) and no SSH host keys (generated per machine). Not baked in: the apt package lists
(they would go stale; playbooks run `apt-get update` / `update_cache`), the root authorized_keys,
hostname and resolv.conf (written per machine, so regenerating the key never invalidates the cache).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import MachineError, UsageError
from .guestfiles import write_file
from .hostcmd import require_tools, tool_path
from .locks import exclusive_lock
from .mounts import remove_tree
from .settings import Settings

RELEASES = ("trixie", "bookworm")
DEFAULT_RELEASE = "trixie"

# Bump when the code that applies a recipe (not the recipe data) changes what ends up in the rootfs.
RECIPE_FORMAT = 1

VARIANT = "minbase"
PACKAGES = (
    # boot with systemd as PID 1, with D-Bus for hostnamectl/timedatectl (Ansible's hostname module)
    "systemd",
    "systemd-sysv",
    "dbus",
    # Ansible: python3 on the target, python3-apt for the apt module, acl for become_user to
    # unprivileged users (e.g. postgres) without pipelining, sudo for become
    "python3",
    "python3-apt",
    "acl",
    "sudo",
    "openssh-server",
    "ca-certificates",
    # debugging and the multi-host checks: ip, ping, ps
    "iproute2",
    "iputils-ping",
    "procps",
)

SSHD_CONFIG = """\
# barestack test machine: root logs in with the controller's key only.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

APT_CONFIG = """\
// barestack test machine: install exactly what is asked for, like a minimal server.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
"""

HOSTS = """\
127.0.0.1\tlocalhost
::1\t\tlocalhost ip6-localhost ip6-loopback
ff02::1\t\tip6-allnodes
ff02::2\t\tip6-allrouters
"""

# Relative to the rootfs. Globs are expanded at build time.
REMOVALS = (
    "var/lib/dbus/machine-id",  # a copied D-Bus id would become every machine's /etc/machine-id
    "etc/ssh/ssh_host_*",  # shared host keys; each machine gets its own at create
    "var/cache/apt/archives/*.deb",  # debootstrap leaves its downloads here; they live in cache/debs
    "var/lib/apt/lists/*_*",  # stale package lists (see module docstring)
    "etc/resolv.conf",  # the controller's at build time; written per machine
)


@dataclass(frozen=True)
class Recipe:
    release: str
    mirror: str
    variant: str
    packages: tuple[str, ...]
    files: tuple[tuple[str, str, int], ...]  # (path relative to the rootfs, content, mode)
    removals: tuple[str, ...]
    recipe_format: int = RECIPE_FORMAT

    @property
    def cache_key(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def directory_name(self) -> str:
        return f"rootfs-{self.release}-{self.cache_key}"


def validate_release(release: str) -> str:
    if release not in RELEASES:
        raise UsageError(f"unsupported release {release!r}: choose one of {', '.join(RELEASES)}")
    return release


def apt_sources(release: str, mirror: str, security_mirror: str) -> str:
    return (
        f"deb {mirror} {release} main\n"
        f"deb {mirror} {release}-updates main\n"
        f"deb {security_mirror} {release}-security main\n"
    )


def recipe_for(release: str, settings: Settings) -> Recipe:
    validate_release(release)
    files = (
        ("etc/ssh/sshd_config.d/barestack-test.conf", SSHD_CONFIG, 0o644),
        ("etc/apt/sources.list", apt_sources(release, settings.mirror, settings.security_mirror), 0o644),
        ("etc/apt/apt.conf.d/90barestack-test", APT_CONFIG, 0o644),
        ("etc/default/locale", "LANG=C.UTF-8\n", 0o644),
        ("etc/hosts", HOSTS, 0o644),
        ("etc/hostname", "localhost\n", 0o644),
        # Empty (not missing): systemd treats it as "first boot" and uses the per-container id
        # systemd-nspawn passes in, so machines never share a machine-id (journald, D-Bus depend on it).
        ("etc/machine-id", "", 0o444),
    )
    return Recipe(
        release=release,
        mirror=settings.mirror,
        variant=VARIANT,
        packages=PACKAGES,
        files=files,
        removals=REMOVALS,
    )


def cached_rootfs(recipe: Recipe, settings: Settings) -> Path | None:
    """The committed cache for this recipe, or None. Temporary build directories never count."""
    path = settings.cache_dir / recipe.directory_name
    return path if path.is_dir() else None


def _matching(root: Path, pattern: str) -> list[Path]:
    if any(character in pattern for character in "*?["):
        return list(root.glob(pattern))
    # Path.glob follows symlinks for a literal name, so it misses a dangling one (e.g. resolv.conf
    # pointing into a resolver's /run directory).
    path = root / pattern
    return [path] if path.exists() or path.is_symlink() else []


def apply_post_install(root: Path, recipe: Recipe) -> None:
    for pattern in recipe.removals:
        for path in _matching(root, pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for relative, content, mode in recipe.files:
        write_file(root, relative, content, mode)


def _log(message: str) -> None:
    print(f"testmachine: {message}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _debootstrap(recipe: Recipe, target: Path, debs_dir: Path, log_path: Path) -> None:
    argv = [
        tool_path("debootstrap"),
        f"--variant={recipe.variant}",
        f"--include={','.join(recipe.packages)}",
        f"--cache-dir={debs_dir}",
        recipe.release,
        str(target),
        recipe.mirror,
    ]
    with log_path.open("wb") as log:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise MachineError(
            f"debootstrap {recipe.release} failed (exit {result.returncode}, log {log_path}): "
            f"{_tail(log_path)}"
        )


def ensure_rootfs(recipe: Recipe, settings: Settings, *, force: bool = False) -> Path:
    """Return the cached rootfs for the recipe, building it first if needed (or if `force`)."""
    final = settings.cache_dir / recipe.directory_name
    if final.is_dir() and not force:
        return final
    require_tools(["debootstrap", "rm", "umount"])
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(settings.cache_dir / f".rootfs-{recipe.release}.lock"):
        if final.is_dir() and not force:
            return final  # another command built it while we waited for the lock
        # Anything left from an earlier build of this release is from a crash: we hold the lock.
        for stale in settings.cache_dir.glob(f".build-rootfs-{recipe.release}-*"):
            if stale.is_dir():
                remove_tree(stale)
        build_dir = settings.cache_dir / f".build-{recipe.directory_name}-{os.getpid()}"
        log_path = settings.cache_dir / f"{recipe.directory_name}.build.log"
        debs_dir = settings.cache_dir / "debs"
        debs_dir.mkdir(exist_ok=True)
        _log(f"building the {recipe.release} rootfs (cache key {recipe.cache_key}; ~1 min; log {log_path})")
        started = time.monotonic()
        try:
            _debootstrap(recipe, build_dir, debs_dir, log_path)
            apply_post_install(build_dir, recipe)
            (settings.cache_dir / f"{recipe.directory_name}.recipe.json").write_text(
                json.dumps(asdict(recipe), indent=2, sort_keys=True) + "\n"
            )
            if final.is_dir():  # --force: the old copy goes only once the new one is complete
                remove_tree(final)
            build_dir.rename(final)
        except BaseException:
            remove_tree(build_dir)
            raise
        _log(f"built {final} in {time.monotonic() - started:.0f} s")
        return final


def prune_rootfs(release: str, keep: set[Path], settings: Settings) -> list[Path]:
    """Delete caches of `release` built from older recipes, except those machines still boot from."""
    removed = []
    with exclusive_lock(settings.cache_dir / f".rootfs-{release}.lock"):
        for candidate in sorted(settings.cache_dir.glob(f"rootfs-{release}-*")):
            if not candidate.is_dir() or candidate in keep:
                continue
            remove_tree(candidate)
            candidate.with_name(candidate.name + ".recipe.json").unlink(missing_ok=True)
            candidate.with_name(candidate.name + ".build.log").unlink(missing_ok=True)
            removed.append(candidate)
    return removed
