#!/usr/bin/python3
"""make test-vm: barestack on a real kernel, in a qemu VM built here from Debian packages.

Test machines (testmachine) share the controller's kernel, so kernel settings, module rules and a real
reboot are never exercised there. This runs the whole stack on a kernel of its own:

1. image   debootstrap trixie (the test machines' recipe from testmachines/rootfs.py, plus a kernel,
           initramfs-tools, udev, DHCP by systemd-networkd and a first-boot seed unit), then an ext4
           disk image made with `mkfs.ext4 -d` (no loop mount) and the kernel and initrd from its
           /boot. Cached under the test machines' cache dir, keyed by a hash of the recipe.
2. boot    qemu (KVM when /dev/kvm works, TCG otherwise) on a throwaway qcow2 layer over the cached
           image, user-mode networking with SSH and HTTP forwarded from a free loopback address,
           serial console to a log file; the controller's test-machine key reaches root's
           authorized_keys through the kernel command line, read once by the seed unit.
3. converge `site.yml` over SSH, with the VM in postgres, redis, app and web and the group_vars of
           inventories/local (as molecule's default scenario does).
4. reboot  from inside (`systemctl reboot`); qemu runs with -no-reboot, so it exits and is started
           again on the kernel and initrd the converged guest now has in /boot.
5. verify  tests/integration/verify-kernel.yml, then molecule/default/verify.yml as a plain playbook.

Prints each phase's time and result; qemu is stopped and the run's files removed on every exit,
including failures, Ctrl-C and SIGTERM (the console logs and playbook logs stay, their path printed).

Standard library only, like testmachine; needs root (debootstrap, mkfs with root-owned files).
"""

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

# testmachines sits beside this file (the path above): its recipe, key and cache conventions.
from testmachines.errors import MachineError
from testmachines.hostcmd import require_root, require_tools
from testmachines.keys import ensure_ssh_key
from testmachines.locks import exclusive_lock
from testmachines.mounts import remove_tree
from testmachines.rootfs import Recipe, _debootstrap, apply_post_install, recipe_for
from testmachines.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
RELEASE = "trixie"
HOSTNAME = "bs-vm"
GROUPS = ("postgres", "redis", "app", "web")

# Bump when the code that turns the recipe into an image (not the recipe data) changes.
IMAGE_FORMAT = 1
IMAGE_SIZE = "12G"  # sparse: the file holds only what is written

VM_PACKAGES = (
    "linux-image-amd64",
    "initramfs-tools",
    "udev",
    "kmod",
    "e2fsprogs",
)

NETWORK = """\
# barestack VM: DHCP on the virtio NIC (qemu's user-mode network answers it).
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
"""

# qemu's user-mode network forwards DNS from this address to the controller's resolver.
RESOLV_CONF = "nameserver 10.0.2.3\n"

FSTAB = "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n"

# First boot: SSH host keys of its own and root's key from the kernel command line (base64, since
# a key line has spaces). Only while root has no authorized_keys yet: after the converge and a
# reboot, the key that still works is the one the host kept, not one written again.
SEED_SCRIPT = """\
#!/bin/sh
set -eu
ssh-keygen -A
[ -s /root/.ssh/authorized_keys ] && exit 0
for word in $(cat /proc/cmdline); do
    case "$word" in
        barestack.ssh_key=*)
            install -d -m 0700 /root/.ssh
            printf '%s' "${word#barestack.ssh_key=}" | base64 -d > /root/.ssh/authorized_keys
            echo >> /root/.ssh/authorized_keys
            chmod 0600 /root/.ssh/authorized_keys
            ;;
    esac
done
"""

SEED_UNIT = """\
[Unit]
Description=barestack VM seed: SSH host keys and root's key from the kernel command line
Before=ssh.service
ConditionPathExists=!/root/.ssh/authorized_keys

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/barestack-vm-seed

[Install]
WantedBy=multi-user.target
"""

