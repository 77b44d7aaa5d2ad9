"""A wrong inventory value stops the play in playbooks/validate.yml, before any task changes a host.

The validation play runs for real (ansible-playbook, local connection): argument_specs and the
roles' own checks are what is under test, so nothing here is mocked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from .ansible_cli import ROOT, run

VALID_SECRETS = {
    "barestack_db_owner_password": "o" * 32,
    "barestack_db_app_password": "a" * 32,
    "barestack_redis_app_password": "r" * 32,
    "barestack_redis_admin_password": "d" * 32,
    "barestack_redis_worker_password": "w" * 32,
    "barestack_secret_key": "s" * 64,
    "barestack_frontend_api_token": "f" * 40,
    "barestack_admin_password": "p" * 20,
    "barestack_backup_cipher_pass": "c" * 64,
}


# The links between hosts need TLS (what barestack_tls_links says for a layout of several hosts), with
# a generated CA's folder as the local environment sets it.
TLS_LINKS: dict[str, object] = {"barestack_tls_links": True, "barestack_tls_ca_dir": "/nonexistent/secrets"}
PEM_CERT = "-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n"


def run_validation(
    tmp_path: Path,
    extra_vars: dict[str, object],
    *,
    secrets: dict[str, str] = VALID_SECRETS,
    host_vars: dict[str, object] | None = None,
    backup_hosts: tuple[str, ...] = (),
    local_groups: tuple[str, ...] = ("postgres", "redis", "app", "web"),
    playbook: str = "validate.yml",
    options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``playbooks/<playbook>`` over a local connection, localhost in ``local_groups``."""
    inventory = tmp_path / "hosts.yml"
    groups: dict[str, object] = {g: {"hosts": {"localhost": None}} for g in local_groups}
    if backup_hosts:  # validated too, over the same local connection (the backup role's checks)
        groups["backup"] = {"hosts": dict.fromkeys(backup_hosts)}
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        # What inventories/*/group_vars/all/main.yml may set for real hosts.
                        **({"barestack_private_address": "127.0.0.1"} if host_vars is None else host_vars),
                    },
                    "children": groups,
                }
            }
        ),
        encoding="utf-8",
    )
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({**secrets, **extra_vars}), encoding="utf-8")
    path = ROOT / "playbooks" / playbook
    return run(["ansible-playbook", "-i", str(inventory), str(path), "-e", f"@{variables}", *options])


