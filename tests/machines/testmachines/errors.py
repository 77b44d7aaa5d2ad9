"""The errors testmachine reports to its user: each one is a single, actionable line."""


class MachineError(Exception):
    """A failure the user can act on; the CLI prints its message on one line and exits non-zero."""


class UsageError(MachineError):
    """Bad input (name, release, subnet...): detected before anything on the host changes."""


class NotRootError(MachineError):
    """The command needs root: it mounts, creates network namespaces and starts containers."""


class MissingToolError(MachineError):
    """A program the command runs is not installed; the message names the Debian package."""


class KernelFeatureError(MachineError):
    """The kernel refused a namespace, veth or overlay operation the machines rely on."""


class NameTakenError(MachineError):
    """A machine (or a leftover network namespace) with that name already exists."""


class SubnetError(MachineError):
    """The test subnet collides with the controller's own networks or has no free address left."""


class BootError(MachineError):
    """The machine did not come up in time (systemd state or sshd); it has been rolled back."""
