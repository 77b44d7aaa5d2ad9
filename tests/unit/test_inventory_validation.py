"""A wrong inventory value stops the play in playbooks/validate.yml, before any task changes a host.

The validation play runs for real (ansible-playbook, local connection): argument_specs and the
roles' own checks are what is under test, so nothing here is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALID_SECRETS = {
    "barestack_db_owner_password": "o" * 32,
    "barestack_db_app_password": "a" * 32,
    "barestack_redis_app_password": "r" * 32,
    "barestack_redis_admin_password": "d" * 32,
    "barestack_redis_worker_password": "w" * 32,
    "barestack_secret_key": "s" * 64,
}


def run_validation(tmp_path: Path, extra_vars: dict[str, object]) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "hosts.yml"
    groups = {g: {"hosts": {"localhost": None}} for g in ("postgres", "redis", "app", "web")}
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        # What inventories/*/group_vars/all/main.yml sets for real hosts.
                        "barestack_private_address": "127.0.0.1",
                    },
                    "children": groups,
                }
            }
        ),
        encoding="utf-8",
    )
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({**VALID_SECRETS, **extra_vars}), encoding="utf-8")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / "validate.yml"),
            "-e",
            f"@{variables}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_valid_inventory_passes(tmp_path: Path) -> None:
    result = run_validation(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


@pytest.mark.parametrize(
    ("bad_vars", "named"),
    [
        ({"postgresql_port": "fivefourthreetwo"}, "postgresql_port"),
        ({"postgresql_port": 70000}, "postgresql_port"),
        ({"redis_maxmemory_mb": -5}, "redis_maxmemory_mb"),
        ({"postgresql_work_mem_mb": -1}, "postgresql_work_mem_mb"),
        ({"redis_persistence": "sometimes"}, "redis_persistence"),
        ({"redis_maxmemory_policy": "evict-whatever"}, "redis_maxmemory_policy"),
        ({"common_journald_storage": "cloud"}, "common_journald_storage"),
        ({"nginx_listen_port": "http"}, "nginx_listen_port"),
        ({"barestack_db_app_password": "zq-tiny-secret"}, "password"),
        ({"postgresql_version": "9.6"}, "postgresql_version"),
        ({"app_env_extra": {"lower_case": "x"}}, "app_env_extra"),
    ],
)
def test_bad_value_stops_the_play_naming_it(tmp_path: Path, bad_vars: dict[str, object], named: str) -> None:
    result = run_validation(tmp_path, bad_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert named in output, output
    # Secrets are checked, never echoed, even when they are the bad value.
    assert "zq-tiny-secret" not in output
