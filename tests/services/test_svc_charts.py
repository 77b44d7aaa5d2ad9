"""The dashboard's last hour as charts: request histograms, the sampler's bounded store, the SVG page.

Real services (werkzeug in threads, or gunicorn with several workers), real PostgreSQL and Redis;
the only thing made up is the clock handed to the sampler where a test needs an hour in seconds.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from barestack_common.metrics import BUCKETS_S, Counts, RequestMetrics, parse, quantile
from barestack_infrastructure.app import create_app
from barestack_infrastructure.charts import Series, line_chart, nice_step
from barestack_infrastructure.routes.charts import EXTENSION_KEY
from barestack_infrastructure.sampler import Sampler, service_point
from barestack_infrastructure.settings import Settings
from flask import Flask
from flask.testing import FlaskClient
from svc_testkit.accounts import OPERATOR, session_cookie
from svc_testkit.api_tokens import bearer
from svc_testkit.ports import free_port, wait_for_port
from svc_testkit.processes import terminate
from svc_testkit.redis_server import RedisServer
from svc_testkit.runs_db import wait_for_run
from svc_testkit.worker_process import worker_thread

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def histogram(**per_bound: int) -> Counts:
    """Counts by upper bound: histogram(b0_01=3, inf=1) is 3 requests in (0.005, 0.01], 1 over 10 s."""
    buckets = [0] * (len(BUCKETS_S) + 1)
    for name, count in per_bound.items():
        index = len(BUCKETS_S) if name == "inf" else BUCKETS_S.index(float(name[1:].replace("_", ".")))
        buckets[index] = count
    return Counts(tuple(buckets), 0.0)


# --- p95 from buckets --------------------------------------------------------------------------


def test_p95_from_buckets_on_known_inputs() -> None:
    # 100 requests in (0.01, 0.025]: the 95th is 95 % of the way through that bucket.
    assert quantile(0.95, histogram(b0_025=100)) == pytest.approx(0.01 + 0.015 * 0.95)
    # 90 fast, 10 in (0.5, 1.0]: rank 95 is the 5th of those 10, half-way through the bucket.
    assert quantile(0.95, histogram(b0_0025=90, b1_0=10)) == pytest.approx(0.75)
    # The first bucket interpolates from 0.
    assert quantile(0.5, histogram(b0_0025=10)) == pytest.approx(0.00125)
    # Slower than the largest bound: the histogram can only say "10 s or more".
    assert quantile(0.95, histogram(b0_01=1, inf=99)) == 10.0
    assert quantile(0.95, Counts.empty()) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        quantile(1.5, histogram(b0_01=1))


def test_observed_durations_land_in_their_buckets_and_survive_the_text_format() -> None:
    counts = RequestMetrics()
    for duration in [0.001] * 94 + [0.3] * 6:
        counts.observe(duration)
    own = counts.own()
    assert own.count == 100 and own.buckets[0] == 94 and own.buckets[BUCKETS_S.index(0.5)] == 6
    from barestack_common.metrics import render

    parsed = parse(render(counts.workers()))
    assert parsed == {counts.worker: Counts(own.buckets, pytest.approx(0.094 + 1.8))}
    # 94 under 2.5 ms, so rank 95 is the first of the six in (0.25, 0.5].
    assert quantile(0.95, parsed[counts.worker]) == pytest.approx(0.25 + 0.25 * (1 / 6))
    with pytest.raises(ValueError, match="not cumulative"):
        parse(render(counts.workers()).replace('le="+Inf"} 100', 'le="+Inf"} 1'))


def test_p95_and_rate_per_interval_come_from_each_workers_growth() -> None:
    before = {"1-100": histogram(b0_0025=1000), "2-100": histogram(b0_005=50), "gone-1": histogram(b0_01=7)}
    now = {
        # +20 requests in (0.25, 0.5] since the last reading; the old fast ones do not count again.
        "1-100": histogram(b0_0025=1000, b0_5=20),
        # Restarted under the same name with fewer requests: taken whole, never negative.
        "2-100": histogram(b0_005=5),
        # Started (at 200) after the last reading (at 150): counts from zero.
        "3-200": histogram(b0_0025=15),
        # Running since 120 but not in the last reading (another worker answered): no base yet.
        "4-120": histogram(b10_0=500),
    }
    point = service_point(now, before, 10.0, before_t=150.0)
    assert point is not None
    assert point["requests"] == 40 and point["rate"] == pytest.approx(4.0)
    # Growth: 15 <= 2.5 ms, 5 in (2.5, 5] ms, 20 in (250, 500] ms; rank 38 is the 18th of those 20.
    assert point["p95_ms"] == pytest.approx(250 + 250 * 18 / 20)
    assert service_point(now, None, 10.0) is None, "no earlier reading: no rate to tell"
    assert service_point(now, before, None) is None
    idle = service_point(before, before, 10.0, before_t=150.0)
    assert idle == {"requests": 0, "rate": 0.0, "p95_ms": None}


# --- the services' /metrics ----------------------------------------------------------------------


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def total_requests(metrics_text: str) -> int:
    return sum(counts.count for counts in parse(metrics_text).values())


def test_backend_and_frontend_count_their_requests_on_metrics(live_backend: str, live_frontend: str) -> None:
    for url in (live_backend, live_frontend):
        status, text = fetch(url + "/metrics")
        assert status == 200 and "# TYPE barestack_http_request_duration_seconds histogram" in text
        before = total_requests(text)
        for _ in range(7):
            assert fetch(url + "/health")[0] == 200
        status, text = fetch(url + "/metrics")
        # Seven more; the /metrics calls themselves are not counted.
        assert total_requests(text) == before + 7, url
    # Through Nginx (X-Forwarded-For, and X-Real-IP: who called Nginx) from elsewhere: not published.
    for headers in (
        {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"},
        {"X-Forwarded-For": "127.0.0.1, 203.0.113.9", "X-Real-IP": "203.0.113.9"},
        {"X-Forwarded-For": "127.0.0.1"},  # a proxy that does not say who called it
        {"X-Real-IP": "not an address"},
    ):
        status, text = fetch(live_backend + "/metrics", headers)
        assert status == 404 and "barestack_http" not in text, headers
    # Nginx called from its own host: the dashboard, which reaches the services through Nginx.
    for caller in ("127.0.0.1", "::1"):
        status, text = fetch(live_backend + "/metrics", {"X-Forwarded-For": caller, "X-Real-IP": caller})
        assert status == 200 and "barestack_http_request_duration_seconds_count" in text
    assert fetch(live_backend + "/metrics", method="POST")[0] == 405
    # The backend's token check does not apply to /metrics: the dashboard calls it without one.
    assert fetch(live_backend + "/runs")[0] == 401


def start_gunicorn(
    service: str, env: dict[str, str], workers: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "--chdir",
                str(SERVICES_DIR / service),
                "--pythonpath",
                str(SERVICES_DIR / "_lib"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                "2",
                f"barestack_{service}.wsgi:app",
            ],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=output,
            stderr=output,
        )
    wait_for_port(port, timeout_s=20)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(params=["shared-directory", "per-process"])
def gunicorn_stack(
    request: pytest.FixtureRequest, backend_env: dict[str, str], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """The backend (3 workers) under gunicorn, and a way to start the dashboard (sampling each second).

    shared-directory: as systemd runs them (STATE_DIRECTORY set); per-process: as supervisor does.
    """
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} not found")
    key = f"barestack:test-charts:{uuid.uuid4().hex[:10]}"
    state = {"STATE_DIRECTORY": str(tmp_path / "state")} if request.param == "shared-directory" else {}
    processes = []

    def start_dashboard() -> None:
        infra_env = {
            "BACKEND_URL": backend_url,
            "FRONTEND_URL": f"http://127.0.0.1:{free_port()}",  # not running: a gap, not a failure
            "DATABASE_URL": backend_env["DATABASE_URL"],
            "REDIS_URL": backend_env["REDIS_URL"],
            "NGINX_URL": f"http://127.0.0.1:{free_port()}/",
            "BARESTACK_SAMPLE_INTERVAL": "1",
            "BARESTACK_METRICS_KEY": key,
        }
        infra, _ = start_gunicorn("infrastructure", infra_env, 2, tmp_path / "infrastructure.log")
        processes.append(infra)

    try:
        backend, backend_url = start_gunicorn(
            "backend", {**backend_env, **state}, 3, tmp_path / "backend.log"
        )
        processes.append(backend)
        yield {
            "backend": backend_url,
            "start_dashboard": start_dashboard,
            "key": key,
            "state": tmp_path / "state",
            "mode": request.param,
        }
    finally:
        for process in processes:
            terminate(process, timeout_s=10)


def test_gunicorn_workers_are_counted_once_and_the_dashboard_samples_them(
    gunicorn_stack: dict[str, Any], redis_srv: RedisServer
) -> None:
    backend, shared = gunicorn_stack["backend"], gunicorn_stack["mode"] == "shared-directory"
    # New connections each time: the kernel hands them to whichever worker accepts first.
    for _ in range(60):
        assert fetch(backend + "/health")[0] == 200
    time.sleep(1.5)  # each worker copies its counts to the shared directory every second
    workers_seen: set[str] = set()
    for _ in range(10):
        status, text = fetch(backend + "/metrics")
        assert status == 200
        parsed = parse(text)
        workers_seen |= set(parsed)
        if shared:
            # Whichever worker answers, the answer holds every worker's requests.
            assert len(parsed) == 3 and sum(counts.count for counts in parsed.values()) == 60, parsed
        else:
            assert len(parsed) == 1, "without a shared directory a worker answers for itself"
    if shared:
        assert len(list((gunicorn_stack["state"] / "request-metrics").glob("*.json"))) == 3
    assert len(workers_seen) >= 2, "more than one worker should have answered"

    # The dashboard starts after those 60 requests: none of them may show up in its points.
    gunicorn_stack["start_dashboard"]()
    client = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    deadline = time.monotonic() + 20
    counted = made = 0
    while time.monotonic() < deadline:
        for _ in range(10):
            fetch(backend + "/health")
            made += 1
        time.sleep(1)
        points = [json.loads(member) for member in client.zrange(gunicorn_stack["key"], 0, -1)]
        counted = sum((p["services"]["backend"] or {}).get("requests", 0) for p in points)
        if len(points) >= 8 and counted >= 30:
            break
    client.close()
    assert counted >= 30, points
    # Never more than were made since: a worker seen for the first time (or by turns, when each
    # answers for itself) is not counted whole.
    assert counted <= made, (counted, made)
    slots = [p["t"] for p in points]
    assert len(slots) == len(set(slots)), "two dashboard workers wrote the same slot"
    assert all(p["services"]["frontend"] is None for p in points), "the frontend is not running"
    no_runs = {"outcomes": {"succeeded": 0, "failed": 0, "timeout": 0}, "duration_ms": None}
    assert all(p["runs"] == no_runs for p in points)


def test_metrics_may_be_allowed_to_the_app_hosts_behind_a_remote_nginx(backend_env: dict[str, str]) -> None:
    from barestack_backend.app import create_app as create_backend
    from barestack_backend.settings import Settings as BackendSettings
    from barestack_common import metrics
    from barestack_common.env import ConfigError

    app = create_backend(BackendSettings.from_env(backend_env))
    metrics.install(app, environ={"BARESTACK_METRICS_ALLOW_FROM": "10.0.0.5, fd00::5"})
    client = app.test_client()
    for caller, status in (("10.0.0.5", 200), ("fd00::5", 200), ("10.0.0.6", 404)):
        assert (
            client.get("/metrics", headers={"X-Forwarded-For": caller, "X-Real-IP": caller}).status_code
            == status
        )
    with pytest.raises(ConfigError, match="BARESTACK_METRICS_ALLOW_FROM must be IP addresses"):
        metrics.install(app, environ={"BARESTACK_METRICS_ALLOW_FROM": "10.0.0.5,app-host"})


# --- the bounded store ---------------------------------------------------------------------------


@pytest.fixture
def charts_env(infra_env: dict[str, str]) -> dict[str, str]:
    """The dashboard's environment with a store of its own in Redis, sampled every second."""
    return {
        **infra_env,
        "BARESTACK_SAMPLE_INTERVAL": "1",
        "BARESTACK_METRICS_KEY": f"barestack:test-charts:{uuid.uuid4().hex[:10]}",
    }


