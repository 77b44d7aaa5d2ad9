"""The request part's baseline: a hello-world WSGI app on the backend's own gunicorn, behind Nginx.

The ceiling a route can reach on this machine is what the same gunicorn (same venv, user, sandbox,
environment, and the backend's own gunicorn config: worker class, workers, threads, keep-alive...)
does for an app that does nothing, through the same Nginx with the same upstream keepalive. The unit
is a verbatim copy of the barestack-backend template unit, started as the live colour's instance; a
drop-in swaps only the WSGI app and the socket, as gunicorn command-line options over the same
config. Nginx serves it on a port of its own (a server block in conf.d), so the site's config is
untouched. Everything lives under /run (gone at reboot) and is removed when the part ends.
"""

from __future__ import annotations

import shlex
import time
import urllib.error
import urllib.request

from barestack_bench.hosts import Host, HostCommandError

UNIT = "bench-hello"
# The backend's template unit (one instance per blue/green colour), copied as is: its instance is
# the live colour (the one the live link Nginx connects through points at), so %i names its paths.
SOURCE_UNIT = "/etc/systemd/system/barestack-backend@.service"
# The backend's gunicorn config (the app role's gunicorn-<service>.conf.py), which the unit runs.
GUNICORN_CONFIG = "/etc/barestack/gunicorn-backend.conf.py"
PYTHON = "/srv/barestack/instances/backend@%i/venvs/backend/_service/bin/python"
LIVE_LINK = "/etc/nginx/barestack-upstreams/backend.sock"
UNIT_PATH = f"/run/systemd/system/{UNIT}@.service"
DROP_IN = f"/run/systemd/system/{UNIT}@.service.d/hello.conf"
APP_DIR = "/run/bench-hello"
# In the backend's socket folder: the unit may write there, and Nginx's group may connect.
SOCKET = "/run/barestack/backend/bench-hello.sock"
NGINX_CONF = "/etc/nginx/conf.d/bench-hello.conf"
APP_SOURCE = '''\
"""Hello world: the least a WSGI app can do (the bench's baseline)."""

BODY = b'{"hello": "world"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
'''


def nginx_conf(port: int) -> str:
    """Nginx's side as the site has it for the backend: HTTP/1.1, upstream keepalive."""
    return (
        "# barestack bench: hello-world baseline (removed when the requests part ends)\n"
        "upstream bench_hello {\n"
        f"    server unix:{SOCKET};\n"
        "    keepalive 16;\n"
        "    keepalive_timeout 60s;\n"
        "}\n"
        "server {\n"
        f"    listen {port};\n"
        "    location / {\n"
        "        proxy_pass http://bench_hello/;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $host;\n"
        "    }\n"
        "}\n"
    )


def drop_in() -> str:
    """The copy's only change: gunicorn runs the backend's config with the hello app on its own
    socket (command-line options override the config's, so the bind and pythonpath are replaced)."""
    return (
        "# barestack bench: hello-world baseline (removed when the requests part ends)\n"
        "[Service]\n"
        f"SyslogIdentifier={UNIT}\n"
        "ExecStart=\n"
        f"ExecStart={PYTHON} -m gunicorn -c {GUNICORN_CONFIG} "
        f"--bind unix:{SOCKET} --pythonpath {APP_DIR} bench_hello:app\n"
    )


def setup_script(port: int) -> str:
    """Shell run on the machine: the app file, the unit copy and its drop-in, Nginx."""
    quoted_app = shlex.quote(APP_SOURCE)
    quoted_conf = shlex.quote(nginx_conf(port))
    return (
        "set -eu; "
        f"install -d -m 0755 {APP_DIR}; "
        f"printf '%s' {quoted_app} > {APP_DIR}/bench_hello.py; chmod 0644 {APP_DIR}/bench_hello.py; "
        # The baseline is only the backend's own gunicorn if the unit runs that config, on a socket.
        f"grep -qF -- ' -c {GUNICORN_CONFIG} ' {SOURCE_UNIT}; "
        f"grep -q '^bind = .*unix:' {GUNICORN_CONFIG}; "
        f'colour=$(basename "$(readlink {LIVE_LINK})" .sock); '
        'case "$colour" in blue|green) ;; *) echo "no live colour: $colour" >&2; exit 1;; esac; '
        f"install -m 0644 {SOURCE_UNIT} {UNIT_PATH}; "
        f"install -d -m 0755 {DROP_IN.rsplit('/', 1)[0]}; "
        f"printf '%s' {shlex.quote(drop_in())} > {DROP_IN}; "
        f'systemctl daemon-reload; systemctl start "{UNIT}@$colour.service"; '
        f"printf '%s' {quoted_conf} > {NGINX_CONF}; "
        "nginx -t -q; systemctl reload nginx"
    )


def teardown_script() -> str:
    return (
        f"rm -f {NGINX_CONF}; systemctl reload nginx || true; "
        f"systemctl stop '{UNIT}@*.service' || true; "
        f"rm -rf {UNIT_PATH} {DROP_IN.rsplit('/', 1)[0]} {SOCKET} {APP_DIR}; "
        "systemctl daemon-reload"
    )


def wait_until_serving(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200 and b"hello" in response.read():
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.5)
    raise HostCommandError(
        f"the hello-world baseline at {url} did not answer within {timeout_s:.0f} s: {last_error}"
    )


class HelloWorld:
    """Context manager: the baseline runs inside the ``with`` block only."""

    def __init__(self, host: Host, address: str, port: int) -> None:
        self._host = host
        self._port = port
        self.url = f"http://{address}:{port}/"

    def __enter__(self) -> HelloWorld:
        try:
            self._host.run(["bash", "-c", setup_script(self._port)], timeout=120)
            wait_until_serving(self.url)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        self._host.run(["bash", "-c", teardown_script()], timeout=120, check=False)
