"""A throwaway nginx (Debian's) on a free loopback port, with stub_status at /nginx_status."""

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from svc_testkit.ports import free_port, wait_for_port
from svc_testkit.processes import terminate

NGINX = "/usr/sbin/nginx"

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
        location = /nginx_status {{ stub_status; }}
        location / {{ return 404; }}
    }}
}}
"""


def missing_binary() -> str | None:
    return None if Path(NGINX).exists() else f"{NGINX} not found (apt-get install nginx-light)"


@dataclass
class NginxServer:
    process: subprocess.Popen[bytes]
    base: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/nginx_status"

    @classmethod
    def start(cls) -> "NginxServer":
        base = Path(tempfile.mkdtemp(prefix="barestack-nginx-"))
        (base / "tmp").mkdir()
        port = free_port()
        config = base / "nginx.conf"
        config.write_text(CONFIG.format(base=base, port=port))
        process = subprocess.Popen(
            [NGINX, "-p", str(base), "-c", str(config), "-e", str(base / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(process, base, port)
        try:
            wait_for_port(port)
        except TimeoutError:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.base, ignore_errors=True)
