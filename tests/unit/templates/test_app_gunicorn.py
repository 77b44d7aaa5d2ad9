"""gunicorn's worker model in the app role: counts derived from the host, flags in the unit."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from .render import ROLES, render

# Loaded as a play loads role defaults: their "{{ ... }}" strings are templates Ansible evaluates.
LOADER = DataLoader()
DEFAULTS = LOADER.load_from_file(str(ROLES / "app" / "defaults" / "main.yml"), trusted_as_template=True)
VARS = yaml.safe_load((ROLES / "app" / "vars" / "main.yml").read_text())


def workers_for(vcpus: int, memtotal_mb: int) -> dict[str, int]:
    """app_gunicorn_workers as Ansible's templar evaluates it on a host with these facts."""
    facts = {"processor_vcpus": vcpus, "memtotal_mb": memtotal_mb}
    templar = Templar(loader=LOADER, variables={**DEFAULTS, "ansible_facts": facts})
    counts = templar.template(DEFAULTS["app_gunicorn_workers"])
    return {service: int(count) for service, count in counts.items()}


@pytest.mark.parametrize(
    ("vcpus", "memtotal_mb", "expected"),
    [
        (2, 24 * 1024, {"backend": 2, "frontend": 2, "infrastructure": 1}),  # the bench machine
        (1, 512, {"backend": 1, "frontend": 1, "infrastructure": 1}),  # smallest VM
        (4, 1024, {"backend": 3, "frontend": 3, "infrastructure": 1}),  # memory caps at 1024/4/80 = 3
        (32, 128 * 1024, {"backend": 8, "frontend": 8, "infrastructure": 1}),  # at most 8
    ],
)
def test_worker_counts_follow_cores_and_memory(
    vcpus: int, memtotal_mb: int, expected: dict[str, int]
) -> None:
    assert workers_for(vcpus, memtotal_mb) == expected


def unit(**overrides: Any) -> str:
    variables: dict[str, Any] = {
        **{k: DEFAULTS[k] for k in ("app_gunicorn_worker_class", "app_gunicorn_threads")},
        "app_gunicorn_keepalive": DEFAULTS["app_gunicorn_keepalive"],
        "app_gunicorn_workers": {"backend": 2, "frontend": 2, "infrastructure": 1},
        "service": VARS["app_web_services"][0],
        "app_root": "/srv/barestack",
        "app_gunicorn_graceful_timeout": DEFAULTS["app_gunicorn_graceful_timeout"],
        "app_config_dir": "/etc/barestack",
        "app_service_environment": {"backend": {"BARESTACK_RUN_TIMEOUT": "300"}},
        "app_socket_dir": VARS["app_socket_dir"],
        "app_uses_unix_sockets": True,
        "app_private_address": "10.0.0.5",
        "app_tcp_ports": DEFAULTS["app_tcp_ports"],
        "app_tls_dir": "/etc/ssl/barestack",
    }
    return render("app", "barestack-web@.service.j2", **{**variables, **overrides})


def test_the_unit_runs_gthread_with_threads_keepalive_and_a_matching_pool() -> None:
    text = unit()
    assert "--workers 2 \\" in text
    assert "--worker-class gthread \\" in text and "--threads 4 \\" in text
    assert "--keep-alive 75 \\" in text
    assert "Environment=BARESTACK_DB_POOL_SIZE=4\n" in text


def test_each_colour_runs_its_own_release_on_its_own_socket_and_never_reloads() -> None:
    # Blue/green: the instance name (%i) is the colour; a deploy starts the idle one, never HUPs.
    text = unit()
    assert "--bind unix:/run/barestack/backend/%i.sock \\" in text
    assert "--chdir /srv/barestack/instances/backend@%i/services/backend \\" in text
    python = "/srv/barestack/instances/backend@%i/venvs/backend/_service/bin/python"
    assert f"ExecStart={python} -m gunicorn" in text
    assert "--graceful-timeout 10 \\" in text
    assert "ExecReload" not in text and "current" not in text


def test_gunicorn_speaks_tls_with_its_own_key_copy_when_nginx_is_elsewhere() -> None:
    text = unit(app_uses_unix_sockets=False)
    assert "--bind 10.0.0.5:8001 \\" in text
    assert "--certfile /etc/ssl/barestack/gunicorn-backend.crt \\" in text
    assert "--keyfile /etc/ssl/barestack/gunicorn-backend.key \\" in text
    # Nginx on this host: the unix socket only, no TLS.
    assert "--certfile" not in unit() and "--keyfile" not in unit()


def test_sync_workers_get_no_threads_and_one_pooled_connection() -> None:
    text = unit(app_gunicorn_worker_class="sync")
    assert "--worker-class sync \\" in text and "--threads" not in text
    assert "Environment=BARESTACK_DB_POOL_SIZE=1\n" in text


def test_gunicorn_keeps_connections_longer_than_nginx_reuses_them() -> None:
    nginx = (ROLES / "nginx" / "templates" / "barestack-site.conf.j2").read_text()
    assert "keepalive_timeout 60s;" in nginx
    assert int(DEFAULTS["app_gunicorn_keepalive"]) > 60


def test_each_request_is_logged_once_by_the_app_not_again_by_gunicorn() -> None:
    # barestack_common.request_log writes the request line; gunicorn's access log would repeat it.
    supervisor = (ROLES / "app" / "templates" / "supervisor-barestack.conf.j2").read_text()
    for text in (unit(), supervisor):
        assert "--access-logfile" not in text and "--access-logformat" not in text
        assert "--error-logfile -" in text


def test_with_nginx_elsewhere_no_unix_socket_meets_reuse_port() -> None:
    # gunicorn sets SO_REUSEPORT on every bind and a unix socket refuses it (EOPNOTSUPP): with the
    # shared TCP port, each colour's gate port comes from its drop-in instead of a socket.
    text = unit(app_uses_unix_sockets=False)
    assert "--bind unix:" not in text
    assert "--bind 10.0.0.5:8001 \\" in text and "--bind ${BARESTACK_GATE_BIND} \\" in text
    assert "--reuse-port \\" in text and "--certfile /etc/ssl/barestack/gunicorn-backend.crt \\" in text
    single_host = unit()
    assert "--reuse-port" not in single_host and "BARESTACK_GATE_BIND" not in single_host
