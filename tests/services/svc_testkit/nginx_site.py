"""The nginx role's own site, rendered locally: Debian's nginx on a free loopback port, temp prefix.

``roles/nginx/templates/barestack-site.conf.j2`` is rendered by Ansible's own templar
(``role_template.py``) from the role's ``defaults/main.yml`` plus a few local values (listen
address and port, this host as the only app host, the gunicorn sockets' directory), the way
Ansible renders it on a host: routes, prefixes, forwarded headers, upstream keepalive, rate limits
and security headers are the role's, not a copy.
The site goes into a minimal ``nginx.conf`` of our own (pid, logs and temp paths under the prefix),
so nothing needs root (as root, nginx's workers run as ``nobody``: the socket directory must be
reachable for them, which ``start`` ensures for the directories it creates).

Used by the local dev stack (``make dev``) and available to tests: ``NginxSite.start(socket_dir)``
proxies to ``<socket_dir>/<service>/gunicorn.sock`` for backend, frontend and infrastructure,
through the live links the role's upstreams name (``<socket_dir>/live/<service>.sock``; on a host
the app role's blue/green deploy points them at the live colour's socket).
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import yaml

from svc_testkit.nginx_server import NGINX, missing_binary  # noqa: F401 (callers use nginx_site.missing_binary)
from svc_testkit.ports import free_port, wait_for_port
from svc_testkit.processes import die_with_parent, stop_group
from svc_testkit.role_template import render_role_template
from svc_testkit.tls import make_tls_files

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "nginx"
SITE_TEMPLATE = ROLE / "templates" / "barestack-site.conf.j2"
ROLE_DEFAULTS = ROLE / "defaults" / "main.yml"
LOCAL_HOST = "localhost"
MANAGED = "rendered by tests/services/svc_testkit/nginx_site.py from roles/nginx (local use only)"

CONFIG = """\
worker_processes 1;
pid {base}/nginx.pid;
error_log stderr warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {access_log};
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    include {site};
{extra}}}
"""


def role_defaults() -> dict[str, Any]:
    with ROLE_DEFAULTS.open(encoding="utf-8") as handle:
        return dict(yaml.safe_load(handle))


def site_variables(listen_port: int, socket_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The role's defaults with the local values on top.

    Defaults that are Ansible expressions (``{{ groups['app'] ... }}``, facts) cannot be evaluated
    here; they are dropped unless overridden, and the templar fails on any use of one (undefined).
    """
    local: dict[str, Any] = {
        "ansible_managed": MANAGED,
        "inventory_hostname": LOCAL_HOST,
        "nginx_app_hosts": [LOCAL_HOST],
        "nginx_app_socket_dir": str(socket_dir),
        "nginx_app_upstream_dir": str(socket_dir / "live"),
        "nginx_listen_address": "127.0.0.1",
        "nginx_listen_port": listen_port,
        "nginx_tls": False,
        "hostvars": {},
        # The site task reads files/nginx/*.conf into this; a local stack has none.
        "nginx_snippets": {},
        "nginx_snippets_dir": "files/nginx",
        **overrides,
    }
    variables = {
        name: value
        for name, value in role_defaults().items()
        if not (isinstance(value, str) and "{{" in value)
    }
    variables.update(local)
    return variables


def link_live_sockets(variables: Mapping[str, Any]) -> None:
    """The live link of each routed service, to its gunicorn.sock (a site with local app sockets)."""
    if variables["inventory_hostname"] not in variables["nginx_app_hosts"]:
        return
    live = Path(variables["nginx_app_upstream_dir"])
    live.mkdir(exist_ok=True)
    for service in {route["service"] for route in variables["nginx_app_routes"]}:
        link = live / f"{service}.sock"
        if not link.is_symlink():
            link.symlink_to(Path(variables["nginx_app_socket_dir"]) / service / "gunicorn.sock")


def render_site(variables: Mapping[str, Any]) -> str:
    return render_role_template(ROLE, SITE_TEMPLATE.name, variables)


