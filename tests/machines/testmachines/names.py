"""Machine names and the host-side names derived from them (network namespace, veth, cgroup)."""

import hashlib
import re

from .errors import UsageError

# Lower-case so the name is also a valid hostname label and an Ansible inventory host name;
# 31 characters at most so "bst-<name>" stays readable in `ip netns list`.
MACHINE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,30}")

# The kernel's IFNAMSIZ is 16 including the terminating NUL.
MAX_INTERFACE_NAME_LENGTH = 15

NETNS_PREFIX = "bst-"
HOST_VETH_PREFIX = "bsv"
# Inside its own namespace the peer can have the name every tool expects (Ansible facts, docs).
GUEST_INTERFACE_NAME = "eth0"


def validate_machine_name(name: str) -> str:
    """Return the name if it is acceptable, else raise a UsageError that says what is allowed."""
    if not MACHINE_NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"invalid machine name {name!r}: use 1-31 characters, a lower-case letter first, "
            "then lower-case letters, digits or '-'"
        )
    return name


def validate_interface_name(name: str, what: str) -> str:
    """Check a user-supplied interface name (e.g. the bridge) against the kernel's rules."""
    if not re.fullmatch(r"[a-zA-Z0-9_.-]{1,15}", name):
        raise UsageError(
            f"invalid {what} {name!r}: interface names are 1-{MAX_INTERFACE_NAME_LENGTH} characters "
            "of letters, digits, '_', '.' or '-'"
        )
    return name


def netns_name(machine: str) -> str:
    """Network namespaces are files under /run/netns, so they are not limited to 15 characters."""
    return NETNS_PREFIX + machine


def host_veth_name(machine: str) -> str:
    """The controller-side veth end: a prefix plus a hash, since the machine name may be 31 chars.

    12 hex digits (48 bits) make an accidental collision between two machine names negligible;
    the network code still refuses to reuse an interface that already exists.
    """
    digest = hashlib.sha256(machine.encode()).hexdigest()
    return HOST_VETH_PREFIX + digest[: MAX_INTERFACE_NAME_LENGTH - len(HOST_VETH_PREFIX)]
