"""gunicorn in the app role: worker counts derived from the host, and the one gunicorn config per
web service that the systemd unit and the supervisor program both run, loaded by gunicorn itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.config import Config

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
        (2, 24 * 1024, {"backend": 2, "frontend": 2, "infrastructure": 2}),  # the bench machine
        (1, 512, {"backend": 1, "frontend": 1, "infrastructure": 1}),  # smallest VM
        (4, 1024, {"backend": 3, "frontend": 3, "infrastructure": 2}),  # memory caps at 1024/4/80 = 3
        (32, 128 * 1024, {"backend": 8, "frontend": 8, "infrastructure": 2}),  # at most 8 (2)
    ],
)
def test_worker_counts_follow_cores_and_memory(
    vcpus: int, memtotal_mb: int, expected: dict[str, int]
) -> None:
    assert workers_for(vcpus, memtotal_mb) == expected


BACKEND = VARS["app_web_services"][0]


def variables(**overrides: Any) -> dict[str, Any]:
    """What a converge passes the app role's templates for the backend (Nginx on the host by default)."""
    values: dict[str, Any] = {
        **{k: DEFAULTS[k] for k in ("app_gunicorn_worker_class", "app_gunicorn_threads")},
        "app_gunicorn_keepalive": DEFAULTS["app_gunicorn_keepalive"],
        "app_gunicorn_workers": {"backend": 2, "frontend": 2, "infrastructure": 1},
        "service": BACKEND,
        "app_web_services": VARS["app_web_services"],
        "app_colours": VARS["app_colours"],
        "app_root": "/srv/barestack",
        "app_gunicorn_graceful_timeout": DEFAULTS["app_gunicorn_graceful_timeout"],
        "app_config_dir": "/etc/barestack",
        "app_service_environment": {"backend": {"BARESTACK_RUN_TIMEOUT": "300"}},
        "app_socket_dir": VARS["app_socket_dir"],
        "app_uses_unix_sockets": True,
        "app_private_address": "10.0.0.5",
        "app_tcp_ports": DEFAULTS["app_tcp_ports"],
        "app_gate_ports": {
            "backend@blue": 8101,
            "backend@green": 8201,
            "frontend@blue": 8102,
            "frontend@green": 8202,
            "infrastructure@blue": 8103,
            "infrastructure@green": 8203,
        },
        "app_tls_dir": "/etc/ssl/barestack",
        "app_with_env": VARS["app_with_env"],
        "app_current": "/srv/barestack/current",
        "app_worker_instances": 2,
        "app_worker_user": VARS["app_worker_user"],
        "app_run_timeout": 300,
        "app_slow_request_seconds": DEFAULTS["app_slow_request_seconds"],
    }
    return {**values, **overrides}


def unit(**overrides: Any) -> str:
    return render("app", "barestack-web@.service.j2", **variables(**overrides))


def supervisor(**overrides: Any) -> str:
    return render("app", "supervisor-barestack.conf.j2", **variables(**overrides))


def program(name: str, **overrides: Any) -> dict[str, str]:
    """One [program:...] section of the supervisor file, as key -> value."""
    section = supervisor(**overrides).split(f"[program:{name}]\n", 1)[1].split("\n[", 1)[0]
    lines = [line for line in section.splitlines() if "=" in line and not line.startswith(";")]
    return dict(line.split("=", 1) for line in lines)


def gunicorn_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, colour: str = "blue", **overrides: Any
) -> Config:
    """The backend's gunicorn config rendered for a host whose app_root is under tmp_path, then read by
    gunicorn's own loader with the command line the unit runs (``-c <file> <wsgi>``) and the
    environment the unit or program gives the colour."""
    app_root = tmp_path / "srv"
    path = tmp_path / "gunicorn-backend.conf.py"
    path.write_text(render("app", "gunicorn.conf.py.j2", **variables(app_root=str(app_root), **overrides)))
    # gunicorn changes into the colour's service folder once the config is read.
    (app_root / "instances" / f"backend@{colour}" / "services" / "backend").mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", str(path), BACKEND["wsgi"]])
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    monkeypatch.setenv("BARESTACK_COLOUR", colour)
    application = WSGIApplication()
    assert application.app_uri == BACKEND["wsgi"]
    return application.cfg


# --- the command lines: one gunicorn config, the same under both managers ----------------------


def test_the_unit_runs_the_services_gunicorn_config_with_its_colour() -> None:
    text = unit()
    python = "/srv/barestack/instances/backend@%i/venvs/backend/_service/bin/python"
    config = "/etc/barestack/gunicorn-backend.conf.py"
    assert f"ExecStart={python} -m gunicorn \\\n    -c {config} barestack_backend.wsgi:app\n" in text
    assert "Environment=BARESTACK_COLOUR=%i\n" in text
    assert "Environment=BARESTACK_DB_POOL_SIZE=4\n" in text
    # No gunicorn setting left on the command line: they are all in the config.
    assert "--" not in text.split("ExecStart=", 1)[1].split("\nKillMode", 1)[0]
    assert "ExecReload" not in text and "current" not in text


