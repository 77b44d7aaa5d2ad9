"""The app_env role's env files, written for real by Ansible into a temporary folder.

Each service's file must hold what that service needs and nothing else; module runs read only
modules.env, which must hold no secret. The role runs as it does on a host (ansible-playbook,
local connection), so its vars, filters and file modes are what is under test.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ..ansible_cli import run

SECRETS = {
    "barestack_db_app_password": "p@ss/word:1-0123456789",
    "barestack_redis_app_password": "r/p@ss-0123456789abc",
    "barestack_redis_worker_password": "w-0123456789abcdef",
    "barestack_secret_key": "k" * 40,
    "barestack_frontend_api_token": "t" * 40,
}


def write_env_files(tmp: Path, data_host: str) -> Path:
    """Run the app_env role on localhost, with PostgreSQL and Redis on data_host (localhost or another)."""
    other = {data_host: {"barestack_host_address": "10.0.0.4"}}
    hosts = {"localhost": None} if data_host == "localhost" else other
    (tmp / "hosts.json").write_text(
        json.dumps(
            {
                "all": {
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        # playbooks/group_vars/all/helpers.yml derives it for playbooks under playbooks/.
                        "barestack_host_address": "127.0.0.1",
                    },
                    "children": {
                        "postgres": {"hosts": hosts},
                        "redis": {"hosts": hosts},
                        "app": {"hosts": {"localhost": None}},
                    },
                }
            }
        )
    )
    (tmp / "play.yml").write_text(
        json.dumps([{"hosts": "app", "gather_facts": False, "roles": [{"role": "app_env"}]}])
    )
    (tmp / "vars.json").write_text(
        json.dumps({**SECRETS, "app_env_dir": str(tmp / "etc"), "app_env_extra": {"GREETING": "a b $(true)"}})
    )
    (tmp / "etc").mkdir()
    result = run(
        [
            "ansible-playbook",
            "-i",
            str(tmp / "hosts.json"),
            "--limit",
            "localhost",
            str(tmp / "play.yml"),
            "-e",
            f"@{tmp / 'vars.json'}",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr
    return tmp / "etc"


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("cannot run here: needs root (make test runs as root): writes root-owned files")
    return write_env_files(tmp_path_factory.mktemp("env"), "localhost")


def test_data_tier_on_another_host_is_reached_over_verified_tls(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("cannot run here: needs root (make test runs as root): writes root-owned files")
    env_dir = write_env_files(tmp_path, "db1")
    backend = read_env(env_dir / "backend.env")
    worker = read_env(env_dir / "worker.env")
    infra = read_env(env_dir / "infrastructure.env")
    verify = "?sslmode=verify-full&sslrootcert=/etc/ssl/barestack/ca.crt"
    assert backend["DATABASE_URL"] == (
        "postgresql://barestack_app:p%40ss%2Fword%3A1-0123456789@10.0.0.4:5432/barestack" + verify
    )
    assert worker["DATABASE_URL"] == infra["DATABASE_URL"] == backend["DATABASE_URL"]
    tls = "?ssl_cert_reqs=required&ssl_check_hostname=true&ssl_ca_certs=/etc/ssl/barestack/ca.crt"
    assert backend["REDIS_URL"] == "rediss://barestack:r%2Fp%40ss-0123456789abc@10.0.0.4:6379/0" + tls
    assert worker["REDIS_URL"] == "rediss://barestack-worker:w-0123456789abcdef@10.0.0.4:6379/0" + tls


def read_env(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_each_service_gets_only_what_it_needs(env_dir: Path) -> None:
    backend = read_env(env_dir / "backend.env")
    worker = read_env(env_dir / "worker.env")
    frontend = read_env(env_dir / "frontend.env")
    infra = read_env(env_dir / "infrastructure.env")
    assert (
        backend["DATABASE_URL"]
        == "postgresql://barestack_app:p%40ss%2Fword%3A1-0123456789@127.0.0.1:5432/barestack"
    )
    assert backend["REDIS_URL"] == "redis://barestack:r%2Fp%40ss-0123456789abc@127.0.0.1:6379/0"
    assert {"SECRET_KEY", "BARESTACK_FRONTEND_TOKEN"}.isdisjoint(backend)
    assert {"SECRET_KEY", "BARESTACK_FRONTEND_TOKEN"}.isdisjoint(worker)
    assert "DATABASE_URL" in worker
    # The workers' own Redis user, which may only work the run stream.
    assert worker["REDIS_URL"] == "redis://barestack-worker:w-0123456789abcdef@127.0.0.1:6379/0"
    assert {"DATABASE_URL", "REDIS_URL"}.isdisjoint(frontend)
    assert frontend["BARESTACK_FRONTEND_TOKEN"] == SECRETS["barestack_frontend_api_token"]
    assert frontend["SECRET_KEY"] == infra["SECRET_KEY"] == SECRETS["barestack_secret_key"]
    assert "BARESTACK_FRONTEND_TOKEN" not in infra
    assert backend["BARESTACK_RUN_QUOTA"] == "10"
    assert frontend["BARESTACK_COOKIE_SECURE"] == "0"


def test_module_runs_see_no_secret_and_files_are_root_only(env_dir: Path) -> None:
    modules = (env_dir / "modules.env").read_text()
    assert read_env(env_dir / "modules.env") == {"GREETING": "a b $(true)"}
    for secret in SECRETS.values():
        assert secret not in modules
    assert stat.S_IMODE((env_dir / "modules.env").stat().st_mode) == 0o644
    for name in ("backend", "worker", "frontend", "infrastructure"):
        info = (env_dir / f"{name}.env").stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 0, 0), name
