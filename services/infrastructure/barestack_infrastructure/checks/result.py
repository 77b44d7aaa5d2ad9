"""The outcome of one component check, as the page, /health and /metrics show it."""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from barestack_common.redact import redact


@dataclass(frozen=True)
class CheckResult:
    component: str
    ok: bool
    critical: bool
    summary: str  # a few words for the status column, e.g. "HTTP 200" or "ConnectionRefusedError"
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "critical": self.critical,
            "summary": self.summary,
            "details": self.details,
            "duration_ms": round(self.duration_s * 1000, 1),
        }


Probe = Callable[[], tuple[bool, str, dict[str, Any]]]


def run_check(component: str, critical: bool, probe: Probe, secrets: Iterable[str] = ()) -> CheckResult:
    """Run a probe, timing it; an exception is a failed check whose message carries no credentials."""
    started = time.perf_counter()
    try:
        ok, summary, details = probe()
    except Exception as error:  # every failure of a component is a result to show, not a crash
        message = redact(" ".join(str(error).split()), secrets)
        ok, summary, details = False, error.__class__.__name__, {"error": message}
    return CheckResult(component, ok, critical, summary, details, time.perf_counter() - started)