def make_sampler(app: Flask) -> Sampler:
    return app.extensions[EXTENSION_KEY]


def test_the_sampler_keeps_a_bounded_hour(infra_env: dict[str, str], redis_srv: RedisServer) -> None:
    env = {
        **infra_env,
        "BARESTACK_SAMPLE_INTERVAL": "10",
        "BARESTACK_METRICS_KEY": f"barestack:test-trim:{uuid.uuid4().hex[:8]}",
    }
    settings = Settings.from_env(env)
    app = create_app(settings)
    own = app.extensions["barestack_common.metrics"]
    # A history of 60 s at 10 s: at most 7 points (6 slots and the one being written).
    sampler = Sampler(settings, make_sampler(app).postgres, own.workers, history_s=60)
    assert sampler.max_points == 7
    start = (time.time() // 10) * 10 - 300
    for step in range(30):  # five minutes of samples, one per slot
        assert sampler.sample_once(start + step * 10 + 0.5) is True
    store = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    try:
        scores = [score for _, score in store.zrange(settings.metrics_key, 0, -1, withscores=True)]
        now = start + 29 * 10 + 0.5
        assert len(scores) <= sampler.max_points, f"the store grew to {len(scores)} points"
        assert min(scores) >= now - 60, "points older than the history were kept"
        assert max(scores) == start + 290
        # What the page reads is the same hour, in order.
        points, read_at = sampler.current()
        assert [p["t"] for p in points] == sorted(scores) and read_at == now
        # The points 10 s apart had a previous reading: every one after the first has a rate.
        assert all(p["dt"] == pytest.approx(10.0) for p in points)
        # Another process at the same moment finds the slot taken and writes nothing.
        other = Sampler(settings, sampler.postgres, own.workers, history_s=60)
        assert other.sample_once(now) is False
        assert store.zcard(settings.metrics_key) == len(scores)
        # The side keys expire: nothing outlives the hour.
        assert 0 < store.ttl(f"{settings.metrics_key}:last") <= 60
        slot_keys = store.keys(f"{settings.metrics_key}:slot:*")
        assert slot_keys and all(0 < store.ttl(k) <= 30 for k in slot_keys)
        other.stop()
    finally:
        store.close()
        sampler.stop()


# --- the chart page with real data ---------------------------------------------------------------


@pytest.fixture
def running_worker(backend_env: dict[str, str]) -> Iterator[None]:
    """A run worker in a thread; a run longer than 1 s times out."""
    with worker_thread(backend_env, "charts-test-worker", BARESTACK_RUN_TIMEOUT="1"):
        yield


def operator_client(app: Flask, env: dict[str, str]) -> FlaskClient:
    client = app.test_client()
    client.set_cookie("barestack_session", session_cookie(env, OPERATOR), path="/")
    return client


def start_run(backend: str, token: str, module: str, args: list[str]) -> str:
    request = urllib.request.Request(
        f"{backend}/modules/backend/{module}/runs",
        data=json.dumps({"args": args}).encode(),
        headers={**bearer(token), "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["id"]


def wait_for_next_slot(interval_s: float = 1.0) -> None:
    time.sleep(interval_s - time.time() % interval_s + 0.05)


def svg_of(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', html, re.DOTALL)
    assert match, f"no SVG {chart_id} in the page"
    return match.group(0)


def test_the_chart_page_draws_real_requests_and_runs(
    charts_env: dict[str, str],
    live_backend: str,
    live_frontend: str,
    api_token: str,
    backend_env: dict[str, str],
    running_worker: None,
) -> None:
    app = create_app(Settings.from_env(charts_env))
    sampler = make_sampler(app)
    client = operator_client(app, charts_env)
    try:
        empty = client.get("/charts").get_data(as_text=True)
        assert (
            empty.count('<text class="empty"') == 4 and "No samples yet" in empty and "<polyline" not in empty
        )
        assert '<title id="chart-request-rate-title">Requests per second, per service</title>' in empty

        wait_for_next_slot()
        sampler.sample_once()  # the baseline reading
        runs = [
            start_run(live_backend, api_token, "echo-001", []),
            start_run(live_backend, api_token, "fail-002", []),
            start_run(live_backend, api_token, "sleep-003", ["5"]),
        ]
        for _ in range(3):  # three intervals with traffic: lines, not lone dots
            wait_for_next_slot()
            for _ in range(20):
                assert fetch(live_backend + "/health")[0] == 200
            for _ in range(10):
                assert fetch(live_frontend + "/")[0] == 200
            for _ in range(5):
                assert client.get("/health").status_code == 200
            time.sleep(0.3)
            assert sampler.sample_once() is True
        for run_id in runs:
            wait_for_run(backend_env["DATABASE_URL"], run_id, lambda row: row["finished_at"] is not None)
        wait_for_next_slot()
        sampler.sample_once()

        points, _ = sampler.current()
        assert len(points) == 5
        for point in points[1:4]:
            services = point["services"]
            assert services["backend"]["requests"] >= 20  # ours, and the frontend's calls of the API
            assert services["frontend"]["requests"] >= 10
            assert services["infrastructure"]["requests"] >= 5
            assert services["backend"]["p95_ms"] > 0
        outcomes = {
            name: sum(p["runs"]["outcomes"][name] for p in points)
            for name in ("succeeded", "failed", "timeout")
        }
        assert outcomes == {"succeeded": 1, "failed": 1, "timeout": 1}

        page = client.get("/charts")
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        html = page.get_data(as_text=True)
        assert "No samples yet" not in html and "No module run finished" not in html
        assert re.search(
            r"Last sample [0-9]+ s ago \(20[0-9-]+T[0-9:]+\+00:00\); 5 samples, one every 1 s", html
        )
        rate = svg_of(html, "chart-request-rate")
        for service in ("backend", "frontend", "infrastructure"):
            group = re.search(rf'<g class="series" data-series="{service}".*?</g>', rate, re.DOTALL)
            assert group and "<polyline" in group.group(0), service
        assert re.search(r"backend: latest [0-9.]+ req/s", rate)
        assert re.search(r"<desc [^>]*>backend: latest [0-9.]+ ms", svg_of(html, "chart-latency-p95"))
        runs_chart = svg_of(html, "chart-runs")
        for outcome in ("succeeded", "failed", "timeout"):
            assert f"{outcome}: latest" in runs_chart and f'data-series="{outcome}"' in runs_chart
        durations = svg_of(html, "chart-run-durations")
        assert "longest: latest" in durations and ("<circle" in durations or "<polyline" in durations)
        assert "<script" not in html
    finally:
        sampler.stop()


def test_chart_page_views_call_nothing(
    charts_env: dict[str, str], redis_srv: RedisServer, live_backend: str
) -> None:
    app = create_app(Settings.from_env(charts_env))
    sampler = make_sampler(app)
    client = operator_client(app, charts_env)
    store = redis.Redis.from_url(redis_srv.url)
    try:
        sampler.sample_once()
        backend_before = total_requests(fetch(live_backend + "/metrics")[1])
        commands = int(store.info("stats")["total_commands_processed"])
        for _ in range(20):
            assert client.get("/charts").status_code == 200
        # Only our own INFO call reached Redis, and nothing reached the backend.
        assert int(store.info("stats")["total_commands_processed"]) == commands + 1
        assert total_requests(fetch(live_backend + "/metrics")[1]) == backend_before
    finally:
        store.close()
        sampler.stop()


def test_the_charts_are_for_operators(charts_env: dict[str, str]) -> None:
    app = create_app(Settings.from_env(charts_env))
    assert app.test_client().get("/charts").status_code == 401
    html = (
        operator_client(app, charts_env)
        .get("/", headers={"X-Forwarded-Prefix": "/infra"})
        .get_data(as_text=True)
    )
    assert 'href="/infra/charts"' in html
    make_sampler(app).stop()


def test_settings_of_the_sampler_are_checked(infra_env: dict[str, str]) -> None:
    from barestack_common.env import ConfigError

    with pytest.raises(ConfigError, match="BARESTACK_SAMPLE_INTERVAL must be between 1 and 300"):
        Settings.from_env({**infra_env, "BARESTACK_SAMPLE_INTERVAL": "0.1"})
    with pytest.raises(ConfigError, match="BARESTACK_METRICS_KEY may hold"):
        Settings.from_env({**infra_env, "BARESTACK_METRICS_KEY": "a key with spaces"})
    settings = Settings.from_env(infra_env)
    assert settings.sample_interval_s == 10.0 and settings.metrics_key == "barestack:infra:samples"


# --- the SVG renderer ------------------------------------------------------------------------------


def test_the_renderer_draws_axes_gaps_and_an_empty_state() -> None:
    assert [nice_step(v) for v in (0, 3, 7, 45, 0.8, 1234)] == [1.0, 1, 2, 20, 0.2, 500]
    start = 1_800_000_000.0  # 08:00 UTC
    points = [(start + 60 * i, float(i) if i not in (10, 11) else None) for i in range(60)]
    points[30] = (start + 1800, None)
    svg = line_chart(
        "c", "A <chart>", [Series("s&t", points, "#123456")], start, start + 3600, "req/s", "nothing"
    )
    assert svg.startswith('<svg class="chart" id="c"') and svg.endswith("</svg>")
    assert '<title id="c-title">A &lt;chart&gt;</title>' in svg
    assert 'data-series="s&amp;t"' in svg
    # Two gaps (10-11 and 30) break the line into three pieces.
    assert svg.count("<polyline") == 3
    for label in ("08:00", "08:10", "08:50", "09:00"):
        assert f">{label}</text>" in svg
    assert re.search(r">60</text>", svg), "the value axis goes up to a round number above the highest value"
    assert "s&amp;t: latest 59 req/s, highest 59 req/s." in svg
    empty = line_chart(
        "e", "Empty", [Series("s", [(start, None)], "#000")], start, start + 3600, "ms", "No data yet"
    )
    assert (
        "No data yet</text>" in empty
        and "<polyline" not in empty
        and '<title id="e-title">Empty</title>' in empty
    )
