"""Machine names and the interface/netns names derived from them."""

import pytest
from testmachines.errors import UsageError
from testmachines.names import (
    MAX_INTERFACE_NAME_LENGTH,
    host_veth_name,
    netns_name,
    validate_interface_name,
    validate_machine_name,
)


@pytest.mark.parametrize("name", ["a", "barestack-demo", "web-1", "db2", "a" + "b" * 30])
def test_valid_names_are_accepted(name: str) -> None:
    assert validate_machine_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Web",  # upper case is not a valid Ansible/hostname-friendly name here
        "1web",  # must start with a letter
        "-web",
        "web_1",
        "web.1",
        "web 1",
        "a" + "b" * 31,  # 32 characters
        "web\n",  # a trailing newline must not slip through a `$` anchor
        "wéb",
    ],
)
def test_invalid_names_are_rejected_with_the_rule(name: str) -> None:
    with pytest.raises(UsageError, match="lower-case letter first"):
        validate_machine_name(name)


def test_host_veth_names_fit_the_kernel_limit_and_are_unique() -> None:
    names = [f"machine-{index}" for index in range(2000)] + ["a" + "b" * 30, "a" + "b" * 29 + "c"]
    veths = [host_veth_name(name) for name in names]
    assert all(len(veth) <= MAX_INTERFACE_NAME_LENGTH for veth in veths)
    assert len(set(veths)) == len(veths)


def test_host_veth_name_is_stable_per_machine() -> None:
    # destroy derives the name again after a crash, so it must not depend on anything but the name
    assert host_veth_name("barestack-demo") == host_veth_name("barestack-demo")
    assert host_veth_name("barestack-demo").startswith("bsv")


def test_netns_name_keeps_the_full_machine_name() -> None:
    longest = "a" + "b" * 30
    assert netns_name(longest) == "bst-" + longest


@pytest.mark.parametrize("bad", ["", "a" * 16, "br 0", "br/0"])
def test_bridge_names_follow_interface_rules(bad: str) -> None:
    with pytest.raises(UsageError, match="interface names"):
        validate_interface_name(bad, "bridge name")
    assert validate_interface_name("bstest0", "bridge name") == "bstest0"