def test_supervisor_runs_the_same_config_and_passes_colour_and_gate_port() -> None:
    blue = program("barestack-backend-blue")
    python = "/srv/barestack/instances/backend@blue/venvs/backend/_service/bin/python"
    assert blue["command"].endswith(
        f" {python} -m gunicorn -c /etc/barestack/gunicorn-backend.conf.py barestack_backend.wsgi:app"
    )
    assert 'BARESTACK_COLOUR="blue"' in blue["environment"]
    assert 'BARESTACK_COLOUR="green"' in program("barestack-backend-green")["environment"]
    assert "BARESTACK_GATE_BIND" not in blue["environment"]
    tcp = program("barestack-backend-green", app_uses_unix_sockets=False)
    assert 'BARESTACK_GATE_BIND="127.0.0.1:8201"' in tcp["environment"]
    sync = program("barestack-backend-blue", app_gunicorn_worker_class="sync")
    assert 'BARESTACK_DB_POOL_SIZE="1"' in sync["environment"]


def test_both_managers_give_every_web_service_the_slow_request_threshold() -> None:
    # The apps log only server errors and requests this slow; Nginx's access log has the rest.
    for service in VARS["app_web_services"]:
        assert "Environment=BARESTACK_SLOW_REQUEST_SECONDS=0.5\n" in unit(service=service)
        assert "Environment=BARESTACK_SLOW_REQUEST_SECONDS=0\n" in unit(
            service=service, app_slow_request_seconds=0
        )
        name = f"barestack-{service['name']}-blue"
        assert 'BARESTACK_SLOW_REQUEST_SECONDS="0.5"' in program(name)["environment"]
        assert (
            'BARESTACK_SLOW_REQUEST_SECONDS="2"' in program(name, app_slow_request_seconds=2)["environment"]
        )


# --- the config itself, read by gunicorn ----------------------------------------------------------


def test_unix_socket_layout_as_gunicorn_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = gunicorn_config(tmp_path, monkeypatch, colour="green")
    instance = tmp_path / "srv" / "instances" / "backend@green"
    assert cfg.bind == ["unix:/run/barestack/backend/green.sock"]
    assert cfg.chdir == str(instance / "services" / "backend")
    assert cfg.pythonpath == str(instance / "services" / "_lib")
    assert cfg.workers == 2
    assert cfg.worker_class_str == "gthread" and cfg.threads == 4
    assert cfg.keepalive == 75
    assert cfg.graceful_timeout == 10
    assert cfg.umask == 0o007
    assert cfg.settings["control_socket_disable"].get() is True
    # Errors to stderr (the journal); no access log: the app logs each request once.
    assert cfg.errorlog == "-" and cfg.accesslog is None
    assert cfg.reuse_port is False and not cfg.is_ssl and cfg.certfile is None


def test_tcp_tls_layout_as_gunicorn_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nginx elsewhere: the shared port (SO_REUSEPORT, so no unix socket) and the colour's gate port.
    monkeypatch.setenv("BARESTACK_GATE_BIND", "127.0.0.1:8101")
    cfg = gunicorn_config(tmp_path, monkeypatch, app_uses_unix_sockets=False)
    assert cfg.bind == ["10.0.0.5:8001", "127.0.0.1:8101"]
    assert cfg.reuse_port is True
    assert cfg.certfile == "/etc/ssl/barestack/gunicorn-backend.crt"
    assert cfg.keyfile == "/etc/ssl/barestack/gunicorn-backend.key"
    assert cfg.is_ssl
    assert cfg.workers == 2 and cfg.keepalive == 75 and cfg.accesslog is None


def test_sync_workers_get_no_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = gunicorn_config(tmp_path, monkeypatch, app_gunicorn_worker_class="sync")
    assert cfg.worker_class_str == "sync" and cfg.threads == 1


@pytest.mark.parametrize("colour", ["", "purple"])
def test_a_missing_or_unknown_colour_stops_gunicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], colour: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        gunicorn_config(tmp_path, monkeypatch, colour=colour)
    assert stopped.value.code == 1
    assert f"BARESTACK_COLOUR must be one of ['blue', 'green'], not {colour!r}" in capsys.readouterr().err


def test_a_missing_gate_port_stops_gunicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BARESTACK_GATE_BIND", raising=False)
    with pytest.raises(SystemExit):
        gunicorn_config(tmp_path, monkeypatch, app_uses_unix_sockets=False)
    assert "BARESTACK_GATE_BIND (127.0.0.1:<the colour's gate port>) is not set" in capsys.readouterr().err


def test_gunicorn_keeps_connections_longer_than_nginx_reuses_them() -> None:
    nginx = (ROLES / "nginx" / "templates" / "barestack-site.conf.j2").read_text()
    assert "keepalive_timeout 60s;" in nginx
    assert int(DEFAULTS["app_gunicorn_keepalive"]) > 60