def test_valid_inventory_passes(tmp_path: Path) -> None:
    result = run_validation(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def test_hosts_only_inventory_without_secrets_stops_naming_them(tmp_path: Path) -> None:
    # Only the four groups: no barestack_private_address, no secrets.
    result = run_validation(tmp_path, {}, secrets={}, host_vars={})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    failure = "\n".join(problems(output))
    for name in VALID_SECRETS:
        assert name in failure, output
    assert "inventories/local/group_vars/all/secrets.yml" in failure, output
    assert "make vault" in failure, output
    # The stop comes from the secrets check, before any role's validation ran.
    assert "Validate the roles this host runs" not in output, output


def test_hosts_only_inventory_missing_one_secret_names_only_it(tmp_path: Path) -> None:
    secrets = {k: v for k, v in VALID_SECRETS.items() if k != "barestack_secret_key"}
    result = run_validation(tmp_path, {}, secrets=secrets, host_vars={})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    failure = "\n".join(problems(output))
    assert "barestack_secret_key" in failure, output
    assert "barestack_db_owner_password" not in failure, output


def test_hosts_only_inventory_with_secrets_passes(tmp_path: Path) -> None:
    # barestack_private_address unset: the roles derive barestack_host_address from the default route.
    result = run_validation(tmp_path, {}, host_vars={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def ssh_key_pair(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "backup_ssh_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return {
        "barestack_backup_ssh_private_key": key.read_text(),
        "barestack_backup_ssh_public_key": key.with_suffix(".pub").read_text().strip(),
    }


def test_validate_yml_checks_each_role_on_the_hosts_site_yml_runs_it_on() -> None:
    """The roles skip their own checks under site.yml (barestack_site_validated) because validate.yml
    checked them first: that holds only where validate.yml's host list for a role covers the hosts
    of the play that runs it. A play moved to more hosts must move validate.yml's list with it."""

    def plays(name: str) -> list[dict[str, object]]:
        return yaml.safe_load((ROOT / "playbooks" / name).read_text(encoding="utf-8"))

    site = yaml.safe_load((ROOT / "site.yml").read_text(encoding="utf-8"))
    skipping = [
        entry["ansible.builtin.import_playbook"].removeprefix("playbooks/")
        for entry in site
        if entry.get("vars", {}).get("barestack_site_validated")
    ]
    assert skipping, "site.yml passes barestack_site_validated to no play"
    run_on: dict[str, set[str]] = {}
    for playbook in skipping:
        for play in plays(playbook):
            for role in play.get("roles", []):
                name = role["role"] if isinstance(role, dict) else role
                run_on.setdefault(name, set()).update(str(play["hosts"]).split(":"))
    validate_play = next(play for play in plays("validate.yml") if "tasks" in play)
    include = next(task for task in validate_play["tasks"] if "ansible.builtin.include_role" in task)
    checked_on = {item["role"]: set(item["hosts"]) for item in include["loop"]}
    assert set(validate_play["hosts"].split(":")) >= set().union(*run_on.values())
    for role, hosts in run_on.items():
        checked = checked_on.get(role, set())
        assert hosts <= checked, f"{role} runs on {sorted(hosts)}, checked on {sorted(checked)}"


@pytest.mark.parametrize("site_validated", [False, True])
def test_a_role_checks_its_values_unless_site_yml_did(tmp_path: Path, site_validated: bool) -> None:
    """A playbook of playbooks/ run alone checks its roles' values itself; under site.yml, whose
    validate.yml play checked them first, the role skips the same checks (barestack_site_validated).

    --tags none matches no task, so only the always-tagged checks run: nothing else touches this machine.
    """
    flag = {"barestack_site_validated": True} if site_validated else {}
    result = run_validation(
        tmp_path,
        {"redis_maxmemory_mb": -5} | flag,
        # the play asks for root, which this test runs as already (no sudo here)
        host_vars={"ansible_become": False},
        local_groups=("redis",),
        playbook="data.yml",
        options=("--tags", "none"),
    )
    output = result.stdout + result.stderr
    if site_validated:
        assert result.returncode == 0, output
        assert "TASK [redis : Check Redis values" not in output, output
    else:
        assert result.returncode != 0, output
        assert "redis_maxmemory_mb must be 0 or more" in "\n".join(problems(output)), output


def test_a_backup_host_with_its_key_pair_passes(tmp_path: Path) -> None:
    result = run_validation(tmp_path, ssh_key_pair(tmp_path), backup_hosts=("bk1",))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("backup_hosts", "replace", "expected"),
    [
        (("bk1",), {"barestack_backup_ssh_private_key": ""}, "backup_ssh_private_key must be an OpenSSH"),
        (("bk1",), {"barestack_backup_ssh_public_key": "ssh-rsa AAAA x"}, "backup_ssh_public_key must"),
        (("bk1", "bk2"), {}, "backup_host (the inventory group `backup`) may hold one host (got bk1, bk2)"),
        (("localhost",), {}, "may not be in the postgres or redis group"),
    ],
)
def test_a_bad_backup_host_stops_the_play_naming_it(
    tmp_path: Path, backup_hosts: tuple[str, ...], replace: dict[str, str], expected: str
) -> None:
    result = run_validation(tmp_path, ssh_key_pair(tmp_path) | replace, backup_hosts=backup_hosts)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in "\n".join(problems(output)), output


BAD_VALUES: list[tuple[dict[str, object], str]] = [
    ({"postgresql_port": "fivefourthreetwo"}, "postgresql_port"),
    ({"postgresql_port": 70000}, "postgresql_port"),
    ({"redis_maxmemory_mb": -5}, "redis_maxmemory_mb"),
    ({"postgresql_work_mem_mb": -1}, "postgresql_work_mem_mb"),
    ({"redis_persistence": "sometimes"}, "redis_persistence"),
    ({"redis_maxmemory_policy": "evict-whatever"}, "redis_maxmemory_policy"),
    ({"common_journald_storage": "cloud"}, "common_journald_storage"),
    ({"common_hardening_ssh_max_auth_tries": 0}, "common_hardening_ssh_max_auth_tries"),
    ({"common_hardening_umask": "999"}, "common_hardening_umask"),
    ({"common_hardening_banner": "\\l login"}, "common_hardening_banner"),
    ({"common_hardening_sysctl_extra": {"not a sysctl": 1}}, "common_hardening_sysctl_extra"),
    ({"firewall_admin_networks": []}, "firewall_admin_networks"),
    ({"firewall_web_networks": ["everyone"]}, "firewall_web_networks"),
    ({"firewall_rollback_seconds": 1}, "firewall_rollback_seconds"),
    ({"nginx_listen_port": "http"}, "nginx_listen_port"),
    ({"barestack_db_app_password": "zq-tiny-secret"}, "postgresql_app_password"),
    ({"postgresql_version": "9.6"}, "postgresql_version"),
    ({"app_env_extra": {"lower_case": "x"}}, "app_env_extra"),
    # Values that could inject configuration: a newline starts another line of the env file.
    ({"app_env_extra": {"GREETING": "hi\nDATABASE_URL=postgresql://evil"}}, "app_env_extra"),
    ({"app_env_database_name": "barestack; DROP"}, "app_env_database_name"),
    ({"app_env_database_user": "App-User"}, "app_env_database_user"),
    ({"app_env_redis_user": "bare stack"}, "app_env_redis_user"),
    ({"app_env_database_host": "db;rm -rf"}, "app_env_database_host"),
    ({"app_env_redis_db": 99}, "app_env_redis_db"),
    ({"app_env_run_quota": 0}, "app_env_run_quota"),
    ({"app_env_max_body_bytes": 10}, "app_env_max_body_bytes"),
    ({"app_env_max_args_bytes": 10**9}, "app_env_max_args_bytes"),
    ({"barestack_frontend_api_token": "zq-tiny-secret"}, "barestack_frontend_api_token"),
    ({"postgresql_database": "Bad-Name"}, "postgresql_database"),
    ({"postgresql_app_role": "app role"}, "postgresql_app_role"),
    ({"postgresql_owner_role": "owner;drop"}, "postgresql_owner_role"),
    ({"postgresql_extra_settings": {"work_mem\nlisten_addresses": "1"}}, "postgresql_extra_settings"),
    ({"postgresql_extra_settings": {"work_mem": "4MB'\nssl = off"}}, "postgresql_extra_settings"),
    ({"postgresql_max_connections": 5}, "postgresql_max_connections"),
    ({"app_run_timeout": 0}, "app_run_timeout"),
    ({"app_run_timeout": 999999}, "app_run_timeout"),
    ({"app_slow_request_seconds": -1}, "app_slow_request_seconds"),
    ({"app_slow_request_seconds": 4000}, "app_slow_request_seconds"),
    ({"app_health_deadline": 0}, "app_health_deadline"),
    ({"app_worker_instances": 0}, "app_worker_instances"),
    ({"app_gunicorn_threads": {"backend": 0, "frontend": 4, "infrastructure": 2}}, "app_gunicorn_threads"),
    ({"app_gunicorn_threads": {"backend": 65, "frontend": 4, "infrastructure": 2}}, "app_gunicorn_threads"),
    ({"app_gunicorn_threads": {"backend": 4}}, "app_gunicorn_threads"),
    ({"app_gunicorn_keepalive": 0}, "app_gunicorn_keepalive"),
    ({"app_health_checks": [{"path": "/api/health x", "status": 200}]}, "app_health_checks"),
    ({"app_health_checks": [{"path": "http://evil.example/", "status": 200}]}, "app_health_checks"),
    ({"app_health_checks": [{"path": "/api/health", "status": 42}]}, "app_health_checks"),
    ({"app_api_tokens": [{"name": "Bad Name", "token": "x" * 40}]}, "app_api_tokens"),
    ({"app_api_tokens": [{"name": "ci", "token": "zq-tiny-secret"}]}, "app_api_tokens"),
    ({"app_api_tokens": [{"name": "frontend", "token": "y" * 40}]}, "app_api_tokens"),
    ({"app_users": [{"name": "Root!", "password": "p" * 20}]}, "app_users"),
    ({"app_users": [{"name": "alice", "password": "zq-tiny-secret"[:11]}]}, "app_users"),
    (
        {"app_users": [{"name": "bob", "password": "p" * 20}, {"name": "bob", "password": "q" * 2 * 10}]},
        "app_users",
    ),
    ({"app_run_retention_days": 0}, "app_run_retention_days"),
    ({"app_run_purge_schedule": "daily; rm -rf /"}, "app_run_purge_schedule"),
    ({"nginx_server_name": "example.org; return 200"}, "nginx_server_name"),
    ({"nginx_proxy_read_timeout": "60s; allow all"}, "nginx_proxy_read_timeout"),
    ({"nginx_proxy_buffers": "32 16k; allow all"}, "nginx_proxy_buffers"),
    ({"nginx_proxy_buffers": "2 16k"}, "nginx_proxy_buffers"),
    ({"nginx_proxy_buffers": "32 2k"}, "nginx_proxy_buffers"),
    ({"nginx_write_rate": "fast"}, "nginx_write_rate"),
    ({"nginx_tls_hsts": 'max-age=1"; add_header X 1'}, "nginx_tls_hsts"),
    ({"nginx_app_routes": [{"path": "/api;/", "service": "backend", "prefix": "/api"}]}, "nginx_app_routes"),
    ({"barestack_backup_cipher_pass": "zq-tiny-secret"}, "backup_repo_cipher_pass"),
    ({"backup_retention_days": 0}, "backup_retention_days"),
    ({"backup_drill_port": 5432}, "backup_drill_port"),
    ({"backup_full_schedule": "weekly\nExecStart=/bin/sh"}, "backup_full_schedule"),
    ({"backup_compress_type": "rar"}, "backup_compress_type"),
    ({"backup_repo_host_user": "postgres"}, "backup_repo_host_user"),
    ({"backup_ssh_port": 0}, "backup_ssh_port"),
    ({"backup_ssh_connect_timeout": 3600}, "backup_ssh_connect_timeout"),
    ({"backup_warn_full_after_hours": 0}, "backup_warn_full_after_hours"),
    ({"backup_warn_redis_after_hours": -1}, "backup_warn_redis_after_hours"),
    ({"postgresql_archive_mode": "sometimes"}, "postgresql_archive_mode"),
    ({"postgresql_archive_command": "cp %p /tmp/'x'"}, "postgresql_archive_command"),
    # TLS between hosts: checked once the groups span more than one host (barestack_tls_links).
    ({**TLS_LINKS, "tls_renew_days": 400}, "tls_renew_days"),
    ({**TLS_LINKS, "tls_cert_days": "a year"}, "tls_cert_days"),
    ({**TLS_LINKS, "tls_ca_days": 30}, "tls_ca_days"),
    ({**TLS_LINKS, "tls_app_name": "app; return 200"}, "tls_app_name"),
    ({**TLS_LINKS, "barestack_tls_ca_cert": "not a certificate"}, "tls_ca_cert"),
    ({**TLS_LINKS, "barestack_tls_ca_dir": ""}, "tls_ca_cert"),
    (
        {**TLS_LINKS, "barestack_tls_ca_cert": PEM_CERT, "barestack_tls_ca_key": "zq-tiny-secret"},
        "tls_ca_key",
    ),
    ({"nginx_app_tls_name": "app; return 200"}, "nginx_app_tls_name"),
    ({"app_env_tls_ca_file": "relative/ca.crt"}, "app_env_tls_ca_file"),
]


# A message may name a second variable: the same value under the role's own name
# (app_env_frontend_token is barestack_frontend_api_token), one rule for both (app_api_tokens' tokens
# and app_frontend_token), or a bound (app_env_max_args_bytes at most app_env_max_body_bytes). Only
# these may appear beside the bad variable; a message naming any other validated variable fails.
ALSO_NAMED: dict[str, set[str]] = {
    "barestack_frontend_api_token": {"app_env_frontend_token"},
    "app_api_tokens": {"app_frontend_token"},
    "app_env_max_body_bytes": {"app_env_max_args_bytes"},
    "app_env_max_args_bytes": {"app_env_max_body_bytes"},
    "firewall_rollback_seconds": {"firewall_confirm_timeout"},
}
FAILED = re.compile(r"FAILED! => (\{.*\})\s*$", re.MULTILINE)
ROLE_PREFIX = re.compile(r"^[a-z_]+: ")
# A role's check joins its messages with "; ", each starting with the variable it is about.
NEXT_MESSAGE = re.compile(r"; (?=[a-z][a-z0-9]*_[a-z0-9_]* )")


@cache
def validated_variables() -> frozenset[str]:
    """Every variable a role validates: its argument_specs options and the subjects of its own checks."""
    names: set[str] = set()
    for spec_file in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"].values():
            names.update(entry.get("options", {}))
    for checks in (ROOT / "roles").glob("*/tasks/validate.yml"):
        names.update(re.findall(r"\('([a-z][a-z0-9]*_[a-z0-9_]*) ", checks.read_text(encoding="utf-8")))
    return frozenset(names)


def names(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", text) is not None


def named_in(text: str) -> set[str]:
    return {name for name in validated_variables() if names(text, name)}


def problems(output: str) -> list[str]:
    """The failure's own per-variable messages: argument_specs' errors, or a role check's joined list.

    Not the whole result: an argument_specs failure carries the role's entire spec (every variable).
    """
    results = [json.loads(match) for match in FAILED.findall(output)]
    assert results, f"expected a failed task:\n{output}"
    # One failure per host the bad value reaches (a backup value fails on the data host and on the
    # backup host alike): their messages, each once.
    found: list[str] = []
    for result in results:
        messages = (
            list(result["argument_errors"])
            if "argument_errors" in result
            else NEXT_MESSAGE.split(ROLE_PREFIX.sub("", result["msg"]))
        )
        found += [message for message in messages if message not in found]
    return found


@pytest.mark.parametrize(("bad_vars", "named"), BAD_VALUES)
def test_bad_value_stops_the_play_naming_it(tmp_path: Path, bad_vars: dict[str, object], named: str) -> None:
    result = run_validation(tmp_path, bad_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # Each message of the failure is about the bad variable: it names it, and no other variable
    # (some other line of the output, or a message listing every variable, does not count).
    lines = problems(output)
    assert lines, output
    for line in lines:
        assert names(line, named), f"{line!r} does not name {named}"
        others = named_in(line) - {named} - ALSO_NAMED.get(named, set())
        assert not others, f"{line!r} names {sorted(others)} besides {named}"
    # Secrets are checked, never echoed, even when they are the bad value.
    assert "zq-tiny-secret" not in output
    assert "zq-tiny-sec" not in output
    # Nothing ran past validation: no role of the site was applied.
    assert "changed=0" in output or "unreachable=0" in output
