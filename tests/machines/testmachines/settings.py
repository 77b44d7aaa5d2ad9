"""Where state lives and which network the machines use, read once from the environment.

Tests point BARESTACK_MACHINES_DIR at a temporary directory and pick their own bridge and subnet,
so they never touch machines created with the defaults (e.g. `make demo`), while
BARESTACK_MACHINES_CACHE_DIR lets them share the (slow to build) cached root filesystems.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from .addressing import DEFAULT_SUBNET, parse_subnet
from .errors import UsageError
from .names import validate_interface_name

DEFAULT_BASE_DIR = "/var/lib/barestack-machines"
DEFAULT_BRIDGE = "bstest0"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# The controller's uplink has MTU 1400; a larger MTU inside would black-hole big packets (apt downloads).
DEFAULT_MTU = 1400
DEFAULT_BOOT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Settings:
    base_dir: Path
    cache_dir: Path
    subnet: IPv4Network
    bridge: str
    mirror: str
    security_mirror: str
    mtu: int
    nameservers: tuple[str, ...] | None

    @property
    def machines_dir(self) -> Path:
        return self.base_dir / "machines"

    @property
    def keys_dir(self) -> Path:
        return self.base_dir / "keys"

    @property
    def ssh_key(self) -> Path:
        return self.keys_dir / "id_ed25519"

    @property
    def lock_file(self) -> Path:
        return self.base_dir / ".lock"

    @property
    def network_state_file(self) -> Path:
        return self.base_dir / "network.json"

    @property
    def nft_table(self) -> str:
        """One nftables table per bridge, so a test bridge can be torn down without touching the default."""
        if self.bridge == DEFAULT_BRIDGE:
            return "barestack_machines"
        return "barestack_machines_" + self.bridge.replace("-", "_").replace(".", "_")

    def machine_dir(self, name: str) -> Path:
        return self.machines_dir / name


def _absolute_dir(value: str, variable: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        raise UsageError(f"{variable}={value!r} must be an absolute path")
    return path


def _mtu(value: str) -> int:
    try:
        mtu = int(value)
    except ValueError:
        raise UsageError(f"BARESTACK_MACHINES_MTU={value!r} is not a number") from None
    if not 576 <= mtu <= 9000:
        raise UsageError(f"BARESTACK_MACHINES_MTU={value!r} must be between 576 and 9000")
    return mtu


def _nameservers(value: str | None) -> tuple[str, ...] | None:
    if value is None or not value.strip():
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    base_dir = _absolute_dir(env.get("BARESTACK_MACHINES_DIR", DEFAULT_BASE_DIR), "BARESTACK_MACHINES_DIR")
    cache_value = env.get("BARESTACK_MACHINES_CACHE_DIR")
    cache_dir = (
        _absolute_dir(cache_value, "BARESTACK_MACHINES_CACHE_DIR") if cache_value else base_dir / "cache"
    )
    return Settings(
        base_dir=base_dir,
        cache_dir=cache_dir,
        subnet=parse_subnet(env.get("BARESTACK_MACHINES_SUBNET", DEFAULT_SUBNET)),
        bridge=validate_interface_name(env.get("BARESTACK_MACHINES_BRIDGE", DEFAULT_BRIDGE), "bridge name"),
        mirror=env.get("BARESTACK_MACHINES_MIRROR", DEFAULT_MIRROR),
        security_mirror=env.get("BARESTACK_MACHINES_SECURITY_MIRROR", DEFAULT_SECURITY_MIRROR),
        mtu=_mtu(env.get("BARESTACK_MACHINES_MTU", str(DEFAULT_MTU))),
        nameservers=_nameservers(env.get("BARESTACK_MACHINES_NAMESERVERS")),
    )
