"""`make vault` and the staging/production inventories, for real.

`make vault ENV=...` runs in a copy of the project's inventories (so the repository's own tree is never
written); the vault it writes must be encrypted, must not be overwritten by a second run, and must give
the inventory every secret its roles need: playbooks/validate.yml (argument_specs and every role's own
checks) runs against that inventory's group_vars and vault, with its hosts replaced by this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .ansible_cli import ROOT, run


def _make_vault(project: Path, environment: str) -> subprocess.CompletedProcess[str]:
    # -o setup: the copy shares this checkout's venv; setup (apt, pip) is not what is under test.
    return run(["make", "-s", "-o", "setup", "vault", f"ENV={environment}"], project)


def _validate(hosts: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    playbook = ROOT / "playbooks" / "validate.yml"
    return run(["ansible-playbook", "-i", str(hosts), str(playbook), *extra], ROOT)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_make_vault_gives_the_inventory_every_secret(tmp_path: Path, environment: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    # make vault generates the project CA with this playbook and the tls role.
    (project / "playbooks").mkdir()
    shutil.copy(ROOT / "playbooks" / "tls-ca.yml", project / "playbooks" / "tls-ca.yml")
    shutil.copytree(ROOT / "roles" / "tls", project / "roles" / "tls")
    shutil.copytree(ROOT / "inventories" / environment, project / "inventories" / environment)

    made = _make_vault(project, environment)
    assert made.returncode == 0, made.stdout + made.stderr
    vault = project / "inventories" / environment / "group_vars" / "all" / "vault.yml"
    password_file = project / ".secrets" / f"vault-pass-{environment}"
    assert vault.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT;")
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"
    assert oct(vault.stat().st_mode & 0o077) == "0o0"

    before = vault.read_bytes()
    again = _make_vault(project, environment)
    assert again.returncode != 0
    assert "exists" in again.stderr
    assert vault.read_bytes() == before

    # The environment's own group_vars and vault, with this machine as every host.
    hosts = project / "inventories" / environment / "hosts.yml"
    original = yaml.safe_load(hosts.read_text(encoding="utf-8"))
    assert set(original["all"]["children"]) >= {"postgres", "redis", "app", "web"}
    local = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "children": {group: {"hosts": {"localhost": None}} for group in original["all"]["children"]},
        }
    }
    local_hosts = hosts.with_name("hosts-local.yml")
    local_hosts.write_text(yaml.safe_dump(local), encoding="utf-8")
    validated = _validate(local_hosts, "--vault-password-file", str(password_file))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "failed=0" in validated.stdout

    # The vault's project CA passes the tls role's checks once the links between hosts need it, and a
    # broken one stops the run naming its variable, never printing the key.
    vault_password = ("--vault-password-file", str(password_file))
    links = ("-e", "barestack_tls_links=true")
    split = _validate(local_hosts, *vault_password, *links)
    assert split.returncode == 0, split.stdout + split.stderr
    broken = _validate(local_hosts, *vault_password, *links, "-e", "barestack_tls_ca_key=x")
    assert broken.returncode != 0
    assert "tls_ca_key must be the CA's PEM private key" in broken.stdout

    # Without the vault password the same run stops: the secrets really come from the vault.
    locked = _validate(local_hosts)
    assert locked.returncode != 0
    assert "vault" in (locked.stdout + locked.stderr).lower()
