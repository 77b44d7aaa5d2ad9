"""A second gunicorn of the backend on a TCP port: the baseline for the Nginx hop.

gunicorn serves Nginx over a unix socket that wrk cannot use. The honest baseline is the same app,
same venv, same user, same worker count and sandbox: a copy of the barestack-backend unit whose
only difference is ``--bind 0.0.0.0:<port>`` instead of the socket. It lives in /run (gone at
reboot) and is removed when the part ends.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from barestack_bench.hosts import Host, HostCommandError

UNIT = "bench-direct-backend"
SOURCE_UNIT = "/etc/systemd/system/barestack-backend.service"
UNIT_PATH = f"/run/systemd/system/{UNIT}.service"


def unit_script(port: int) -> str:
    """Shell run on the machine: copy the unit, swap the bind, start it (Type=notify: start waits)."""
    return (
        "set -eu; "
        f"grep -q -- '--bind unix:' {SOURCE_UNIT}; "
        f"sed -e 's#--bind unix:[^ ]*#--bind 0.0.0.0:{port}#' "
        f"-e 's#^SyslogIdentifier=.*#SyslogIdentifier={UNIT}#' "
        "-e '/^ExecReload=/d' "
        f"{SOURCE_UNIT} > {UNIT_PATH}; "
        f"grep -q -- '--bind 0.0.0.0:{port}' {UNIT_PATH}; "
        f"systemctl daemon-reload; systemctl start {UNIT}"
    )


def wait_until_serving(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.5)
    raise HostCommandError(
        f"the direct backend at {url} did not answer 200 within {timeout_s:.0f} s: {last_error}"
    )


class DirectBackend:
    """Context manager: the TCP gunicorn runs inside the ``with`` block only."""

    def __init__(self, host: Host, address: str, port: int) -> None:
        self._host = host
        self.base_url = f"http://{address}:{port}"
        self._port = port

    def __enter__(self) -> DirectBackend:
        try:
            self._host.run(["bash", "-c", unit_script(self._port)], timeout=120)
            wait_until_serving(f"{self.base_url}/health")
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        self._host.run(
            ["bash", "-c", f"systemctl stop {UNIT} || true; rm -f {UNIT_PATH}; systemctl daemon-reload"],
            timeout=120,
            check=False,
        )