VM_FILES = (
    ("etc/systemd/network/20-barestack-vm.network", NETWORK, 0o644),
    ("etc/resolv.conf", RESOLV_CONF, 0o644),
    ("etc/fstab", FSTAB, 0o644),
    ("etc/hostname", f"{HOSTNAME}\n", 0o644),
    ("usr/local/sbin/barestack-vm-seed", SEED_SCRIPT, 0o755),
    ("etc/systemd/system/barestack-vm-seed.service", SEED_UNIT, 0o644),
)
VM_UNITS = ("systemd-networkd.service", "barestack-vm-seed.service")

SSH_OPTIONS = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ControlPath=none",
    "-o",
    "ConnectTimeout=10",
)


class VmError(MachineError):
    """A phase of the VM run failed; the message says which and where its log is."""


def log(message: str) -> None:
    print(f"test-vm: {message}", file=sys.stderr, flush=True)


# --- the image ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "disk.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


def vm_recipe(settings: Settings) -> Recipe:
    """The test machines' recipe for trixie, with what a VM needs on top."""
    base = recipe_for(RELEASE, settings)
    return dataclasses.replace(
        base,
        packages=base.packages + VM_PACKAGES,
        files=base.files + VM_FILES,
    )


def image_key(recipe: Recipe) -> str:
    canonical = json.dumps(
        {
            "recipe": dataclasses.asdict(recipe),
            "units": VM_UNITS,
            "size": IMAGE_SIZE,
            "format": IMAGE_FORMAT,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _run(argv: Sequence[str], what: str, log_path: Path | None = None, timeout: float = 600) -> None:
    output = log_path.open("ab") if log_path else subprocess.DEVNULL
    try:
        result = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, timeout=timeout
        )
    finally:
        if log_path:
            output.close()  # type: ignore[union-attr]
    if result.returncode != 0:
        raise VmError(f"{what} failed (exit {result.returncode}{f', log {log_path}' if log_path else ''})")


def _newest(boot: Path, prefix: str) -> Path:
    candidates = sorted(boot.glob(f"{prefix}-*"))
    if not candidates:
        raise VmError(f"no {prefix}-* in {boot}: did the kernel package install?")
    return candidates[-1]


def ensure_image(settings: Settings) -> Image:
    recipe = vm_recipe(settings)
    key = image_key(recipe)
    image = Image(settings.cache_dir / f"vm-{RELEASE}-{key}")
    if image.disk.is_file():
        log(f"image {image.directory} (cached)")
        return image
    require_tools(["debootstrap", "mkfs.ext4", "systemctl", "rm", "umount"])
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(settings.cache_dir / f".vm-{RELEASE}.lock"):
        if image.disk.is_file():
            return image
        build = settings.cache_dir / f".build-vm-{RELEASE}-{key}-{os.getpid()}"
        for stale in settings.cache_dir.glob(f".build-vm-{RELEASE}-*"):
            remove_tree(stale)
        root = build / "root"
        build_log = settings.cache_dir / f"vm-{RELEASE}-{key}.build.log"
        build_log.unlink(missing_ok=True)
        debs = settings.cache_dir / "debs"
        debs.mkdir(exist_ok=True)
        log(f"building the VM image (key {key}; a few minutes; log {build_log})")
        try:
            build.mkdir()
            _debootstrap(recipe, root, debs, build_log)
            apply_post_install(root, recipe)
            _run(["systemctl", f"--root={root}", "enable", *VM_UNITS], "enabling the VM's units", build_log)
            shutil.copy2(_newest(root / "boot", "vmlinuz"), build / "vmlinuz")
            shutil.copy2(_newest(root / "boot", "initrd.img"), build / "initrd.img")
            disk = build / "disk.raw"
            with disk.open("wb") as handle:
                handle.truncate(_size_bytes(IMAGE_SIZE))
            _run(
                ["mkfs.ext4", "-q", "-F", "-L", "barestack-vm", "-d", str(root), str(disk)],
                "mkfs.ext4 -d",
                build_log,
            )
            remove_tree(root)
            (build / "recipe.json").write_text(
                json.dumps(json.loads(json.dumps(dataclasses.asdict(recipe))), indent=2) + "\n"
            )
            disk.chmod(0o444)
            build.rename(image.directory)
        except BaseException:
            remove_tree(build)
            raise
    return image


def _size_bytes(size: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


# --- the VM ------------------------------------------------------------------------------------


# Forwarded from the controller to the guest. The verify plays reach nginx at http://<ansible_host>/
# and sshd at <ansible_host>:22, so the VM gets a loopback address of its own (all of 127/8 is
# local on Linux) with the real ports, rather than odd ports on 127.0.0.1.
FORWARDED_PORTS = (22, 80)


def free_loopback_address(attempts: int = 50) -> str:
    """A 127.x.y.z address whose forwarded ports are free (checked by binding them)."""
    for _ in range(attempts):
        address = (
            f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
        )
        try:
            for port in FORWARDED_PORTS:
                with socket.socket() as probe:
                    probe.bind((address, port))
        except OSError:
            continue
        return address
    raise VmError(f"no loopback address with ports {FORWARDED_PORTS} free after {attempts} tries")


def kvm_usable() -> bool:
    """/dev/kvm may exist without VT-x/AMD-V (nested virtualisation off): then only TCG works."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " vmx" in flags or " svm" in flags


@dataclass
class Vm:
    run_dir: Path
    disk: Path
    ssh_key: Path
    public_key: str
    address: str = field(default_factory=free_loopback_address)
    memory_mb: int = 2048
    cpus: int = 2
    process: subprocess.Popen[bytes] | None = None
    boots: int = 0

    def start(self, kernel: Path, initrd: Path) -> None:
        self.boots += 1
        console = self.run_dir / f"console-{self.boots}.log"
        encoded = base64.b64encode(self.public_key.encode()).decode()
        accel = ["-accel", "kvm", "-cpu", "host"] if kvm_usable() else ["-accel", "tcg", "-cpu", "max"]
        argv = [
            "qemu-system-x86_64",
            *accel,
            "-machine",
            "q35",
            "-smp",
            str(self.cpus),
            "-m",
            str(self.memory_mb),
            "-nographic",
            "-no-reboot",
            "-kernel",
            str(kernel),
            "-initrd",
            str(initrd),
            "-append",
            f"root=/dev/vda rw console=ttyS0 barestack.ssh_key={encoded}",
            "-drive",
            f"file={self.disk},if=virtio,format=qcow2,discard=unmap",
            "-netdev",
            "user,id=net0,"
            + ",".join(f"hostfwd=tcp:{self.address}:{port}-:{port}" for port in FORWARDED_PORTS),
            "-device",
            "virtio-net-pci,netdev=net0",
            "-device",
            "virtio-rng-pci",
            "-serial",
            f"file:{console}",
            "-monitor",
            "none",
            "-display",
            "none",
        ]
        log(
            f"boot {self.boots}: {'KVM' if 'kvm' in argv else 'TCG'}, ssh and http on {self.address}, "
            f"console {console}"
        )
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=(self.run_dir / f"qemu-{self.boots}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop qemu ourselves
        )

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", *SSH_OPTIONS, "-i", str(self.ssh_key), f"root@{self.address}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def password_login(self) -> subprocess.CompletedProcess[str]:
        """Try to log in with a password only (BatchMode: no password is ever typed)."""
        argv = [
            "ssh",
            *SSH_OPTIONS,
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            f"root@{self.address}",
            "true",
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    def fetch(self, command: str, local: Path) -> None:
        """Write a command's output in the guest (a file's bytes) to a local file."""
        argv = ["ssh", *SSH_OPTIONS, "-i", str(self.ssh_key), f"root@{self.address}", command]
        with local.open("wb") as handle:
            result = subprocess.run(argv, stdout=handle, stderr=subprocess.PIPE, timeout=300, check=False)
        if result.returncode != 0 or local.stat().st_size == 0:
            raise VmError(
                f"`{command}` in the guest failed: {result.stderr.decode(errors='replace').strip()}"
            )

    def wait_for_ssh(self, timeout: float) -> str:
        """Wait until root logs in with the key; return the boot id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise VmError(f"qemu exited while booting (see {self.run_dir}/console-{self.boots}.log)")
            try:
                result = self.ssh("cat /proc/sys/kernel/random/boot_id", timeout=30)
            except subprocess.TimeoutExpired:
                continue
            if result.returncode == 0 and result.stdout.strip():
                return result.stdout.strip()
            time.sleep(3)
        raise VmError(f"no SSH login within {timeout:.0f} s (see {self.run_dir}/console-{self.boots}.log)")

    def wait_for_exit(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VmError(f"the guest did not shut down within {timeout:.0f} s") from None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


# --- playbooks ---------------------------------------------------------------------------------


def write_inventory(run_dir: Path, vm: Vm) -> Path:
    """Molecule's layout: <ephemeral>/inventory/{hosts.yml,group_vars}; the verify plays expect it."""
    inventory = run_dir / "inventory"
    inventory.mkdir()
    host = {
        "ansible_host": vm.address,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(vm.ssh_key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    hosts = {
        "all": {
            "hosts": {HOSTNAME: host},
            "children": {group: {"hosts": {HOSTNAME: None}} for group in GROUPS},
        }
    }
    (inventory / "hosts.yml").write_text(json.dumps(hosts, indent=2) + "\n")  # JSON is YAML
    (inventory / "group_vars").symlink_to(REPO / "inventories" / "local" / "group_vars")
    return inventory


def playbook_env(run_dir: Path, control_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = REPO / ".venv" / "bin"
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    # Where the verify plays look for the project, the inventory and this run's secrets.
    env["MOLECULE_PROJECT_DIRECTORY"] = str(REPO)
    env["MOLECULE_EPHEMERAL_DIRECTORY"] = str(run_dir)
    env["BARESTACK_SECRETS_DIR"] = str(run_dir / "secrets")
    # An SSH master of the boot before would be a dead end after the reboot: one directory per boot,
    # short, since a socket path has at most 107 characters.
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
    return env


def run_playbook(
    playbook: Path, inventory: Path, env: dict[str, str], log_path: Path, extra: Sequence[str] = ()
) -> None:
    argv = ["ansible-playbook", "-i", str(inventory / "hosts.yml"), str(playbook), *extra]
    log(f"ansible-playbook {playbook.relative_to(REPO)} (log {log_path})")
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        for line in process.stdout:
            output.write(line)
            output.flush()
            text = line.decode(errors="replace")
            if (
                text.startswith(("PLAY RECAP", "fatal:", "failed:"))
                or " : ok=" in text
                or "lynis hardening index" in text
            ):
                sys.stderr.write(f"    {text}")
        rc = process.wait()
    if rc != 0:
        raise VmError(f"{playbook.relative_to(REPO)} failed (exit {rc}, log {log_path})")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Phases:
    results: list[tuple[str, float, str]] = field(default_factory=list)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        log(f"--- {name}")
        try:
            yield
        except BaseException as error:
            reason = "interrupted" if isinstance(error, KeyboardInterrupt) else "FAILED"
            self.results.append((name, time.monotonic() - started, reason))
            raise
        self.results.append((name, time.monotonic() - started, "ok"))

    def report(self, total: float) -> str:
        lines = ["", "test-vm phases:"]
        lines += [f"  {name:<30} {seconds:8.0f} s  {result}" for name, seconds, result in self.results]
        lines.append(f"  {'total':<30} {total:8.0f} s  ({total / 60:.1f} min)")
        return "\n".join(lines)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--image-only", action="store_true", help="build (or find) the cached image and stop")
    parser.add_argument(
        "--verify",
        nargs="+",
        # The kernel checks first: they read the state the reboot left (every unit started, sysctls),
        # before the verify plays restart services, roll releases and break a backup on purpose.
        default=["tests/integration/verify-kernel.yml", "molecule/default/verify.yml"],
        help="playbooks run after the reboot, relative to the repository (default: %(default)s)",
    )
    parser.add_argument(
        "--converge",
        default="site.yml",
        help="playbook converged before the reboot, relative to the repository (default: %(default)s; "
        "playbooks/common.yml with --verify tests/integration/verify-kernel.yml is the kernel part alone)",
    )
    parser.add_argument("--boot-timeout", type=float, default=900, help="seconds to wait for SSH per boot")
    parser.add_argument("--memory", type=int, default=2048, help="guest memory in MiB")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    started = time.monotonic()
    phases = Phases()
    vm: Vm | None = None
    run_dir: Path | None = None
    control_dirs: dict[int, Path] = {}

    def control_dir(boot: int) -> Path:
        if boot not in control_dirs:
            control_dirs[boot] = Path(tempfile.mkdtemp(prefix=f"bsvm{boot}-"))
        return control_dirs[boot]

    try:
        require_root()
        require_tools(["qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen"])
        settings = load_settings()
        with phases.phase("image"):
            image = ensure_image(settings)
        if args.image_only:
            return 0
        logs_root = settings.base_dir / "vm-runs"
        logs_root.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=logs_root))
        log(f"run directory {run_dir}")
        public_key = ensure_ssh_key(settings)
        disk = run_dir / "disk.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.disk), str(disk)],
            check=True,
        )
        vm = Vm(run_dir, disk, settings.ssh_key, public_key, memory_mb=args.memory, cpus=args.cpus)
        inventory = write_inventory(run_dir, vm)

        with phases.phase("boot"):
            vm.start(image.kernel, image.initrd)
            first_boot = vm.wait_for_ssh(args.boot_timeout)
            virt = vm.ssh("systemd-detect-virt").stdout.strip()
            log(f"up: boot id {first_boot}, systemd-detect-virt: {virt}")

        with phases.phase("converge"):
            run_playbook(
                REPO / args.converge,
                inventory,
                playbook_env(run_dir, control_dir(vm.boots)),
                run_dir / "converge.log",
            )

        with phases.phase("reboot"):
            # The guest's own kernel and initrd now (an upgrade or a rebuilt initramfs is booted too).
            kernel, initrd = run_dir / "vmlinuz", run_dir / "initrd.img"
            for name, local in (("vmlinuz", kernel), ("initrd.img", initrd)):
                vm.fetch(f"cat $(ls -1v /boot/{name}-* | tail -n 1)", local)
            # --no-block: queue the reboot and return; a login alone takes 10-20 s under TCG.
            with contextlib.suppress(subprocess.TimeoutExpired):
                vm.ssh("systemctl --no-block reboot", timeout=120)
            vm.wait_for_exit(900)  # -no-reboot: qemu ends when the guest resets
            vm.start(kernel, initrd)
            second_boot = vm.wait_for_ssh(args.boot_timeout)
            if second_boot == first_boot:
                raise VmError("the boot id did not change: the VM did not reboot")
            log(f"up again: boot id {second_boot}; the key kept in the guest still logs in")
            refused = vm.password_login()
            if refused.returncode != 255 or "Permission denied (publickey)" not in refused.stderr:
                raise VmError(
                    f"a password login was not refused before a password was asked: {refused.stderr.strip()}"
                )
            log("a password login is refused: Permission denied (publickey)")

        # Every verify playbook runs, also after one fails: each is its own line in the report.
        failed = []
        for playbook in args.verify:
            try:
                with phases.phase(f"verify {Path(playbook).name}"):
                    run_playbook(
                        REPO / playbook,
                        inventory,
                        playbook_env(run_dir, control_dir(vm.boots)),
                        run_dir / f"verify-{Path(playbook).stem}.log",
                        extra=["-e", f"verify_kernel_previous_boot_id={first_boot}"],
                    )
            except VmError as error:
                log(f"error: {error}")
                failed.append(playbook)
        if failed:
            raise VmError(f"verify failed: {', '.join(failed)}")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (MachineError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        log(f"error: {error}")
        return 1
    finally:
        if vm is not None:
            vm.stop()
        if run_dir is not None:
            # Keep the logs; drop the disk layer, kernel copies, secrets and SSH sockets.
            for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
                (run_dir / name).unlink(missing_ok=True)
            for path in [run_dir / "secrets", run_dir / "releases-test", *control_dirs.values()]:
                shutil.rmtree(path, ignore_errors=True)
            log(f"logs kept in {run_dir}")
        print(phases.report(time.monotonic() - started), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