@dataclass
class NginxSite:
    process: subprocess.Popen[bytes]
    base: Path
    port: int
    cleanup: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        socket_dir: Path,
        port: int | None = None,
        output: int | IO[bytes] | None = subprocess.DEVNULL,
        access_log: bool = False,
        extra_conf: str = "",
        **overrides: Any,
    ) -> "NginxSite":
        """nginx in the foreground with the role's site; ``output`` takes its stdout and stderr."""
        base = Path(tempfile.mkdtemp(prefix="barestack-nginx-site-"))
        (base / "tmp").mkdir()
        port = port or free_port()
        site = base / "barestack-site.conf"
        variables = site_variables(port, socket_dir, **overrides)
        link_live_sockets(variables)
        site.write_text(render_site(variables), encoding="utf-8")
        config = base / "nginx.conf"
        config.write_text(
            CONFIG.format(
                base=base, site=site, access_log="/dev/stdout" if access_log else "off", extra=extra_conf
            ),
            encoding="utf-8",
        )
        if os.geteuid() == 0:
            # The master drops its workers to nobody, which must reach the temp paths and sockets.
            base.chmod(0o711)
        test_command = [NGINX, "-t", "-q", "-p", str(base), "-c", str(config)]
        check = subprocess.run(test_command, capture_output=True, text=True, check=False)
        if check.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(f"nginx rejects the rendered site: {check.stderr.strip()}")
        process = subprocess.Popen(
            [NGINX, "-p", str(base), "-c", str(config), "-e", "stderr"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        server = cls(process, base, port)
        try:
            wait_for_port(port)
            if process.poll() is not None:  # another server holds the port
                raise RuntimeError(f"nginx exited with status {process.returncode} (port {port} taken?)")
        except (TimeoutError, RuntimeError):
            server.stop()
            raise
        return server

    @classmethod
    def over_tcp(cls, backend_url: str, frontend_url: str, infrastructure_url: str) -> "NginxSite":
        """The role's site for services listening on loopback TCP ports (the test kit's live servers).

        Rendered as the role renders it for app hosts other than the web host: one upstream server per
        service at the app host's private address (here 127.0.0.1), over TLS verified against the
        project CA and the app name. The live servers speak plain HTTP, so a TLS end of our own (a
        server block in the same nginx, with a test CA's certificate, as gunicorn's --certfile on a
        host) stands in front of each and passes requests on untouched.
        """
        urls = {"backend": backend_url, "frontend": frontend_url, "infrastructure": infrastructure_url}
        ports = {service: urlsplit(url).port for service, url in urls.items()}
        if None in ports.values():
            raise ValueError(f"every service URL needs an explicit port: {ports}")
        app_name = "app.barestack.internal"
        tls_dir = Path(tempfile.mkdtemp(prefix="barestack-nginx-tls-"))
        tls = make_tls_files(tls_dir, dns_names=(app_name,))
        tls_ports = {service: free_port() for service in urls}
        extra_conf = "".join(
            f"""    server {{
        listen 127.0.0.1:{tls_ports[service]} ssl;
        ssl_certificate {tls.certificate};
        ssl_certificate_key {tls.key};
        location / {{
            proxy_pass {url};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
"""
            for service, url in urls.items()
        )
        site = cls.start(
            Path("/nonexistent"),
            extra_conf=extra_conf,
            nginx_app_hosts=["app"],
            hostvars={"app": {"barestack_host_address": "127.0.0.1"}},
            nginx_app_tcp_ports=tls_ports,
            nginx_app_tls_ca_file=str(tls.ca),
            nginx_app_tls_name=app_name,
        )
        site.cleanup.append(tls_dir)
        return site

    def stop(self) -> None:
        """Fast shutdown (SIGTERM), then SIGKILL to the whole process group if it lingers."""
        stop_group(self.process, timeout_s=5)
        for path in [self.base, *self.cleanup]:
            shutil.rmtree(path, ignore_errors=True)
