"""Subnet parsing, address allocation and overlap detection (pure functions, no root needed)."""

from ipaddress import IPv4Address, IPv4Network

import pytest
from testmachines.addressing import (
    HostNetwork,
    allocate_address,
    find_conflict,
    gateway_address,
    mac_for_address,
    parse_subnet,
)
from testmachines.errors import SubnetError, UsageError

SUBNET = IPv4Network("10.213.0.0/24")


def test_gateway_is_the_first_host() -> None:
    assert gateway_address(SUBNET) == IPv4Address("10.213.0.1")


def test_first_machine_gets_the_lowest_address_after_the_gateway() -> None:
    assert allocate_address(SUBNET, []) == IPv4Address("10.213.0.2")


def test_allocation_skips_addresses_in_use() -> None:
    used = {IPv4Address("10.213.0.2"), IPv4Address("10.213.0.3")}
    assert allocate_address(SUBNET, used) == IPv4Address("10.213.0.4")


def test_address_of_a_destroyed_machine_is_reused_first() -> None:
    # .2 .3 .4 were allocated; the machine on .3 was destroyed
    used = {IPv4Address("10.213.0.2"), IPv4Address("10.213.0.4")}
    assert allocate_address(SUBNET, used) == IPv4Address("10.213.0.3")


def test_allocation_is_deterministic_whatever_the_order() -> None:
    used = [IPv4Address("10.213.0.5"), IPv4Address("10.213.0.2"), IPv4Address("10.213.0.3")]
    assert (
        allocate_address(SUBNET, used)
        == allocate_address(SUBNET, reversed(used))
        == IPv4Address("10.213.0.4")
    )


def test_exhausted_subnet_is_a_clear_error() -> None:
    small = IPv4Network("10.213.9.0/29")  # hosts .1-.6, .1 is the bridge: five machines
    used = {IPv4Address(f"10.213.9.{host}") for host in range(2, 7)}
    with pytest.raises(SubnetError, match=r"10\.213\.9\.0/29 is exhausted"):
        allocate_address(small, used)
    used.remove(IPv4Address("10.213.9.6"))
    assert allocate_address(small, used) == IPv4Address("10.213.9.6")


def test_never_hands_out_network_broadcast_or_gateway() -> None:
    small = IPv4Network("10.213.9.0/29")
    handed_out: set[IPv4Address] = set()
    with pytest.raises(SubnetError):
        while True:
            handed_out.add(allocate_address(small, handed_out))
    assert handed_out == {IPv4Address(f"10.213.9.{host}") for host in range(2, 7)}


def test_overlap_with_a_controller_network_is_found() -> None:
    networks = [
        HostNetwork("eth0", IPv4Network("192.0.2.0/24")),
        HostNetwork("docker0", IPv4Network("10.213.0.0/16")),
    ]
    assert find_conflict(SUBNET, networks, "bstest0") == networks[1]


def test_our_own_bridge_and_the_default_route_are_not_conflicts() -> None:
    networks = [
        HostNetwork("bstest0", IPv4Network("10.213.0.0/24")),
        HostNetwork("eth0", IPv4Network("0.0.0.0/0")),
        HostNetwork("eth0", IPv4Network("192.0.2.0/24")),
    ]
    assert find_conflict(SUBNET, networks, "bstest0") is None


def test_a_host_route_inside_the_subnet_is_a_conflict() -> None:
    networks = [HostNetwork("wg0", IPv4Network("10.213.0.77/32"))]
    assert find_conflict(SUBNET, networks, "bstest0") == networks[0]


def test_another_bridge_with_the_same_subnet_is_a_conflict() -> None:
    # e.g. a second state dir (tests) configured with the default subnet while `make demo` runs
    networks = [HostNetwork("bstest0", IPv4Network("10.213.0.0/24"))]
    assert find_conflict(SUBNET, networks, "bstpytest0") == networks[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.213.0.1/24", "has host bits set"),
        ("fd00::/64", "only IPv4"),
        ("8.8.8.0/24", "private range"),
        ("10.213.0.0/30", "prefix must be between"),
        ("10.0.0.0/8", "prefix must be between"),
        ("nonsense", "invalid test subnet"),
    ],
)
def test_bad_subnets_are_rejected(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_subnet(text)


def test_good_subnet_is_parsed() -> None:
    assert parse_subnet(" 10.213.0.0/24 ") == SUBNET


def test_mac_follows_the_address_so_a_reused_address_keeps_its_mac() -> None:
    assert mac_for_address(IPv4Address("10.213.0.3")) == "02:62:0a:d5:00:03"
    assert mac_for_address(IPv4Address("10.213.0.3")) != mac_for_address(IPv4Address("10.213.0.4"))
    first_octet = int(mac_for_address(IPv4Address("10.213.0.1")).split(":")[0], 16)
    assert first_octet & 0b10  # locally administered
    assert not first_octet & 0b01  # unicast
