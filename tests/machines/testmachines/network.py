"""Controller-side networking: one bridge, one nftables table, a netns and veth pair per machine.

    controller ── bstest0 (10.213.0.1/24) ──┬── bsv<hash> ═ veth ═ eth0 10.213.0.2  [netns bst-a]
                                            └── bsv<hash> ═ veth ═ eth0 10.213.0.3  [netns bst-b]

Machines reach each other over the bridge and the Debian mirror through the nftables masquerade.
"""

import json
from ipaddress import IPv4Address, IPv4Network, ip_network
from pathlib import Path

from .addressing import HostNetwork, find_conflict, gateway_address, mac_for_address
from .errors import KernelFeatureError, NameTakenError, SubnetError
from .hostcmd import run, succeeds
from .names import GUEST_INTERFACE_NAME
from .settings import Settings
from .state import MachineState, write_atomically

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
NETNS_DIR = Path("/run/netns")


def parse_addresses(ip_json: str) -> list[HostNetwork]:
    """Networks of the controller's IPv4 addresses, from `ip -j -4 addr show`."""
    networks = []
    for link in json.loads(ip_json or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                network = ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
                networks.append(HostNetwork(link.get("ifname", ""), network))
    return networks


def parse_routes(ip_json: str) -> list[HostNetwork]:
    """Destinations of the controller's IPv4 routes, from `ip -j -4 route show`."""
    networks = []
    for route in json.loads(ip_json or "[]"):
        destination = route.get("dst", "")
        if destination in ("", "default"):
            continue
        network = ip_network(destination, strict=False)
        if isinstance(network, IPv4Network):
            networks.append(HostNetwork(route.get("dev", route.get("type", "")), network))
    return networks


def controller_networks() -> list[HostNetwork]:
    addresses = run(["ip", "-j", "-4", "addr", "show"], what="reading the controller's addresses")
    routes = run(["ip", "-j", "-4", "route", "show"], what="reading the controller's routes")
    return parse_addresses(addresses) + parse_routes(routes)


def check_subnet_free(settings: Settings) -> None:
    conflict = find_conflict(settings.subnet, controller_networks(), settings.bridge)
    if conflict is not None:
        raise SubnetError(
            f"subnet in use: test subnet {settings.subnet} overlaps {conflict.network} on "
            f"{conflict.interface or 'a route'}; set BARESTACK_MACHINES_SUBNET to a free private subnet"
        )


def link_exists(name: str) -> bool:
    return succeeds(["ip", "link", "show", "dev", name])


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def check_machine_names_free(netns: str, host_veth: str) -> None:
    """Leftovers we have no state for belong to someone else (another state dir): never reuse them."""
    if netns_exists(netns):
        raise NameTakenError(
            f"name taken: network namespace {netns} already exists (not created by this state dir)"
        )
    if link_exists(host_veth):
        raise NameTakenError(
            f"name taken: interface {host_veth} already exists (not created by this state dir)"
        )


def _nft_ruleset(settings: Settings) -> str:
    table = settings.nft_table
    bridge = settings.bridge
    # Declare, flush, then define: one atomic `nft -f` transaction that is also idempotent.
    return f"""\
table ip {table} {{}}
flush table ip {table}
table ip {table} {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {settings.subnet} oifname != "{bridge}" masquerade
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{bridge}" accept
        oifname "{bridge}" ct state established,related accept
    }}
}}
"""


def _enable_forwarding(settings: Settings) -> None:
    """Turn on IPv4 forwarding, remembering the previous value so teardown can restore it."""
    previous = IP_FORWARD.read_text().strip()
    if previous == "1":
        return
    if not settings.network_state_file.exists():
        write_atomically(settings.network_state_file, json.dumps({"ip_forward_was": previous}) + "\n")
    IP_FORWARD.write_text("1\n")


def ensure_network(settings: Settings) -> None:
    """Create (or repair) the bridge, its address, the nftables table and forwarding. Idempotent."""
    check_subnet_free(settings)
    bridge = settings.bridge
    gateway = f"{gateway_address(settings.subnet)}/{settings.subnet.prefixlen}"
    bridge_mac = mac_for_address(gateway_address(settings.subnet))
    if not link_exists(bridge):
        run(
            ["ip", "link", "add", bridge, "address", bridge_mac, "type", "bridge"],
            what=f"creating bridge {bridge}",
            error_type=KernelFeatureError,
        )
    run(["ip", "link", "set", bridge, "mtu", str(settings.mtu)], what=f"setting the MTU of {bridge}")
    addresses = parse_addresses(
        run(["ip", "-j", "-4", "addr", "show", "dev", bridge], what="reading the bridge")
    )
    if ip_network(gateway, strict=False) not in [address.network for address in addresses]:
        run(["ip", "addr", "replace", gateway, "dev", bridge], what=f"adding {gateway} to {bridge}")
    run(["ip", "link", "set", bridge, "up"], what=f"bringing {bridge} up")
    run(["nft", "-f", "-"], input_text=_nft_ruleset(settings), what="installing the nftables masquerade")
    _enable_forwarding(settings)


def teardown_network(settings: Settings) -> None:
    """Remove the bridge and the nftables table; restore forwarding if we turned it on. Idempotent."""
    if link_exists(settings.bridge):
        run(["ip", "link", "delete", settings.bridge], what=f"deleting bridge {settings.bridge}")
    if succeeds(["nft", "list", "table", "ip", settings.nft_table]):
        run(
            ["nft", "delete", "table", "ip", settings.nft_table],
            what=f"deleting nftables table {settings.nft_table}",
        )
    if settings.network_state_file.exists():
        previous = json.loads(settings.network_state_file.read_text()).get("ip_forward_was", "1")
        # Machines of another state dir (e.g. a test run next to `make demo`) may still need forwarding.
        others = run(["nft", "list", "tables"], what="listing nftables tables")
        if "barestack_machines" not in others:
            IP_FORWARD.write_text(f"{previous}\n")
        settings.network_state_file.unlink()


def create_machine_link(state: MachineState, mtu: int) -> None:
    """The machine's netns with eth0 on the bridge, its address, loopback and default route."""
    namespace = state.netns
    run(
        ["ip", "netns", "add", namespace],
        what=f"creating network namespace {namespace} (needs CONFIG_NET_NS)",
        error_type=KernelFeatureError,
    )
    host_end = ["ip", "link", "add", state.host_veth, "mtu", str(mtu)]
    guest_mac = mac_for_address(IPv4Address(state.address))
    guest_end = ["name", GUEST_INTERFACE_NAME, "address", guest_mac, "mtu", str(mtu), "netns", namespace]
    run(
        [*host_end, "type", "veth", "peer", *guest_end],
        what=f"creating veth pair {state.host_veth} (needs CONFIG_VETH)",
        error_type=KernelFeatureError,
    )
    run(
        ["ip", "link", "set", state.host_veth, "master", state.bridge, "up"],
        what=f"attaching {state.host_veth} to {state.bridge}",
    )
    in_netns = ["ip", "-n", namespace]
    run([*in_netns, "link", "set", "lo", "up"], what=f"bringing up lo in {namespace}")
    run(
        [*in_netns, "addr", "add", f"{state.address}/{state.prefix_length}", "dev", GUEST_INTERFACE_NAME],
        what=f"adding {state.address} in {namespace}",
    )
    run([*in_netns, "link", "set", GUEST_INTERFACE_NAME, "up"], what=f"bringing up eth0 in {namespace}")
    run(
        [*in_netns, "route", "add", "default", "via", state.gateway],
        what=f"adding the default route in {namespace}",
    )


def remove_machine_link(host_veth: str, netns: str) -> None:
    """Deleting the host end of a veth pair deletes its peer too. Idempotent."""
    if link_exists(host_veth):
        run(["ip", "link", "delete", host_veth], what=f"deleting {host_veth}")
    if netns_exists(netns):
        run(["ip", "netns", "delete", netns], what=f"deleting network namespace {netns}")
