"""The SSH key the controller (and Ansible) log in to every machine with.

One key per state dir, generated on first use: machines are disposable and reachable only from the
controller, and a single key keeps inventories simple. It is written into each machine at create,
not into the cached rootfs, so deleting the key never invalidates the cache.
"""

from .hostcmd import run
from .locks import exclusive_lock
from .settings import Settings


def ensure_ssh_key(settings: Settings) -> str:
    """Create the key pair if missing; return the public key line."""
    key = settings.ssh_key
    with exclusive_lock(settings.keys_dir / ".lock"):
        settings.keys_dir.chmod(0o700)
        if not key.exists() or not key.with_suffix(".pub").exists():
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "barestack-testmachine",
                    "-f",
                    str(key),
                ],
                what=f"generating the SSH key {key}",
            )
        key.chmod(0o600)
    return key.with_suffix(".pub").read_text().strip()
