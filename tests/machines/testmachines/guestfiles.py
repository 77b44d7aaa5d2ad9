"""Files that make each machine itself: hostname, hosts, resolver, root's key, SSH host keys.

They are written into the machine's overlay (never the cached rootfs) before it boots.
"""

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError
from .hostcmd import run

CONTROLLER_RESOLV_CONF = Path("/etc/resolv.conf")


def usable_nameservers(resolv_conf_text: str) -> list[str]:
    """The controller's nameservers a machine can reach through the masquerade.

    Loopback resolvers (systemd-resolved's 127.0.0.53, a local dnsmasq) exist only on the controller,
    so they are skipped.
    """
    servers = []
    for line in resolv_conf_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                address = ipaddress.ip_address(fields[1].split("%")[0])
            except ValueError:
                continue
            if not address.is_loopback:
                servers.append(fields[1])
    return servers


def resolv_conf(nameservers: Sequence[str] | None) -> str:
    if nameservers is None:
        try:
            nameservers = usable_nameservers(CONTROLLER_RESOLV_CONF.read_text())
        except OSError:
            nameservers = []
    if not nameservers:
        raise UsageError(
            "no nameserver a machine can reach: the controller's /etc/resolv.conf has only loopback "
            "resolvers; set BARESTACK_MACHINES_NAMESERVERS=addr[,addr]"
        )
    return "".join(f"nameserver {server}\n" for server in nameservers)


def hosts_file(name: str) -> str:
    return (
        "127.0.0.1\tlocalhost\n"
        f"127.0.1.1\t{name}\n"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\t\tip6-allnodes\n"
        "ff02::2\t\tip6-allrouters\n"
    )


def _write(root: Path, relative: str, content: str, mode: int) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(content)
    target.chmod(mode)


def known_hosts_lines(root: Path, address: str) -> str:
    """known_hosts lines for the host keys under <root>/etc/ssh, as the machine answers at address."""
    lines = []
    for public in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        key_type, key = public.read_text().split()[:2]
        lines.append(f"{address} {key_type} {key}\n")
    return "".join(lines)


def write_machine_files(root: Path, name: str, public_key: str, resolver: str) -> None:
    """`resolver` comes from resolv_conf(), called before anything is created since it may refuse."""
    _write(root, "etc/hostname", f"{name}\n", 0o644)
    _write(root, "etc/hosts", hosts_file(name), 0o644)
    _write(root, "etc/resolv.conf", resolver, 0o644)
    (root / "root/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    (root / "root/.ssh").chmod(0o700)
    _write(root, "root/.ssh/authorized_keys", public_key + "\n", 0o600)
    # -A with a prefix generates every missing host key type below <root>/etc/ssh.
    run(["ssh-keygen", "-A", "-f", str(root)], what=f"generating SSH host keys for {name}")
