"""The last hour of request rates, p95 latencies and module runs, sampled in the background into Redis.

Every ``sample_interval_s`` (10 s by default) a thread of each dashboard process wakes at the same
wall-clock boundary; one of them (``SET NX`` on the slot's key) takes the sample: it reads the
backend's and frontend's ``/metrics`` (their per-worker request histograms), the dashboard's own
counts in-process, and the runs that finished since the last sample from PostgreSQL (on the
PostgreSQL check's session). It turns the growth since the previous reading into one point:

- per service: requests per second, and the p95 latency from the histogram buckets' growth
  (``barestack_common.metrics.quantile``), each worker's growth taken on its own;
- runs finished per outcome (succeeded, failed, timeout), and their p50/p95/max duration.

The point goes into one sorted set (score: the slot's time), trimmed on every write to the last
``HISTORY_S`` and to at most one point per slot of that hour: a bounded store whatever happens.
The raw counters of the reading are kept beside it (``<key>:last``) for the next sample's growth.

Then every process reads the hour back into memory: the chart page renders from that copy, so a
page view forks nothing and calls nothing. Nothing here is read from logs.
"""

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from barestack_common import http_client
from barestack_common.metrics import Counts, parse, quantile, started_at
from barestack_common.redact import redact, secrets_in_url

from barestack_infrastructure.checks.postgres import PostgresProbe
from barestack_infrastructure.settings import Settings

HISTORY_S = 3600.0
SERVICES = ("backend", "frontend", "infrastructure")
OUTCOMES = ("succeeded", "failed", "timeout")
MAX_WORKERS_KEPT = 64  # per service, in the raw reading kept for the next sample
# Runs finished since the last sample, by outcome; the row with no status (the grouping set ()) has
# the durations of all of them. created_at bounds the scan to recent rows (its index); a run waits
# in the queue and runs far less than a day.
RUNS_SQL = """
SELECT status, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
       max(duration_ms)
  FROM barestack.runs
 WHERE finished_at > to_timestamp(%s) AND finished_at <= to_timestamp(%s)
   AND created_at > to_timestamp(%s) - interval '1 day'
   AND status IN ('succeeded', 'failed', 'timeout')
 GROUP BY GROUPING SETS ((status), ())
"""

log = logging.getLogger("barestack_infrastructure.sampler")

Workers = dict[str, Counts]


def service_point(
    now: Workers | None, before: Workers | None, dt_s: float | None, before_t: float | None = None
) -> dict[str, Any] | None:
    """Rate and p95 over one interval from two readings of a service's workers; None without both.

    Each worker's growth is taken against its own earlier reading: a worker gone since then adds
    nothing; a worker new since then (a restart, a deploy: it started after ``before_t``) counts
    from zero. A worker that was already running at ``before_t`` but not in that reading (a
    service whose /metrics shows only the worker that answered) has no base yet: it counts from
    the next reading on (the sampler carries each worker's last reading forward).
    """
    if now is None or before is None or not dt_s:
        return None
    growth = Counts.empty()
    for worker, counts in now.items():
        earlier = before.get(worker)
        if earlier is None and before_t is not None:
            started = started_at(worker)
            if started is None or started < before_t - 1:  # whole seconds: 1 s of slack
                continue
        growth = growth.plus(counts.minus(earlier))
    p95 = quantile(0.95, growth)
    return {
        "requests": growth.count,
        "rate": growth.count / dt_s,
        "p95_ms": None if p95 is None else round(p95 * 1000, 3),
    }


def _workers_from_json(document: Any) -> Workers | None:
    if not isinstance(document, dict) or not document:  # no earlier reading of any worker
        return None
    try:
        return {str(worker): Counts.from_json(counts) for worker, counts in document.items()}
    except (KeyError, TypeError, ValueError):
        return None


