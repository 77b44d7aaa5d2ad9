"""Request counts and durations of a web service, as a Prometheus histogram on ``GET /metrics``.

Each worker process counts the requests it serves: how many, their summed duration, and how many
took up to each of a fixed set of durations (``BUCKETS_S``), so a reader can tell a p95 from the
bucket counts' growth between two readings (``quantile``). Counting is a few additions under a
lock per request; nothing is written on the request path.

gunicorn runs several worker processes per service, and a caller of ``/metrics`` reaches one of
them. So each worker copies its counts every second (only when they changed, and at least once a
minute to show it lives; the first time as it starts) into a file of its own in a directory the
workers share, and ``/metrics`` answers with every worker's counts, one series per worker (label
``worker``: pid and start time). A reader takes each worker's growth on its own: a worker that
restarts is a new series starting at zero, never a counter going backwards. The directory is
``BARESTACK_METRICS_DIR``, else ``$STATE_DIRECTORY/request-metrics`` (systemd sets STATE_DIRECTORY
from the unit's StateDirectory=). With neither (supervisor), each process answers for itself
alone: a reader then sees one worker per call and carries the others' last counts forward. Files
of workers gone for ``STALE_AFTER_S`` are deleted.

``/metrics`` is answered before the app sees the request (so the backend's token check, the
request log and the counts leave it out), and not to the public: a request that came through
Nginx (it sets X-Forwarded-For, and X-Real-IP to the address it was called from, whatever the
client sent) is answered only when Nginx was called from its own host (loopback: the dashboard,
which reaches the services through Nginx) or from an address in ``BARESTACK_METRICS_ALLOW_FROM``
(comma-separated: the app hosts' addresses when Nginx runs elsewhere); anyone else gets a 404. A
caller without those headers reached gunicorn directly, from the app's own network.

Standard library only: a WSGI middleware, installed by the app factories.
"""

import bisect
import contextlib
import ipaddress
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barestack_common.env import ConfigError

# Upper bounds in seconds; a last bucket (+Inf) takes everything slower.
BUCKETS_S: tuple[float, ...] = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HISTOGRAM = "barestack_http_request_duration_seconds"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"
# The WSGI environ key under which the middleware leaves when (time.perf_counter) a request reached it.
STARTED_KEY = "barestack.request_started"
DUMP_INTERVAL_S = 1.0
TOUCH_INTERVAL_S = 60.0  # a live worker rewrites its file at least this often, changed or not
STALE_AFTER_S = 600.0  # a file untouched this long belongs to a worker that is gone

log = logging.getLogger("barestack_common.metrics")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Counts:
    """One worker's histogram: per-bucket (not cumulative) counts, the last one +Inf; sum in seconds."""

    buckets: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return sum(self.buckets)

    @classmethod
    def empty(cls) -> "Counts":
        return cls((0,) * (len(BUCKETS_S) + 1), 0.0)

    def minus(self, earlier: "Counts | None") -> "Counts":
        """The growth since ``earlier``; all of it when there is no earlier reading or it went backwards."""
        if earlier is None or len(earlier.buckets) != len(self.buckets):
            return self
        growth = tuple(now - before for now, before in zip(self.buckets, earlier.buckets, strict=True))
        if any(step < 0 for step in growth):  # not the same worker's counts after all: take them whole
            return self
        return Counts(growth, max(0.0, self.sum_s - earlier.sum_s))

    def plus(self, other: "Counts") -> "Counts":
        return Counts(
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)), self.sum_s + other.sum_s
        )

    def to_json(self) -> dict[str, Any]:
        return {"buckets": list(self.buckets), "sum_s": round(self.sum_s, 6)}

    @classmethod
    def from_json(cls, document: Any) -> "Counts":
        buckets = document["buckets"]
        if not isinstance(buckets, list) or len(buckets) != len(BUCKETS_S) + 1:
            raise ValueError("a histogram needs one count per bucket")
        return cls(tuple(int(n) for n in buckets), float(document["sum_s"]))


def started_at(worker: str) -> float | None:
    """When a worker (``<pid>-<unix time>``) started counting; None for a name of another shape."""
    _, _, started = worker.rpartition("-")
    return float(started) if started.isdigit() else None


