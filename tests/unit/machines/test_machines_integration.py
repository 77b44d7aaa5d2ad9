"""Two real machines: boot, apt over the masquerade, machine-to-machine traffic, clean destroy.

Runs the `testmachine` executable as molecule and `make demo` do, in a temporary state dir with its
own bridge and subnet (so it never touches machines made with the defaults), sharing only the
cached root filesystems. Needs root; about 20 s when the trixie rootfs is cached, a minute more
to build it otherwise. Select with `-m machines`, skip with `-m "not machines"`.
"""

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from testmachines.network import parse_addresses, parse_routes

TOOL = Path(__file__).resolve().parents[2] / "machines" / "testmachine"
SHARED_CACHE = os.environ.get("BARESTACK_MACHINES_CACHE_DIR", "/var/lib/barestack-machines/cache")
REQUIRED = ("debootstrap", "systemd-nspawn", "ip", "nft", "ssh", "nsenter")

pytestmark = [
    pytest.mark.machines,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="cannot run here: needs root (make test runs as root): test machines"
    ),
    pytest.mark.skipif(
        any(shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None for tool in REQUIRED),
        reason="needs debootstrap, systemd-container, iproute2, nftables, openssh-client",
    ),
]


def _free_subnet() -> IPv4Network:
    """A /24 no controller interface or route uses, so parallel runs and `make demo` do not collide."""

    def ip_json(*args: str) -> str:
        return subprocess.run(["ip", "-j", "-4", *args], capture_output=True, text=True, check=True).stdout

    used = [network.network for network in parse_addresses(ip_json("addr")) + parse_routes(ip_json("route"))]
    for third in range(200, 250):
        candidate = IPv4Network(f"10.213.{third}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise AssertionError("no free 10.213.200-249.0/24 subnet for the test machines")


@dataclass
class Fleet:
    env: dict[str, str]
    base: Path
    bridge: str
    subnet: IPv4Network
    first: dict[str, object]
    second: dict[str, object]

    def tool(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TOOL), *args], capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )

    def ssh(self, machine: dict[str, object], command: str) -> subprocess.CompletedProcess[str]:
        return self.tool("shell", str(machine["name"]), "--", command, timeout=180)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("machines")
    suffix = secrets.token_hex(3)
    bridge = f"bstpt{suffix}"
    subnet = _free_subnet()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BARESTACK_MACHINES_DIR": str(base),
        "BARESTACK_MACHINES_CACHE_DIR": SHARED_CACHE,
        "BARESTACK_MACHINES_SUBNET": str(subnet),
        "BARESTACK_MACHINES_BRIDGE": bridge,
    }
    fleet = Fleet(env, base, bridge, subnet, {}, {})
    try:
        for slot, name in (("first", f"it-{suffix}-a"), ("second", f"it-{suffix}-b")):
            # The first create may build the rootfs: 326 s measured on a loaded 2-core controller.
            created = fleet.tool("create", name, "--json", timeout=900)
            assert created.returncode == 0, created.stderr
            setattr(fleet, slot, json.loads(created.stdout))
        yield fleet
    finally:
        fleet.tool("destroy", "--all")


def test_entries_follow_the_interface(fleet: Fleet) -> None:
    first, second = fleet.first, fleet.second
    assert first["address"] == str(fleet.subnet.network_address + 2)  # lowest free after the bridge
    assert second["address"] == str(fleet.subnet.network_address + 3)
    assert first["user"] == "root"
    assert first["ssh_port"] == 22
    assert first["release"] == "trixie"
    assert Path(str(first["ssh_key"])).is_file()
    assert (fleet.base / "machines" / str(first["name"]) / "machine.json").read_text().strip() == json.dumps(
        first
    )


def test_systemd_is_up_and_sandboxed_units_run(fleet: Fleet) -> None:
    state = fleet.ssh(fleet.first, "systemctl is-system-running")
    assert state.stdout.strip() in ("running", "degraded"), state.stdout + state.stderr
    sandboxed = fleet.ssh(
        fleet.first,
        "systemd-run --wait --quiet -p PrivateTmp=yes -p ProtectSystem=strict -p NoNewPrivileges=yes true",
    )
    assert sandboxed.returncode == 0, sandboxed.stderr
    identity = fleet.ssh(fleet.first, "hostname; cat /etc/machine-id")
    other = fleet.ssh(fleet.second, "cat /etc/machine-id")
    hostname, machine_id = identity.stdout.split()
    assert hostname == fleet.first["name"]
    assert machine_id != other.stdout.strip()  # each machine has its own id


def test_apt_reaches_the_debian_mirror(fleet: Fleet) -> None:
    update = fleet.ssh(fleet.first, "apt-get update -q")
    assert update.returncode == 0, update.stdout[-2000:] + update.stderr[-2000:]
    assert "deb.debian.org" in update.stdout


def test_machines_reach_each_other(fleet: Fleet) -> None:
    ping = fleet.ssh(fleet.second, f"ping -c 1 -W 3 {fleet.first['address']}")
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_name_taken_unless_reused(fleet: Fleet) -> None:
    again = fleet.tool("create", str(fleet.first["name"]), "--json")
    assert again.returncode == 1
    assert "name taken" in again.stderr
    assert again.stdout == ""
    reused = fleet.tool("create", str(fleet.first["name"]), "--reuse", "--json")
    assert reused.returncode == 0, reused.stderr
    assert json.loads(reused.stdout) == fleet.first


def test_list_shows_both_running(fleet: Fleet) -> None:
    listed = json.loads(fleet.tool("list", "--json").stdout)
    assert [(row["name"], row["state"]) for row in listed] == [
        (fleet.first["name"], "running"),
        (fleet.second["name"], "running"),
    ]


def test_destroy_frees_the_address_and_leaves_nothing_behind(fleet: Fleet) -> None:
    destroyed = fleet.tool("destroy", str(fleet.first["name"]))
    assert destroyed.returncode == 0, destroyed.stderr
    replacement = fleet.tool("create", f"{fleet.first['name']}2", "--json")
    assert replacement.returncode == 0, replacement.stderr
    assert json.loads(replacement.stdout)["address"] == fleet.first["address"]  # lowest free again

    names = [f"{fleet.first['name']}2", str(fleet.second["name"])]
    for name in names:
        destroyed = fleet.tool("destroy", name)
        assert destroyed.returncode == 0, destroyed.stderr

    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    for name in [str(fleet.first["name"]), *names]:
        assert f"bst-{name}" not in netns.split()
        assert not any(Path("/sys/fs/cgroup").glob(f"*/barestack-machines/*/{name}"))
    assert fleet.bridge not in links
    assert fleet.bridge not in tables
    assert str(fleet.base) not in mounts
    assert list((fleet.base / "machines").iterdir()) == []

    again = fleet.tool("destroy", str(fleet.first["name"]))
    assert again.returncode == 0
    assert "nothing to do" in again.stderr
