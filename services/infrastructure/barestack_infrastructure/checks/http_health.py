"""Backend and frontend: ``GET <url>/health`` must answer 200."""

from typing import Any

from barestack_common import http_client


def probe_health(base_url: str, timeout_s: float) -> tuple[bool, str, dict[str, Any]]:
    response = http_client.request("GET", f"{base_url}/health", timeout_s)
    details: dict[str, Any] = {}
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        details["status"] = document.get("status")
        checks = document.get("checks")
        if isinstance(checks, dict):
            details["checks"] = {
                name: bool(check.get("ok")) for name, check in checks.items() if isinstance(check, dict)
            }
    return response.status == 200, f"HTTP {response.status}", details