class Sampler:
    def __init__(
        self,
        settings: Settings,
        postgres: PostgresProbe,
        own_workers: Callable[[], Workers],
        history_s: float = HISTORY_S,
    ) -> None:
        self.settings = settings
        self.postgres = postgres
        self.own_workers = own_workers
        self.history_s = history_s
        self.interval_s = settings.sample_interval_s
        # One point per slot of the history, one more for the slot being written: the store's bound.
        self.max_points = math.ceil(history_s / self.interval_s) + 1
        # Samples older than this are no base for a rate: the sampler was down in between.
        self.max_gap_s = max(3 * self.interval_s, 60.0)
        self.key = settings.metrics_key
        self.secrets = secrets_in_url(settings.redis_url) + secrets_in_url(settings.database_url)
        timeout = settings.check_timeout_s
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout, decode_responses=True
        )
        self._lock = threading.Lock()
        self._points: list[dict[str, Any]] = []
        self._read_at: float | None = None
        self.problem: str | None = None  # the last sampling's failure, credentials taken out
        self.written = 0  # samples this process wrote (tests, diagnostics)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # --- what the page reads: memory only ----------------------------------------------------

    def current(self) -> tuple[list[dict[str, Any]], float | None]:
        """The hour's points as last read from Redis, and when they were read (wall clock)."""
        with self._lock:
            return list(self._points), self._read_at

    # --- one sample ----------------------------------------------------------------------------

    def _scrape(self, base_url: str) -> Workers | None:
        try:
            response = http_client.request(
                "GET", f"{base_url}/metrics", self.settings.check_timeout_s, headers={"Accept": "text/plain"}
            )
            if response.status != 200:
                raise ValueError(f"/metrics answered HTTP {response.status}")
            return parse(response.body.decode("utf-8", errors="replace"))
        except (http_client.HttpUnavailable, ValueError) as error:
            log.warning("sampling %s/metrics: %s", base_url, redact(str(error), self.secrets))
            return None

    def readings(self) -> dict[str, Workers | None]:
        """Every service's per-worker histograms now; None for a service that did not answer."""
        return {
            "backend": self._scrape(self.settings.backend_url),
            "frontend": self._scrape(self.settings.frontend_url),
            "infrastructure": self.own_workers(),
        }

    def runs(self, since: float, until: float) -> dict[str, Any] | None:
        """Runs finished in (since, until] by outcome, and their durations; None when PostgreSQL fails."""
        try:
            rows = self.postgres.fetch(RUNS_SQL, (since, until, since))
        except Exception as error:  # PostgreSQL down is a gap in the chart, not a crash
            log.warning("sampling runs: %s", redact(" ".join(str(error).split()), self.secrets))
            return None
        counts = dict.fromkeys(OUTCOMES, 0)
        durations = None
        for status, count, p50, p95, longest in rows:
            if status is None:
                if count:
                    durations = {"p50": float(p50), "p95": float(p95), "max": float(longest)}
            else:
                counts[status] = int(count)
        return {"outcomes": counts, "duration_ms": durations}

    def _last(self) -> dict[str, Any] | None:
        raw = self.redis.get(f"{self.key}:last")
        if raw is None:
            return None
        with contextlib.suppress(ValueError):
            document = json.loads(raw)
            if isinstance(document, dict) and isinstance(document.get("t"), int | float):
                return document
        return None

    def _carried(
        self, last: dict[str, Any] | None, readings: dict[str, Workers | None], now: float
    ) -> dict[str, dict[str, Any]]:
        """This reading's workers, and the earlier ones not in it (for at most the history)."""
        services: dict[str, dict[str, Any]] = {}
        earlier = (last or {}).get("services", {})
        for name in SERVICES:
            kept = {
                worker: entry
                for worker, entry in (earlier.get(name) or {}).items()
                if isinstance(entry, dict) and now - float(entry.get("seen", 0)) < self.history_s
            }
            for worker, counts in (readings.get(name) or {}).items():
                kept[worker] = {**counts.to_json(), "seen": now}
            # Bounded even when a crash loop makes a new worker every few seconds: the latest seen.
            latest = sorted(kept.items(), key=lambda item: float(item[1].get("seen", 0)), reverse=True)
            services[name] = dict(latest[:MAX_WORKERS_KEPT])
        return services

    def _write(self, now: float, slot: float) -> None:
        readings = self.readings()
        last = self._last()
        dt_s = now - last["t"] if last is not None else None
        if dt_s is not None and not 0 < dt_s <= self.max_gap_s:
            dt_s = None
        before: Mapping[str, Any] = (last or {}).get("services", {}) if dt_s else {}
        point: dict[str, Any] = {"t": slot, "dt": dt_s, "services": {}}
        for name in SERVICES:
            point["services"][name] = service_point(
                readings[name], _workers_from_json(before.get(name)), dt_s, last["t"] if last else None
            )
        point["runs"] = self.runs(last["t"] if dt_s and last else now - self.interval_s, now)
        raw = {"t": now, "services": self._carried(last, readings, now)}
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.key, {json.dumps(point, separators=(",", ":")): slot})
        pipe.zremrangebyscore(self.key, "-inf", f"({now - self.history_s}")
        pipe.zremrangebyrank(self.key, 0, -(self.max_points + 1))
        pipe.set(f"{self.key}:last", json.dumps(raw, separators=(",", ":")), ex=math.ceil(self.history_s))
        pipe.execute()
        self.written += 1

    def _read(self, now: float) -> None:
        points = []
        for member in self.redis.zrangebyscore(self.key, now - self.history_s, "+inf"):
            with contextlib.suppress(ValueError):
                point = json.loads(member)
                if isinstance(point, dict) and isinstance(point.get("t"), int | float):
                    points.append(point)
        with self._lock:
            self._points, self._read_at = points, now

    def sample_once(self, now: float | None = None) -> bool:
        """Take this slot's sample unless another process did, then read the hour back; True if written."""
        now = time.time() if now is None else now
        slot = math.floor(now / self.interval_s) * self.interval_s
        claimed = self.redis.set(
            f"{self.key}:slot:{int(slot * 1000)}",
            str(os.getpid()),
            nx=True,
            ex=math.ceil(self.interval_s * 3),
        )
        if claimed:
            self._write(now, slot)
        self._read(now)
        return bool(claimed)

    # --- the background thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s - time.time() % self.interval_s):
            try:
                self.sample_once()
                self.problem = None
            except Exception as error:  # Redis down: keep the last copy, try again next slot
                self.problem = (
                    f"{error.__class__.__name__}: {redact(' '.join(str(error).split()), self.secrets)}"
                )
                log.warning("sampling failed: %s", self.problem)

    def start(self) -> None:
        """Sample in a daemon thread from the next slot on (again in a forked child)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="barestack-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.check_timeout_s * 3 + 2)
        self.redis.close()
