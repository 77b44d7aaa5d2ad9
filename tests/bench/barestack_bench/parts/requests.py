"""Part 4: the request path. Throughput and latency through Nginx against gunicorn directly.

Both are loaded by wrk on the controller with the same settings, over the same veth to the same
machine: Nginx on port 80 (its unix-socket upstream to the backend's gunicorn), and a second
gunicorn of the same app, venv, user, worker count and sandbox bound to a TCP port.
"""

from __future__ import annotations

import json
import urllib.request

from barestack_bench.direct_backend import DirectBackend
from barestack_bench.results import Comparison, Figure, PartResult, Target
from barestack_bench.session import Session
from barestack_bench.stats import overhead_percent
from barestack_bench.wrk import WrkResult, run_wrk

TITLE = "Request path: Nginx against gunicorn directly"
# endpoint name -> (path through Nginx, path on gunicorn)
ENDPOINTS = {"health": ("/api/health", "/health"), "modules": ("/api/modules", "/modules")}
ROUTES = ("nginx", "direct")
NGINX_OVERHEAD_GOAL_PERCENT = 15.0


def _same_app(nginx_url: str, direct_url: str) -> None:
    """Both routes must serve the same backend: /modules lists the same modules."""
    counts = []
    for url in (nginx_url, direct_url):
        with urllib.request.urlopen(url, timeout=10) as response:
            counts.append(json.load(response)["count"])
    if counts[0] != counts[1]:
        raise RuntimeError(f"Nginx and the direct gunicorn list different modules: {counts}")


def run(session: Session) -> PartResult:
    result = PartResult(name="requests", title=TITLE)
    settings = session.settings
    stack = session.converged_stack()
    load = settings.request_load
    samples: dict[tuple[str, str], list[WrkResult]] = {
        (endpoint, route): [] for endpoint in ENDPOINTS for route in ROUTES
    }
    with DirectBackend(stack.machine, stack.address, settings.direct_port) as direct:
        urls = {
            (endpoint, "nginx"): f"http://{stack.address}{paths[0]}" for endpoint, paths in ENDPOINTS.items()
        } | {(endpoint, "direct"): f"{direct.base_url}{paths[1]}" for endpoint, paths in ENDPOINTS.items()}
        _same_app(urls[("modules", "nginx")], urls[("modules", "direct")])
        for url in urls.values():
            run_wrk(url, load, settings.request_warmup_s)
        for iteration in range(settings.iterations):
            for endpoint in ENDPOINTS:
                # Alternate which route goes first, so drift in the machine's load favours neither.
                order = ROUTES if iteration % 2 == 0 else tuple(reversed(ROUTES))
                for route in order:
                    measured = run_wrk(urls[(endpoint, route)], load, settings.request_duration_s)
                    samples[(endpoint, route)].append(measured)
                    session.progress(
                        f"requests {iteration + 1}: {endpoint} via {route}: "
                        f"{measured.requests_per_s:.0f} req/s, p99 {measured.percentile_ms(99):.1f} ms"
                    )

    for (endpoint, route), runs in samples.items():
        path = ENDPOINTS[endpoint][0 if route == "nginx" else 1]
        where = "through Nginx" if route == "nginx" else "gunicorn direct (TCP)"
        result.add(
            Figure(
                f"{endpoint}_{route}_rps",
                f"{path} {where}: throughput",
                "req/s",
                [run.requests_per_s for run in runs],
            )
        )
        result.add(
            Figure(
                f"{endpoint}_{route}_p50",
                f"{path} {where}: p50 latency",
                "ms",
                [run.percentile_ms(50) for run in runs],
            )
        )
        result.add(
            Figure(
                f"{endpoint}_{route}_p99",
                f"{path} {where}: p99 latency",
                "ms",
                [run.percentile_ms(99) for run in runs],
            )
        )
        failed = sum(run.failed for run in runs)
        if failed:
            result.notes.append(f"{path} {where}: {failed} failed requests (non-2xx or socket errors).")

    for endpoint, (nginx_path, _) in ENDPOINTS.items():
        nginx_rps = result.figure(f"{endpoint}_nginx_rps").summary.median
        direct_rps = result.figure(f"{endpoint}_direct_rps").summary.median
        overhead = overhead_percent(nginx_rps, direct_rps)
        result.comparisons.append(
            Comparison(
                key=f"{endpoint}_nginx_overhead",
                label=f"{nginx_path}: throughput lost to the Nginx hop",
                value=overhead,
                unit="%",
                ours=f"{endpoint}_nginx_rps",
                baseline=f"{endpoint}_direct_rps",
                note="1 - median(Nginx req/s) / median(direct req/s); negative means Nginx was faster",
            )
        )
        added_p50 = (
            result.figure(f"{endpoint}_nginx_p50").summary.median
            - result.figure(f"{endpoint}_direct_p50").summary.median
        )
        result.comparisons.append(
            Comparison(
                key=f"{endpoint}_nginx_added_p50",
                label=f"{nginx_path}: p50 latency added by the Nginx hop",
                value=added_p50,
                unit="ms",
                ours=f"{endpoint}_nginx_p50",
                baseline=f"{endpoint}_direct_p50",
            )
        )
        result.targets.append(
            Target(
                key=f"{endpoint}_nginx_overhead",
                label=f"Nginx hop costs under 15% of direct throughput ({nginx_path})",
                goal=f"< {NGINX_OVERHEAD_GOAL_PERCENT:g}%",
                measured=f"{overhead:.1f}%",
                met=overhead < NGINX_OVERHEAD_GOAL_PERCENT,
            )
        )
    result.notes.append(
        f"wrk {load.threads} threads, {load.connections} connections, "
        f"{settings.request_duration_s:g} s per run, timeout {load.timeout_s:g} s, from the controller; "
        f"{settings.iterations} runs per route and endpoint, "
        "routes interleaved, after a warm-up of each. gunicorn's sync workers close every connection, "
        "so the direct route reconnects per request while Nginx keeps wrk's connections open."
    )
    result.notes.append(
        "The direct baseline is a copy of the barestack-backend unit (same venv, user, sandbox, "
        f"worker count) bound to TCP port {settings.direct_port} instead of the socket."
    )
    return result
