"""``/modules``: what can be run (from the venv mapping) and how it last went (from PostgreSQL).

Anonymous callers get the catalogue alone; run data (``last_run``, ``runs``) is for callers
with a token. Starting a run needs a token (see ``barestack_backend.auth``).
"""

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import psycopg2
from barestack_common import replay
from barestack_common.redact import describe_error
from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from barestack_backend import auth, run_queries, run_request
from barestack_backend.answer_cache import Answer
from barestack_backend.errors import DATABASE_UNAVAILABLE, ApiError, database_unavailable, log_database_error
from barestack_backend.module_catalog import Catalog, CatalogUnavailable, ModuleEntry
from barestack_backend.run_model import Run
from barestack_backend.services import BackendServices, current

blueprint = Blueprint("modules", __name__)
MODULE_PAGE_RUNS = 10
# What a service or module name may look like; anything else (NUL, "..", spaces) is not a module.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
QUOTA_RETRY_AFTER_S = 10


# Any id: only what url_for puts before it matters (see _run_url_prefix).
_SAMPLE_RUN_ID = uuid.UUID(int=0)


@lru_cache(maxsize=64)
def _run_url_prefix(script_root: str) -> str:
    # A run's URL is this prefix and its id; url_for once per prefix instead of once per run.
    sample = url_for("runs.get_run", run_id=_SAMPLE_RUN_ID)
    return sample.removesuffix(str(_SAMPLE_RUN_ID))


def run_json(run: Run) -> dict[str, Any]:
    return {**run.to_json(), "url": _run_url_prefix(request.script_root) + str(run.id)}


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


def _catalog(services: BackendServices) -> Catalog:
    try:
        return services.catalog.current()
    except CatalogUnavailable as error:
        raise ApiError(503, "module mapping unavailable", str(error)) from None


def _compact(document: Any) -> str:
    """JSON as jsonify writes it outside debug mode (same provider, same separators)."""
    return current_app.json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True)
class _Encoded:
    """One module's listing entry as JSON text: as anonymous callers get it, and never run."""

    entry: ModuleEntry
    whole: str
    never_run: str  # with "last_run": null, as callers with a token get a module without runs

    def with_last_run(self, last_run_json: str) -> str:
        return f'{self.whole[:-1]},"last_run":{last_run_json}}}'


class EncodedListings:
    """The catalogue's entries encoded once per mapping reading and URL prefix, not per request.

    A listing of 400 modules is otherwise 400 dicts built and encoded on every call, which is
    most of the request's time. Entries depend only on the mapping (a new ``Catalog`` object
    whenever the file changes) and the proxy's prefix (their URLs), so that pair is the key; the
    run data a caller with a token sees is spliced in per request.
    """

    MAX_PREFIXES = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._by_prefix: dict[str, list[_Encoded]] = {}
        self.encodings = 0  # how many times a whole catalogue was encoded

    def get(self, catalog: Catalog) -> list[_Encoded]:
        prefix = request.script_root
        with self._lock:
            if self._catalog is catalog and prefix in self._by_prefix:
                return self._by_prefix[prefix]
        encoded = []
        for entry in catalog.entries:
            whole = _compact(module_json(entry))
            encoded.append(_Encoded(entry, whole, f'{whole[:-1]},"last_run":null}}'))
        with self._lock:
            if self._catalog is not catalog or len(self._by_prefix) >= self.MAX_PREFIXES:
                self._catalog, self._by_prefix = catalog, {}
            self._by_prefix[prefix] = encoded
            self.encodings += 1
        return encoded


LISTINGS_KEY = "barestack_backend.listings"


def encoded_listings() -> EncodedListings:
    # setdefault is atomic: concurrent first calls all end up with the one stored instance.
    return current_app.extensions.setdefault(LISTINGS_KEY, EncodedListings())


def send_answer(answer: Answer, still_valid: Callable[[], bool] | None = None) -> Response:
    """A kept (or just built) JSON answer, with its ETag; 304 to a caller that already has it.

    A kept answer is offered for replay to the same request while it is fresh (bounded by the
    caller's token, see ``auth.authenticate``) and ``still_valid()`` holds; one that is not kept
    has a ``fresh_until`` of 0.
    """
    # The app and request objects, not their proxies: each proxy attribute read walks the context.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response = app.response_class(answer.body, mimetype="application/json")
    response.set_etag(answer.etag)
    current_request = request._get_current_object()  # type: ignore[attr-defined]
    replay.offer(current_request.environ, answer.fresh_until, still_valid)
    # make_conditional() also dates the response and looks for ranges: only worth it when asked.
    if "HTTP_IF_NONE_MATCH" in current_request.environ:  # "If-None-Match" in request.headers
        return response.make_conditional(current_request)
    return response


def _listing(items: list[str], extra: dict[str, Any], keep: bool = True) -> Answer:
    """``{"count": N, "modules": [...], **extra}`` from entries already encoded."""
    tail = _compact(extra)[1:-1]
    members = f'"count":{len(items)},"modules":[{",".join(items)}]' + (f",{tail}" if tail else "")
    return Answer.of("{" + members + "}", keep)


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
    catalog = _catalog(services)
    current_request = request._get_current_object()  # type: ignore[attr-defined]
    service_filter = current_request.args.get("service") or None
    shown_to = "anonymous" if auth.current_identity() is None else "token"
    unavailable = g._get_current_object().get("auth_unavailable")  # type: ignore[attr-defined]
    # Run data is the same for every caller with a token, so one answer serves them all.
    key = ("modules", catalog, current_request.script_root, service_filter, shown_to, unavailable)
    answer = services.answers.get(key, lambda: _build_listing(services, catalog, service_filter))
    # A replay checks the mapping as this view does: a rewritten one is shown on the next call.
    return send_answer(answer, partial(services.catalog.is_current, catalog))


def _build_listing(services: BackendServices, catalog: Catalog, service_filter: str | None) -> Answer:
    encoded = encoded_listings().get(catalog)
    if service_filter:
        encoded = [item for item in encoded if item.entry.service == service_filter]
    if auth.current_identity() is None:
        kept = not g.get("auth_unavailable")
        return _listing([item.whole for item in encoded], auth.hidden_runs(), keep=kept)
    # Run history is a bonus here: without PostgreSQL the list of modules is still worth showing.
    extra: dict[str, Any] = {"runs_available": True}
    last_runs: dict[tuple[str, str], Run] = {}
    try:
        with services.database.cursor(autocommit=True) as cur:
            last_runs = run_queries.last_run_per_module(
                cur, [(e.entry.service, e.entry.module) for e in encoded]
            )
    except psycopg2.Error as error:
        extra = _database_error(services, error)
    items = []
    for item in encoded:
        last = last_runs.get((item.entry.service, item.entry.module)) if last_runs else None
        items.append(item.with_last_run(_compact(run_json(last))) if last else item.never_run)
    return _listing(items, extra, keep=extra["runs_available"])


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
        services.answers.clear()
        raise ApiError(503, "queue unavailable", reason["message"]) from None
    services.answers.clear()  # whoever started it sees it in their next listing from this process
    location = url_for("runs.get_run", run_id=run.id)
    return jsonify({"id": run.id, "status": run.status, "url": location}), 202, {"Location": location}