def quantile(q: float, counts: Counts) -> float | None:
    """The ``q`` quantile (0 < q < 1) in seconds of the requests ``counts`` holds; None without any.

    As Prometheus' histogram_quantile: find the bucket holding the rank q x count and interpolate
    linearly inside it (from 0 for the first bucket). A rank in the +Inf bucket gives the largest
    finite bound: the histogram cannot tell more than "slower than that".
    """
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    total = counts.count
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, in_bucket in enumerate(counts.buckets):
        if in_bucket and seen + in_bucket >= rank:
            if index == len(BUCKETS_S):
                return BUCKETS_S[-1]
            lower = BUCKETS_S[index - 1] if index else 0.0
            upper = BUCKETS_S[index]
            return lower + (upper - lower) * (rank - seen) / in_bucket
        seen += in_bucket
    return BUCKETS_S[-1]


def _directory_from_env(environ: Mapping[str, str]) -> Path | None:
    explicit = environ.get("BARESTACK_METRICS_DIR", "").strip()
    if explicit:
        return Path(explicit)
    state = environ.get("STATE_DIRECTORY", "").strip()
    if state:
        return Path(state.split(":")[0]) / "request-metrics"
    return None


class RequestMetrics:
    """This process's counts, and every sibling worker's from the shared directory when there is one."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._buckets = [0] * (len(BUCKETS_S) + 1)
        self._sum_s = 0.0
        self._changes = 0
        self._pid = -1
        self.worker = ""
        self._dumper: threading.Thread | None = None
        self._forked()

    def _forked(self) -> None:
        # Called with the lock held, or before any thread: a new process is a new worker, from zero.
        self._pid = os.getpid()
        self.worker = f"{self._pid}-{int(time.time())}"
        self._buckets = [0] * (len(BUCKETS_S) + 1)
        self._sum_s = 0.0
        self._changes = 0
        self._dumper = None
        if self.directory is not None:
            # From the start, so a worker shows up (at zero) before its first request is counted.
            self._dumper = threading.Thread(target=self._dump_loop, name="barestack-metrics", daemon=True)
            self._dumper.start()

    def observe(self, duration_s: float) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
            self._buckets[bisect.bisect_left(BUCKETS_S, duration_s)] += 1
            self._sum_s += duration_s
            self._changes += 1

    def own(self) -> Counts:
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
            return Counts(tuple(self._buckets), self._sum_s)

    # --- the shared directory -------------------------------------------------------------------

    def _write(self, counts: Counts) -> None:
        assert self.directory is not None
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(counts.to_json(), handle)
            os.replace(temporary, self.directory / f"{self.worker}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _dump_loop(self) -> None:
        pid, written_changes, written_at = os.getpid(), -1, 0.0
        while pid == os.getpid():
            with self._lock:
                changes = self._changes
                counts = Counts(tuple(self._buckets), self._sum_s)
            pause = DUMP_INTERVAL_S
            if changes != written_changes or time.monotonic() - written_at >= TOUCH_INTERVAL_S:
                try:
                    self._write(counts)
                    self._remove_stale()
                    written_changes, written_at = changes, time.monotonic()
                except OSError as error:
                    log.warning("cannot write request metrics to %s: %s", self.directory, error.strerror)
                    pause = TOUCH_INTERVAL_S  # a directory we cannot write: say so once a minute, no more
            time.sleep(pause)

    def _remove_stale(self) -> None:
        assert self.directory is not None
        now = time.time()
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_AFTER_S:
                    path.unlink()

    def workers(self) -> dict[str, Counts]:
        """Every worker's counts: this one's as of now, its siblings' as of their last copy."""
        own = self.own()
        found: dict[str, Counts] = {}
        if self.directory is not None:
            with contextlib.suppress(OSError):
                for path in sorted(self.directory.glob("*.json")):
                    if path.name.startswith("."):  # a copy being written
                        continue
                    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                        found[path.stem] = Counts.from_json(json.loads(path.read_text()))
        found[self.worker] = own
        return found


# --- the text format ----------------------------------------------------------------------------


def _bound(value: float) -> str:
    return repr(value) if value != int(value) else f"{value:.1f}"


def render(workers: Mapping[str, Counts]) -> str:
    """The histogram family in Prometheus' text format, one series per worker."""
    lines = [
        f"# HELP {HISTOGRAM} Time from a request reaching the app to its response, per worker process.",
        f"# TYPE {HISTOGRAM} histogram",
    ]
    for worker, counts in sorted(workers.items()):
        cumulative = 0
        for bound, in_bucket in zip((*BUCKETS_S, None), counts.buckets, strict=True):
            cumulative += in_bucket
            le = "+Inf" if bound is None else _bound(bound)
            lines.append(f'{HISTOGRAM}_bucket{{worker="{worker}",le="{le}"}} {cumulative}')
        lines.append(f'{HISTOGRAM}_sum{{worker="{worker}"}} {counts.sum_s:.6f}')
        lines.append(f'{HISTOGRAM}_count{{worker="{worker}"}} {counts.count}')
    return "\n".join(lines) + "\n"


