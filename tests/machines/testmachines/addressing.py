"""The private test subnet: parsing, overlap with the controller's networks, address allocation.

Pure functions, so the rules are unit-tested without touching the host's network.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .errors import SubnetError, UsageError

DEFAULT_SUBNET = "10.213.0.0/24"

# A /29 still leaves the bridge plus five machines; anything smaller cannot host a multi-host scenario.
SMALLEST_PREFIX = 29
# Bigger than a /16 is surely a typo, and the allocator walks the range linearly.
LARGEST_PREFIX = 16


@dataclass(frozen=True)
class HostNetwork:
    """A network the controller already uses: an interface address or a route."""

    interface: str
    network: IPv4Network


def parse_subnet(text: str) -> IPv4Network:
    """Parse the test subnet (e.g. from BARESTACK_MACHINES_SUBNET) and reject unusable values."""
    try:
        subnet = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as error:
        raise UsageError(f"invalid test subnet {text!r}: {error} (expected e.g. {DEFAULT_SUBNET})") from None
    if not isinstance(subnet, IPv4Network):
        raise UsageError(f"invalid test subnet {text!r}: only IPv4 subnets are supported")
    if not subnet.is_private:
        raise UsageError(f"invalid test subnet {text!r}: use a private range (10/8, 172.16/12, 192.168/16)")
    if not LARGEST_PREFIX <= subnet.prefixlen <= SMALLEST_PREFIX:
        raise UsageError(
            f"invalid test subnet {text!r}: "
            f"the prefix must be between /{LARGEST_PREFIX} and /{SMALLEST_PREFIX}"
        )
    return subnet


def gateway_address(subnet: IPv4Network) -> IPv4Address:
    """The bridge on the controller takes the first host address; machines route through it."""
    return subnet.network_address + 1


def allocate_address(subnet: IPv4Network, in_use: Iterable[IPv4Address]) -> IPv4Address:
    """The lowest host address that is neither the gateway nor used by another machine.

    Deterministic (same machines -> same answer), and an address comes back into use as soon as
    the machine holding it is destroyed.
    """
    taken = set(in_use)
    taken.add(gateway_address(subnet))
    for candidate in subnet.hosts():
        if candidate not in taken:
            return candidate
    raise SubnetError(
        f"test subnet {subnet} is exhausted ({subnet.num_addresses - 3} machine addresses all in use): "
        "destroy a machine or set BARESTACK_MACHINES_SUBNET to a larger private subnet"
    )


def mac_for_address(address: IPv4Address) -> str:
    """A locally administered MAC derived from the IPv4 address (02:62:a:b:c:d).

    Addresses are reused as soon as a machine is destroyed. With a random MAC per machine, the
    controller and the other machines would keep sending to the old MAC until their ARP entries
    expire (seen: 9 s stalls). The same goes for the bridge, whose MAC Linux otherwise takes from
    its lowest-numbered port and so changes as machines come and go. Unique per bridge, because
    addresses are.
    """
    return "02:62:" + ":".join(f"{byte:02x}" for byte in address.packed)


def find_conflict(
    subnet: IPv4Network, host_networks: Iterable[HostNetwork], own_bridge: str
) -> HostNetwork | None:
    """The first controller network that overlaps the test subnet and is not our own bridge.

    Using an overlapping subnet would hijack traffic the controller needs (or be hijacked by it),
    so the caller refuses to set anything up.
    """
    for host_network in host_networks:
        if host_network.interface == own_bridge:
            continue
        # A default route (0.0.0.0/0) overlaps everything and is not a conflict.
        if host_network.network.prefixlen == 0:
            continue
        if host_network.network.overlaps(subnet):
            return host_network
    return None
