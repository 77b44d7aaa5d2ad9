"""``/modules``: what can be run (from the venv mapping) and how it last went (from PostgreSQL).

Anonymous callers get the catalogue alone; run data (``last_run``, ``runs``) is for callers
with a token. Starting a run needs a token (see ``barestack_backend.auth``).
"""

import re
from functools import lru_cache
from typing import Any

import psycopg2
from barestack_common.redact import describe_error
from flask import Blueprint, Response, g, jsonify, request, url_for

from barestack_backend import auth, run_queries, run_request
from barestack_backend.errors import DATABASE_UNAVAILABLE, ApiError, database_unavailable, log_database_error
from barestack_backend.module_catalog import CatalogUnavailable, ModuleEntry
from barestack_backend.run_model import Run
from barestack_backend.services import BackendServices, current

blueprint = Blueprint("modules", __name__)
MODULE_PAGE_RUNS = 10
# What a service or module name may look like; anything else (NUL, "..", spaces) is not a module.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
QUOTA_RETRY_AFTER_S = 10


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


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None and ".." not in name


def _catalog_modules(services: BackendServices) -> list[ModuleEntry]:
    try:
        return services.catalog.modules()
    except CatalogUnavailable as error:
        raise ApiError(503, "module mapping unavailable", str(error)) from None


def _known_module(services: BackendServices, service: str, module: str) -> ModuleEntry:
    if not valid_name(service) or not valid_name(module):
        raise ApiError(404, "unknown module", "service and module names are letters, digits and _ . + -")
    try:
        entry = services.catalog.get(service, module)
    except CatalogUnavailable as error:
        raise ApiError(503, "module mapping unavailable", str(error)) from None
    if entry is None:
        raise ApiError(404, "unknown module", f"no module {service}/{module} in the venv mapping")
    return entry


def _database_error(services: BackendServices, error: psycopg2.Error) -> dict[str, Any]:
    log_database_error(error, services.secrets)
    reason = {"error": describe_error(error)["error"], "message": DATABASE_UNAVAILABLE}
    return {"runs_available": False, "runs_error": reason}


@blueprint.get("/modules")
def list_modules() -> Response:
    services = current()
    entries = _catalog_modules(services)
    service_filter = request.args.get("service")
    if service_filter:
        entries = [entry for entry in entries if entry.service == service_filter]
    if auth.current_identity() is None:
        return jsonify(
            {"count": len(entries), "modules": [module_json(e) for e in entries], **auth.hidden_runs()}
        )
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
    if auth.current_identity() is None:
        return jsonify({"module": module_json(entry), **auth.hidden_runs()})
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
    identity = auth.current_identity()
    if identity is None:  # the auth guard lets none through; this keeps it true if that changes
        raise auth.unauthenticated('this needs "Authorization: Bearer <token>"')
    entry = _known_module(services, service, module)
    args = run_request.parse(g.json_body, services.settings.max_args_bytes)
    quota = services.settings.run_quota
    try:
        with services.database.cursor() as cur:
            if run_queries.active_runs_of(cur, identity.requested_by) >= quota:
                raise ApiError(
                    429,
                    "too many runs",
                    f"{identity.requested_by} has {quota} runs queued or running; wait for one to finish",
                    {"Retry-After": str(QUOTA_RETRY_AFTER_S)},
                )
            run = run_queries.insert_queued(
                cur, entry.service, entry.module, args, identity.requested_by, identity.requested_via
            )
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