_SAMPLE = re.compile(
    rf'^{HISTOGRAM}_(bucket|sum|count)\{{worker="([0-9A-Za-z._-]+)"(?:,le="([^"]+)")?\}} ([0-9.eE+-]+)$'
)


def parse(text: str) -> dict[str, Counts]:
    """The per-worker histograms in a /metrics answer (other families are skipped)."""
    cumulative: dict[str, dict[str, float]] = {}
    sums: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match:
            continue
        kind, worker, le, value = match.groups()
        if kind == "bucket" and le is not None:
            cumulative.setdefault(worker, {})[le] = float(value)
        elif kind == "sum":
            sums[worker] = float(value)
    result: dict[str, Counts] = {}
    labels = [_bound(bound) for bound in BUCKETS_S] + ["+Inf"]
    for worker, by_le in cumulative.items():
        if set(by_le) != set(labels):
            raise ValueError(f"worker {worker}: the buckets are not {', '.join(labels)}")
        running = [int(by_le[label]) for label in labels]
        per_bucket = tuple(now - before for now, before in zip(running, [0, *running[:-1]], strict=True))
        if any(n < 0 for n in per_bucket):
            raise ValueError(f"worker {worker}: bucket counts are not cumulative")
        result[worker] = Counts(per_bucket, sums.get(worker, 0.0))
    return result


# --- the WSGI side ------------------------------------------------------------------------------


def _allowed_from(environ: Mapping[str, str]) -> frozenset[str]:
    allowed = set()
    for raw in environ.get("BARESTACK_METRICS_ALLOW_FROM", "").split(","):
        if raw.strip():
            try:
                allowed.add(str(ipaddress.ip_address(raw.strip())))
            except ValueError:
                raise ConfigError(
                    "environment variable BARESTACK_METRICS_ALLOW_FROM must be IP addresses, comma-separated"
                ) from None
    return frozenset(allowed)


def _may_read(environ: Mapping[str, Any], allowed: frozenset[str]) -> bool:
    """A direct caller, or one Nginx says called it from its own host or an allowed address."""
    if "HTTP_X_FORWARDED_FOR" not in environ and "HTTP_X_REAL_IP" not in environ:
        return True
    try:
        client = ipaddress.ip_address(str(environ.get("HTTP_X_REAL_IP", "")).strip())
    except ValueError:
        return False
    return client.is_loopback or str(client) in allowed


class MetricsMiddleware:
    """Times every request of the wrapped app; answers ``GET /metrics`` itself when ``serve`` is set."""

    def __init__(
        self, app: WsgiApp, metrics: RequestMetrics, serve: bool, allowed: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.serve = serve
        self.allowed = allowed

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.serve and environ.get("PATH_INFO") == METRICS_PATH:
            return self._answer(environ, start_response)
        started = time.perf_counter()
        environ[STARTED_KEY] = started  # request_log's clock too: one reading, no hook of its own
        try:
            return self.app(environ, start_response)
        finally:
            self.metrics.observe(time.perf_counter() - started)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if not _may_read(environ, self.allowed):  # through Nginx from elsewhere: not for the public
            status, body = "404 NOT FOUND", b"404 Not Found\n"
        elif environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, body = "405 METHOD NOT ALLOWED", b"405 Method Not Allowed\n"
        else:
            status, body = "200 OK", render(self.metrics.workers()).encode()
        content_type = CONTENT_TYPE if status.startswith("200") else "text/plain; charset=utf-8"
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(status, [*headers, ("Cache-Control", "no-store")])
        yield body if environ.get("REQUEST_METHOD") != "HEAD" else b""


EXTENSION_KEY = "barestack_common.metrics"


def install(app: Any, serve: bool = True, environ: Mapping[str, str] | None = None) -> RequestMetrics:
    """Count ``app``'s (a Flask app's) requests; with ``serve``, answer GET /metrics (not to the public).

    The dashboard passes ``serve=False``: its /metrics is its own page (operators only), which
    appends these lines.
    """
    environ = os.environ if environ is None else environ
    metrics = RequestMetrics(_directory_from_env(environ))
    app.wsgi_app = MetricsMiddleware(app.wsgi_app, metrics, serve, _allowed_from(environ))
    app.extensions[EXTENSION_KEY] = metrics
    return metrics
