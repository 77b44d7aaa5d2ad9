"""Preconditions: root, installed programs, and how failures of host commands are reported."""

import pytest
from testmachines.errors import MachineError, MissingToolError, NotRootError
from testmachines.hostcmd import capture, missing_tools_error, require_root, require_tools, run


def test_non_root_is_refused_with_the_reason() -> None:
    with pytest.raises(NotRootError, match=r"needs root .* run it with sudo"):
        require_root(lambda: 1000)
    require_root(lambda: 0)


def test_missing_program_names_the_debian_package() -> None:
    error = missing_tools_error(["systemd-nspawn", "nft", "ssh", "ssh-keygen"])
    assert str(error) == (
        "missing program(s) systemd-nspawn, nft, ssh, ssh-keygen: "
        "install with `apt-get install nftables openssh-client systemd-container`"
    )


def test_really_missing_program_is_detected() -> None:
    with pytest.raises(MissingToolError, match="no-such-tool-barestack"):
        require_tools(["sh", "no-such-tool-barestack"])
    require_tools(["sh", "ip"])  # found even if PATH lacks the sbin directories


def test_failed_command_reports_what_was_being_done_and_the_last_error_line() -> None:
    with pytest.raises(MachineError, match=r"^creating the thing: second line$"):
        run(["sh", "-c", "echo first >&2; echo second line >&2; exit 3"], what="creating the thing")
    assert run(["sh", "-c", "echo out"], what="echoing") == "out\n"


def test_capture_returns_status_and_output_without_raising() -> None:
    assert capture(["sh", "-c", "echo degraded; exit 1"]) == (1, "degraded\n")
