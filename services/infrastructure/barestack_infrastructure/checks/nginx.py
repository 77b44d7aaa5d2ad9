"""Nginx: its stub_status page when configured, else any HTTP answer on its address."""

import re
from typing import Any

from barestack_common import http_client

_ACTIVE = re.compile(r"Active connections:\s*(\d+)")
# stub_status' third line holds three counters: accepts handled requests.
_COUNTERS = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", re.MULTILINE)


def parse_stub_status(text: str) -> dict[str, int]:
    active, counters = _ACTIVE.search(text), _COUNTERS.search(text)
    if not active or not counters:
        raise ValueError("not an nginx stub_status page")
    return {
        "active_connections": int(active.group(1)),
        "accepted_connections": int(counters.group(1)),
        "handled_connections": int(counters.group(2)),
        "requests": int(counters.group(3)),
    }


def probe_nginx(status_url: str | None, url: str, timeout_s: float) -> tuple[bool, str, dict[str, Any]]:
    if status_url:
        response = http_client.request("GET", status_url, timeout_s, headers={"Accept": "text/plain"})
        if response.status != 200:
            return False, f"status page HTTP {response.status}", {}
        return True, "up", parse_stub_status(response.body.decode("utf-8", errors="replace"))
    response = http_client.request("GET", url, timeout_s, headers={"Accept": "text/html"})
    # Any HTTP status counts: nginx answered, whatever the upstreams behind it do.
    return True, f"answers (HTTP {response.status})", {"server": response.headers.get("server", "")}
