"""A throwaway nginx (Debian's) in front of the services, routed as the nginx role routes them.

``/`` goes to the frontend, ``/infra/`` to the dashboard with the prefix stripped and
``X-Forwarded-Prefix: /infra``, ``/api/`` to the backend: one origin, as a browser sees the site,
so the session cookie set at ``/login`` has to reach ``/infra/`` on its own merits.
"""

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from svc_testkit.nginx_server import NGINX
from svc_testkit.ports import free_port, wait_for_port

LOCATION = """
    location {path} {{
        proxy_pass {upstream}/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-Prefix "{prefix}";
    }}
"""

CONFIG = """
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
daemon off;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_tokens off;
        proxy_redirect off;
        location = /infra {{ return 301 /infra/$is_args$args; }}
        location = /api {{ return 301 /api/$is_args$args; }}
{locations}
    }}
}}
"""


@dataclass
class NginxProxy:
    process: subprocess.Popen[bytes]
    base: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, frontend_url: str, dashboard_url: str, backend_url: str) -> "NginxProxy":
        base = Path(tempfile.mkdtemp(prefix="barestack-nginx-proxy-"))
        (base / "tmp").mkdir()
        port = free_port()
        routes = (
            ("/api/", backend_url, "/api"),
            ("/infra/", dashboard_url, "/infra"),
            ("/", frontend_url, ""),
        )
        locations = "".join(
            LOCATION.format(path=path, upstream=upstream.rstrip("/"), prefix=prefix)
            for path, upstream, prefix in routes
        )
        config = base / "nginx.conf"
        config.write_text(CONFIG.format(base=base, port=port, locations=locations))
        process = subprocess.Popen(
            [NGINX, "-p", str(base), "-c", str(config), "-e", str(base / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proxy = cls(process, base, port)
        try:
            wait_for_port(port)
        except TimeoutError:
            proxy.stop()
            raise
        return proxy

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
