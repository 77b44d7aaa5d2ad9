"""``/modules``: what can be run (from the venv mapping) and how it last went (from PostgreSQL)."""

from functools import lru_cache
from typing import Any

import psycopg2
from barestack_common.redact import describe_error
from flask import Blueprint, Response, jsonify, request, url_for

from barestack_backend import run_queries, run_request
from barestack_backend.errors import ApiError, database_unavailable
from barestack_backend.module_catalog import CatalogUnavailable, ModuleEntry
from barestack_backend.run_model import Run
from barestack_backend.services import BackendServices, current

blueprint = Blueprint("modules", __name__)
MODULE_PAGE_RUNS = 10


def run_json(run: Run) -> dict[str, Any]:
    return {**run.to_json(), "url": url_for("runs.get_run", run_id=run.id)}


@lru_cache(maxsize=16384)
def _module_urls(service: str, module: str, script_root: str) -> tuple[str, str]:
    # url_for costs ~10 us; a 400-module listing needs 800 of them. They depend only on these three.
    return (
        url_for("modules.get_module", service=service, module=module),
        url_for("modules.start_run", service=service, module=module),
    )


def module_json(entry: ModuleEntry) -> dict[str, Any]:
    url, runs_url = _module_urls(entry.service, entry.module, request.script_root)
    return {**entry.to_json(), "url": url, "runs_url": runs_url}


def _catalog_modules(services: BackendServices) -> list[ModuleEntry]:
    try:
        return services.catalog.modules()
    except CatalogUnavailable as error:
        raise ApiError(503, "module mapping unavailable", str(error)) from None


def _known_module(services: BackendServices, service: str, module: str) -> ModuleEntry:
    try:
        entry = services.catalog.get(service, module)
    except CatalogUnavailable as error:
        raise ApiError(503, "module mapping unavailable", str(error)) from None
    if entry is None:
        raise ApiError(404, "unknown module", f"no module {service}/{module} in the venv mapping")
    return entry


def _database_error(services: BackendServices, error: psycopg2.Error) -> dict[str, Any]:
    return {"runs_available": False, "runs_error": describe_error(error, services.secrets)}


@blueprint.get("/modules")
def list_modules() -> Response:
    services = current()
    entries = _catalog_modules(services)
    service_filter = request.args.get("service")
    if service_filter:
        entries = [entry for entry in entries if entry.service == service_filter]
    # Run history is a bonus here: without PostgreSQL the list of modules is still worth showing.
    extra: dict[str, Any] = {"runs_available": True}
    last_runs: dict[tuple[str, str], Run] = {}
    try:
        with services.database.cursor(autocommit=True) as cur:
            last_runs = run_queries.last_run_per_module(cur, [(e.service, e.module) for e in entries])
    except psycopg2.Error as error:
        extra = _database_error(services, error)
    modules = []
    for entry in entries:
        last = last_runs.get((entry.service, entry.module))
        modules.append({**module_json(entry), "last_run": run_json(last) if last else None})
    return jsonify({"count": len(modules), "modules": modules, **extra})


@blueprint.get("/modules/<service>/<module>")
def get_module(service: str, module: str) -> Response:
    services = current()
    entry = _known_module(services, service, module)
    extra: dict[str, Any] = {"runs_available": True}
    runs: list[Run] = []
    try:
        with services.database.cursor(autocommit=True) as cur:
            runs = run_queries.latest(cur, MODULE_PAGE_RUNS, service=service, module=module)
    except psycopg2.Error as error:
        extra = _database_error(services, error)
    return jsonify({"module": module_json(entry), "runs": [run_json(run) for run in runs], **extra})


@blueprint.post("/modules/<service>/<module>/runs")
def start_run(service: str, module: str) -> tuple[Response, int, dict[str, str]]:
    services = current()
    entry = _known_module(services, service, module)
    args = run_request.parse(request)
    try:
        with services.database.cursor() as cur:
            run = run_queries.insert_queued(cur, entry.service, entry.module, args)
    except psycopg2.Error as error:
        raise database_unavailable(error, services.secrets) from None
    # The row is committed before the id is queued, so a worker can never see an id it cannot find.
    try:
        services.queue.enqueue(run.id)
    except Exception as error:
        reason = describe_error(error, services.secrets)
        try:
            with services.database.cursor() as cur:
                run_queries.mark_enqueue_failed(cur, run.id, f"{reason['error']}: {reason['message']}")
        except psycopg2.Error:
            pass  # the row stays queued; the 503 below still tells the client the run did not start
        raise ApiError(503, "queue unavailable", reason["message"]) from None
    location = url_for("runs.get_run", run_id=run.id)
    return jsonify({"id": run.id, "status": run.status, "url": location}), 202, {"Location": location}
