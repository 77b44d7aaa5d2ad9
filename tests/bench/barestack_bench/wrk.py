"""Run Debian's wrk against a test machine and parse its summary.

Load may only go to our own test machines (10.213.0.0/24, testmachine's subnet) or to loopback:
anything else is refused before wrk starts.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ALLOWED_LOAD_NETWORKS = (ipaddress.ip_network("10.213.0.0/24"),)
# Sent with every request, so the machine's Nginx log tells the bench's requests from the
# services' own (the infrastructure dashboard and the health gate also go through Nginx).
USER_AGENT = "barestack-bench"
UNITS_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
LATENCY_PERCENTILE = re.compile(
    r"^\s*(?P<percentile>\d+(?:\.\d+)?)%\s+(?P<value>\d+(?:\.\d+)?)(?P<unit>us|ms|s|m|h)\s*$"
)
REQUESTS_LINE = re.compile(
    r"^\s*(?P<requests>\d+) requests in (?P<value>\d+(?:\.\d+)?)(?P<unit>us|ms|s|m|h),"
)
RPS_LINE = re.compile(r"^Requests/sec:\s+(?P<rps>\d+(?:\.\d+)?)")
NON_2XX_LINE = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(?P<count>\d+)")
SOCKET_ERRORS_LINE = re.compile(
    r"^\s*Socket errors: connect (?P<connect>\d+), read (?P<read>\d+), "
    r"write (?P<write>\d+), timeout (?P<timeout>\d+)"
)


class WrkError(RuntimeError):
    """wrk could not run, or printed no summary we can read."""


@dataclass(frozen=True)
class WrkSettings:
    threads: int = 2
    connections: int = 32
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.threads < 1 or self.connections < self.threads:
            raise ValueError(f"wrk needs 1 <= threads <= connections, got {self.threads}/{self.connections}")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    requests_per_s: float
    latency_ms: dict[float, float]
    non_2xx_3xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Requests that did not get a 2xx/3xx answer: error statuses plus every socket error."""
        return self.non_2xx_3xx + sum(self.socket_errors.values())

    def percentile_ms(self, percentile: float) -> float:
        if percentile not in self.latency_ms:
            raise WrkError(f"wrk printed no {percentile}% latency (run it with --latency)")
        return self.latency_ms[percentile]


def _to_ms(value: str, unit: str) -> float:
    return float(value) * UNITS_TO_MS[unit]


def parse_wrk_output(output: str) -> WrkResult:
    """The numbers of one wrk summary (wrk 4.x, with --latency)."""
    latency: dict[float, float] = {}
    requests: int | None = None
    duration_s: float | None = None
    rps: float | None = None
    non_2xx = 0
    socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    for line in output.splitlines():
        if match := LATENCY_PERCENTILE.match(line):
            latency[float(match["percentile"])] = _to_ms(match["value"], match["unit"])
        elif match := REQUESTS_LINE.match(line):
            requests = int(match["requests"])
            duration_s = _to_ms(match["value"], match["unit"]) / 1000.0
        elif match := RPS_LINE.match(line):
            rps = float(match["rps"])
        elif match := NON_2XX_LINE.match(line):
            non_2xx = int(match["count"])
        elif match := SOCKET_ERRORS_LINE.match(line):
            socket_errors = {name: int(value) for name, value in match.groupdict().items()}
    if requests is None or duration_s is None or rps is None:
        raise WrkError(f"no wrk summary in its output:\n{output.strip()[-2000:]}")
    return WrkResult(
        requests=requests,
        duration_s=duration_s,
        requests_per_s=rps,
        latency_ms=latency,
        non_2xx_3xx=non_2xx,
        socket_errors=socket_errors,
    )


def check_load_target(url: str) -> None:
    """Refuse any URL that is not http(s) to a test machine address or loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"load target must be an http(s) URL with an address, got {url!r}")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        raise ValueError(f"load target must be a literal IP address, not a name: {url!r}") from None
    if not (address.is_loopback or any(address in network for network in ALLOWED_LOAD_NETWORKS)):
        allowed = ", ".join(str(network) for network in ALLOWED_LOAD_NETWORKS)
        raise ValueError(f"refusing to load {address}: only loopback and test machines ({allowed})")


def wrk_argv(url: str, settings: WrkSettings, duration_s: float, script: Path | None = None) -> list[str]:
    check_load_target(url)
    binary = shutil.which("wrk")
    if binary is None:
        raise WrkError("wrk is not installed (Debian package wrk, listed in requirements/apt-controller.txt)")
    argv = [
        binary,
        f"--threads={settings.threads}",
        f"--connections={settings.connections}",
        f"--duration={max(1, round(duration_s))}s",
        f"--timeout={settings.timeout_s:g}s",
        f"--header=User-Agent: {USER_AGENT}",
        "--latency",
    ]
    if script is not None:
        argv.append(f"--script={script}")
    return [*argv, url]


def run_wrk(url: str, settings: WrkSettings, duration_s: float, script: Path | None = None) -> WrkResult:
    """Load ``url`` for a fixed duration."""
    argv = wrk_argv(url, settings, duration_s, script)
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited {completed.returncode}: {completed.stderr.strip() or completed.stdout.strip()}"
        )
    return parse_wrk_output(completed.stdout)


class BackgroundLoad:
    """wrk running until stopped (SIGINT makes wrk stop and print its summary), for load during a deploy."""

    # wrk needs a duration; this only bounds a load whose stop() was never reached.
    MAX_DURATION_S = 1800

    def __init__(self, url: str, settings: WrkSettings, script: Path | None = None) -> None:
        self._argv = wrk_argv(url, settings, self.MAX_DURATION_S, script)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        if self._process is not None:
            raise WrkError("this load is already running")
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def stop(self) -> WrkResult:
        if self._process is None:
            raise WrkError("this load was never started")
        process, self._process = self._process, None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise WrkError("wrk did not stop within 30 s of SIGINT") from None
        if process.returncode not in (0, -signal.SIGINT):
            raise WrkError(f"wrk exited {process.returncode}: {stderr.strip() or stdout.strip()}")
        return parse_wrk_output(stdout)

    def __enter__(self) -> BackgroundLoad:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        # stop() was not called (an error in between): end wrk, discard its numbers.
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.communicate()
        self._process = None
