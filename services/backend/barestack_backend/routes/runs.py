"""``/runs``: one run with its output, or the latest runs (optionally of one module). Token only."""

import re
import uuid

import psycopg2
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from barestack_backend import run_queries
from barestack_backend.answer_cache import Answer
from barestack_backend.errors import ApiError, database_unavailable
from barestack_backend.routes.modules import run_json, send_answer, valid_name
from barestack_backend.services import current

blueprint = Blueprint("runs", __name__)
DEFAULT_LIMIT = 20
MAX_LIMIT = 200
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() cannot parse.
_LIMIT = re.compile(r"[0-9]{1,3}")


def _limit(args: MultiDict[str, str]) -> int:
    raw = args.get("limit", str(DEFAULT_LIMIT))
    if _LIMIT.fullmatch(raw) is None or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _module_filter(args: MultiDict[str, str]) -> tuple[str | None, str | None]:
    raw = args.get("module")
    if raw is None:
        return None, None
    service, _, module = raw.partition("/")
    if not valid_name(service) or not valid_name(module):
        raise ApiError(400, "invalid module filter", "module must look like <service>/<module>")
    return service, module


@blueprint.get("/runs/<uuid:run_id>")
def get_run(run_id: uuid.UUID) -> Response:
    services = current()
    try:
        with services.database.cursor(autocommit=True) as cur:
            run = run_queries.get(cur, run_id)
    except psycopg2.Error as error:
        raise database_unavailable(error, services.secrets) from None
    if run is None:
        raise ApiError(404, "unknown run", f"no run {run_id}")
    return jsonify(run_json(run))


@blueprint.get("/runs")
def list_runs() -> Response:
    services = current()
    current_request = request._get_current_object()  # type: ignore[attr-defined]
    service, module = _module_filter(current_request.args)
    limit = _limit(current_request.args)

    def build() -> Answer:
        try:
            with services.database.cursor(autocommit=True) as cur:
                runs = run_queries.latest(cur, limit, service=service, module=module)
        except psycopg2.Error as error:
            raise database_unavailable(error, services.secrets) from None  # never kept
        document = {"count": len(runs), "runs": [run_json(run) for run in runs]}
        return Answer.of(current_app.json.dumps(document, separators=(",", ":")))

    # The same for every caller with a token (nothing here depends on who asks).
    key = ("runs", current_request.script_root, limit, service, module)
    return send_answer(services.answers.get(key, build))
