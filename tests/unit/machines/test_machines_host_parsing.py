"""Parsing what the controller reports (ip, mountinfo, resolv.conf, systemctl) and rendering inventories."""

import json
import subprocess
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml
from testmachines.addressing import HostNetwork
from testmachines.cgroups import machine_cgroups, systemd_hierarchies
from testmachines.errors import UsageError
from testmachines.guestfiles import known_hosts_lines, resolv_conf, usable_nameservers
from testmachines.inventory import (
    SSH_COMMON_ARGS,
    Entry,
    control_path,
    entry_for,
    inventory_ini,
    inventory_yaml,
    ssh_argv,
    ssh_config,
)
from testmachines.machines import existing_action
from testmachines.mounts import mounts_under, overlay_lower_dirs
from testmachines.network import parse_addresses, parse_routes
from testmachines.ready import classify_system_state
from testmachines.settings import load_settings
from testmachines.state import MachineState

IP_ADDR_JSON = json.dumps(
    [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {
            "ifname": "eth0",
            "addr_info": [
                {"family": "inet", "local": "192.0.2.2", "prefixlen": 24},
                {"family": "inet6", "local": "fd00::2", "prefixlen": 64},
            ],
        },
        {"ifname": "bstest0", "addr_info": [{"family": "inet", "local": "10.213.0.1", "prefixlen": 24}]},
    ]
)
IP_ROUTE_JSON = json.dumps(
    [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"dst": "10.213.0.0/24", "dev": "bstest0"},
        {"dst": "172.20.1.7", "dev": "wg0"},
        {"dst": "10.99.0.0/16", "type": "blackhole"},
    ]
)

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 31 0:36 / /sys/fs/cgroup/systemd rw,relatime shared:5 - cgroup cgroup rw,name=systemd
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup rw
90 27 0:50 / /var/lib/barestack-machines/machines/web/merged rw - overlay overlay rw,lowerdir=/x
91 27 0:51 / /var/lib/barestack-machines/machines/web-2/merged rw - overlay overlay rw,lowerdir=/y
92 27 0:52 / /var/cache/.build-rootfs-trixie-1/proc rw - proc proc rw
93 92 0:53 / /var/cache/.build-rootfs-trixie-1/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
94 27 0:54 / /srv/with\\040space rw - tmpfs tmpfs rw
95 27 0:55 / /srv/stacked rw - overlay overlay rw,lowerdir=/cache/a:/cache/b,upperdir=/u,workdir=/w
"""


def test_controller_addresses_are_parsed_ipv4_only() -> None:
    assert parse_addresses(IP_ADDR_JSON) == [
        HostNetwork("lo", IPv4Network("127.0.0.0/8")),
        HostNetwork("eth0", IPv4Network("192.0.2.0/24")),
        HostNetwork("bstest0", IPv4Network("10.213.0.0/24")),
    ]


def test_controller_routes_are_parsed_without_the_default() -> None:
    assert parse_routes(IP_ROUTE_JSON) == [
        HostNetwork("bstest0", IPv4Network("10.213.0.0/24")),
        HostNetwork("wg0", IPv4Network("172.20.1.7/32")),
        HostNetwork("blackhole", IPv4Network("10.99.0.0/16")),
    ]


def test_real_ip_output_of_this_controller_parses() -> None:
    addresses = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True)
    routes = subprocess.run(["ip", "-j", "-4", "route", "show"], capture_output=True, text=True, check=True)
    parsed = parse_addresses(addresses.stdout) + parse_routes(routes.stdout)
    assert HostNetwork("lo", IPv4Network("127.0.0.0/8")) in parsed


def test_mounts_under_a_directory_deepest_first_and_not_its_siblings() -> None:
    build = Path("/var/cache/.build-rootfs-trixie-1")
    assert mounts_under(build, MOUNTINFO) == [build / "proc/sys/fs/binfmt_misc", build / "proc"]
    web = Path("/var/lib/barestack-machines/machines/web")
    assert mounts_under(web, MOUNTINFO) == [web / "merged"]  # web-2 is another machine


def test_lower_layers_of_mounted_overlays_are_found() -> None:
    # the caches running machines boot from, whichever state dir created them
    assert overlay_lower_dirs(MOUNTINFO) == {Path("/x"), Path("/y"), Path("/cache/a"), Path("/cache/b")}


def test_escaped_mount_points_are_decoded() -> None:
    assert mounts_under(Path("/srv/with space"), MOUNTINFO) == [Path("/srv/with space")]


def test_systemd_cgroup_hierarchies_are_found() -> None:
    assert systemd_hierarchies(MOUNTINFO) == [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]


def test_machine_cgroups_differ_between_state_dirs() -> None:
    roots = [Path("/sys/fs/cgroup/unified")]
    default = machine_cgroups(Path("/var/lib/barestack-machines"), "web", roots)
    tests = machine_cgroups(Path("/tmp/pytest-1/machines"), "web", roots)
    assert default != tests
    assert default[0].name == "web"
    assert default[0].parent.parent == Path("/sys/fs/cgroup/unified/barestack-machines")


def test_loopback_nameservers_are_skipped() -> None:
    text = "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch example\nnameserver ::1\n"
    assert usable_nameservers(text) == ["10.255.255.53"]
    assert resolv_conf(["10.255.255.53", "192.0.2.53"]) == "nameserver 10.255.255.53\nnameserver 192.0.2.53\n"


def test_no_reachable_nameserver_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="BARESTACK_MACHINES_NAMESERVERS"):
        resolv_conf([])


@pytest.mark.parametrize(
    ("output", "verdict"),
    [
        ("running\n", "ready"),
        ("degraded\n", "ready"),
        ("starting\n", "waiting"),
        ("initializing\n", "waiting"),
        ("offline\n", "waiting"),
        ("", "waiting"),
        ("maintenance\n", "failed"),
        ("stopping\n", "failed"),
    ],
)
def test_system_states(output: str, verdict: str) -> None:
    assert classify_system_state(output) == verdict


@pytest.mark.parametrize(
    ("exists", "alive", "reuse", "action"),
    [
        (False, False, False, "create"),
        (False, False, True, "create"),
        (True, True, False, "refuse"),  # "name taken"
        (True, True, True, "reuse"),
        (True, False, False, "replace"),  # dead leftovers are cleaned up, not an obstacle
        (True, False, True, "replace"),
    ],
)
def test_what_create_does_about_an_existing_machine(
    exists: bool, alive: bool, reuse: bool, action: str
) -> None:
    assert existing_action(exists, alive, reuse) == action


ENTRY = Entry(
    name="web",
    address="10.213.0.2",
    user="root",
    ssh_key="/var/lib/barestack-machines/keys/id_ed25519",
    ssh_port=22,
    release="trixie",
    rootfs="/var/lib/barestack-machines/machines/web/merged",
    ssh_common_args=SSH_COMMON_ARGS,
)


def test_entry_json_has_exactly_the_agreed_keys() -> None:
    assert list(json.loads(ENTRY.to_json())) == [
        "name",
        "address",
        "user",
        "ssh_key",
        "ssh_port",
        "release",
        "rootfs",
        "ssh_common_args",
        "known_hosts",
    ]


def test_inventory_yaml_is_valid_and_complete() -> None:
    second = Entry(**{**json.loads(ENTRY.to_json()), "name": "db", "address": "10.213.0.3"})
    inventory = yaml.safe_load(inventory_yaml([ENTRY, second]))
    web = inventory["all"]["hosts"]["web"]
    assert web["ansible_host"] == "10.213.0.2"
    assert web["ansible_user"] == "root"
    assert web["ansible_ssh_private_key_file"] == ENTRY.ssh_key
    assert web["ansible_ssh_common_args"] == SSH_COMMON_ARGS
    assert inventory["all"]["hosts"]["db"]["ansible_host"] == "10.213.0.3"


def test_inventory_ini_quotes_the_ssh_arguments() -> None:
    line = inventory_ini([ENTRY]).strip()
    assert line.startswith("web ansible_host=10.213.0.2 ")
    assert f"ansible_ssh_common_args='{SSH_COMMON_ARGS}'" in line


def test_ssh_config_and_argv() -> None:
    assert "Host web\n    HostName 10.213.0.2\n" in ssh_config([ENTRY])
    argv = ssh_argv(ENTRY)
    assert argv[0] == "ssh"
    assert argv[-1] == "root@10.213.0.2"
    assert argv[argv.index("-i") + 1] == ENTRY.ssh_key
    assert "BatchMode=yes" in argv


def _state(instance: str) -> MachineState:
    return MachineState(
        name="web",
        release="trixie",
        address="10.213.0.2",
        prefix_length=24,
        gateway="10.213.0.1",
        bridge="bstest0",
        netns="bst-web",
        host_veth="bsv0123456789ab",
        lower="/cache/rootfs-trixie-0123",
        storage="overlay",
        merged="/m/web/merged",
        status="running",
        created_at=0.0,
        instance=instance,
    )


def test_each_incarnation_gets_its_own_ssh_control_path() -> None:
    settings = load_settings({"BARESTACK_MACHINES_DIR": "/var/lib/barestack-machines"})
    first, second = entry_for(_state("0a0b0c0d"), settings), entry_for(_state("1a1b1c1d"), settings)
    assert first.ssh_common_args.startswith(SSH_COMMON_ARGS)
    assert "-o ControlPath=/var/lib/barestack-machines/machines/web/ssh-0a0b0c0d" in first.ssh_common_args
    assert first.ssh_common_args != second.ssh_common_args  # a recreated machine never meets an old master


def test_no_control_path_when_the_socket_path_would_be_too_long() -> None:
    settings = load_settings({"BARESTACK_MACHINES_DIR": "/" + "x" * 80})
    assert control_path(_state("0a0b0c0d"), settings) is None
    assert entry_for(_state("0a0b0c0d"), settings).ssh_common_args == SSH_COMMON_ARGS


def test_state_written_before_instances_existed_still_loads() -> None:
    old = json.loads(_state("").to_json())
    del old["instance"]
    assert MachineState.from_json(json.dumps(old)).instance == ""


def test_a_machine_with_a_known_hosts_file_gets_its_keys_checked(tmp_path: Path) -> None:
    settings = load_settings({"BARESTACK_MACHINES_DIR": str(tmp_path)})
    settings.machine_dir("web").mkdir(parents=True)
    known_hosts = settings.machine_dir("web") / "known_hosts"
    known_hosts.write_text("10.213.0.2 ssh-ed25519 AAAA\n")
    entry = entry_for(_state("0a0b0c0d"), settings)
    assert entry.ssh_common_args.startswith(
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} "
    )
    assert "/dev/null" not in entry.ssh_common_args
    assert entry.known_hosts == str(known_hosts)
    assert f"UserKnownHostsFile {known_hosts}" in ssh_config([entry])


def test_known_hosts_lines_name_every_host_key(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAC3Nz root@web\n")
    (tmp_path / "etc/ssh/ssh_host_rsa_key.pub").write_text("ssh-rsa AAAAB3Nz root@web\n")
    assert known_hosts_lines(tmp_path, "10.213.0.2") == (
        "10.213.0.2 ssh-ed25519 AAAAC3Nz\n10.213.0.2 ssh-rsa AAAAB3Nz\n"
    )
