"""The backend API against real PostgreSQL and Redis: health, modules, starting and reading runs.

These tests call as a caller with a token (``client``); what anonymous callers and bad tokens
get is in test_svc_backend_access.py.
"""

import json
import uuid
from pathlib import Path

import pytest
import redis
from barestack_backend.app import create_app
from barestack_backend.settings import Settings
from barestack_common.env import ConfigError
from flask import Flask
from flask.testing import FlaskClient
from svc_testkit.api_tokens import client_with_token
from svc_testkit.ports import free_port
from svc_testkit.postgres import PostgresServer
from svc_testkit.redis_server import RedisServer
from svc_testkit.runs_db import count_runs, fetch_run


def make_app(env: dict[str, str]) -> Flask:
    app = create_app(Settings.from_env(env))
    app.testing = True
    return app


@pytest.fixture
def client(backend_env: dict[str, str], api_token: str) -> FlaskClient:
    return client_with_token(make_app(backend_env), api_token)


# --- settings -------------------------------------------------------------------------------


def test_settings_name_the_missing_variable(backend_env: dict[str, str]) -> None:
    env = {k: v for k, v in backend_env.items() if k != "DATABASE_URL"}
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        Settings.from_env(env)


def test_settings_reject_a_wrong_scheme_without_echoing_the_value() -> None:
    env = {"DATABASE_URL": "mysql://app:hunter2-secret@db/x", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    with pytest.raises(ConfigError, match="DATABASE_URL must be a URL") as raised:
        Settings.from_env(env)
    assert "hunter2-secret" not in str(raised.value)


def test_settings_do_not_show_secrets_in_repr(backend_env: dict[str, str]) -> None:
    settings = Settings.from_env(backend_env)
    assert backend_env["DATABASE_URL"] not in repr(settings)
    assert backend_env["REDIS_URL"] not in repr(settings)


# --- health ---------------------------------------------------------------------------------


def test_health_is_ok_when_postgres_and_redis_answer(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["postgresql"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


def test_health_is_503_with_details_when_redis_is_dead(backend_env: dict[str, str], api_token: str) -> None:
    env = {**backend_env, "REDIS_URL": f"redis://:nope@127.0.0.1:{free_port()}/0"}
    response = client_with_token(make_app(env), api_token).get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgresql"]["ok"] is True
    assert body["checks"]["redis"] == {
        "ok": False,
        "error": "ConnectionError",
        "message": body["checks"]["redis"]["message"],
        "duration_ms": body["checks"]["redis"]["duration_ms"],
    }
    assert "refused" in body["checks"]["redis"]["message"].lower()


@pytest.mark.parametrize("where", ["wrong password", "dead port"])
def test_health_never_shows_the_database_password(
    backend_env: dict[str, str], pg_server: PostgresServer, capfd: pytest.CaptureFixture[str], where: str
) -> None:
    password = "Sup3r-Secret-" + uuid.uuid4().hex
    port = pg_server.port if where == "wrong password" else free_port()
    env = {**backend_env, "DATABASE_URL": f"postgresql://{pg_server.app_user}:{password}@127.0.0.1:{port}/x"}
    response = make_app(env).test_client().get("/health")
    assert response.status_code == 503
    check = response.get_json()["checks"]["postgresql"]
    assert check["ok"] is False and check["error"] == "OperationalError"
    assert password not in response.get_data(as_text=True)
    assert password not in capfd.readouterr().err


# --- modules --------------------------------------------------------------------------------


def test_modules_lists_the_mapping_modules_only(client: FlaskClient) -> None:
    body = client.get("/modules").get_json()
    names = [f"{m['service']}/{m['module']}" for m in body["modules"]]
    assert names == sorted(names)
    assert "backend/echo-001" in names and "frontend/page-001" in names
    assert "backend" not in names  # the service's own venv is not a module
    assert body["count"] == len(names) == 6
    echo = next(m for m in body["modules"] if m["module"] == "echo-001")
    assert echo["packages"] == {"packaging": "24.2"}
    assert len(echo["hash"]) == 64 and echo["python"]
    assert echo["last_run"] is None and body["runs_available"] is True
    assert echo["url"] == "/modules/backend/echo-001"


def test_modules_can_be_filtered_by_service(client: FlaskClient) -> None:
    body = client.get("/modules?service=frontend").get_json()
    assert [m["module"] for m in body["modules"]] == ["page-001"]


def test_module_detail_and_unknown_module(client: FlaskClient) -> None:
    detail = client.get("/modules/backend/echo-001")
    assert detail.status_code == 200
    assert detail.get_json()["module"]["module"] == "echo-001"
    assert detail.get_json()["runs"] == []
    missing = client.get("/modules/backend/nope-999")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "unknown module"


def test_modules_is_503_with_the_reason_when_the_mapping_is_missing(
    backend_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**backend_env, "BARESTACK_VENV_MAPPING": str(tmp_path / "absent.json")}
    response = make_app(env).test_client().get("/modules")
    assert response.status_code == 503
    assert "absent.json does not exist" in response.get_json()["detail"]


def test_modules_still_lists_when_postgres_is_down(backend_env: dict[str, str], api_token: str) -> None:
    env = {**backend_env, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/x"}
    body = client_with_token(make_app(env), api_token).get("/modules").get_json()
    assert body["count"] == 6
    assert body["runs_available"] is False
    assert body["runs_error"]["error"] == "OperationalError"


def test_the_listing_is_encoded_once_per_mapping_and_follows_a_changed_mapping(
    backend_env: dict[str, str], api_token: str, tmp_path: Path
) -> None:
    from barestack_backend.routes.modules import LISTINGS_KEY

    mapping = tmp_path / "venv_mapping.json"
    document = json.loads(Path(backend_env["BARESTACK_VENV_MAPPING"]).read_text())
    mapping.write_text(json.dumps(document))
    app = make_app({**backend_env, "BARESTACK_VENV_MAPPING": str(mapping)})
    client, anon = client_with_token(app, api_token), app.test_client()
    first = client.get("/modules").get_json()
    for _ in range(5):
        assert client.get("/modules").get_json() == first
        assert anon.get("/modules").get_json()["count"] == first["count"]
    assert app.extensions[LISTINGS_KEY].encodings == 1
    # Another prefix (behind the proxy) has links of its own.
    proxied = client.get("/modules", headers=PROXY_HEADERS).get_json()["modules"]
    assert all(m["url"].startswith("/api/modules/") for m in proxied)
    assert client.get("/modules").get_json()["modules"][0]["url"].startswith("/modules/")
    # A deployment rewrites the mapping: the next listing shows it, no restart.
    entry = dict(document["venvs"]["backend/echo-001"], module="added-999")
    document["venvs"]["backend/added-999"] = entry
    mapping.write_text(json.dumps(document))
    names = [m["module"] for m in client.get("/modules").get_json()["modules"]]
    assert "added-999" in names and len(names) == first["count"] + 1
    anonymous = anon.get("/modules").get_json()
    assert anonymous["count"] == first["count"] + 1 and anonymous["runs_available"] is False
    assert "last_run" not in anonymous["modules"][0]


def test_modules_show_each_modules_newest_run(client: FlaskClient, backend_env: dict[str, str]) -> None:
    import psycopg2

    conn = psycopg2.connect(backend_env["DATABASE_URL"])
    newest = {}
    try:
        with conn, conn.cursor() as cur:
            for module, ages in (("echo-001", (30, 5, 60)), ("fail-002", (40, 10, 20)), ("gone-404", (1,))):
                for age in ages:
                    run_id = str(uuid.uuid4())
                    cur.execute(
                        "INSERT INTO barestack.runs (id, service, module, args, status, created_at) "
                        "VALUES (%s, 'backend', %s, '[]', 'succeeded', now() - make_interval(mins => %s))",
                        (run_id, module, age),
                    )
                    if age == min(ages):
                        newest[module] = run_id
    finally:
        conn.close()
    listed = {m["module"]: m["last_run"] for m in client.get("/modules").get_json()["modules"]}
    assert listed["echo-001"]["id"] == newest["echo-001"]
    assert listed["echo-001"]["url"] == f"/runs/{newest['echo-001']}"
    assert listed["fail-002"]["id"] == newest["fail-002"]
    assert listed["sleep-003"] is None and "gone-404" not in listed  # never run; not in the mapping


# --- runs -----------------------------------------------------------------------------------


def test_starting_a_run_stores_it_queued_and_queues_its_id(
    client: FlaskClient, backend_env: dict[str, str], redis_srv: RedisServer
) -> None:
    response = client.post("/modules/backend/echo-001/runs", json={"args": ["--name", "two words"]})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert response.headers["Location"] == body["url"] == f"/runs/{body['id']}"
    row = fetch_run(backend_env["DATABASE_URL"], body["id"])
    assert row is not None
    assert (row["service"], row["module"], row["args"], row["status"]) == (
        "backend",
        "echo-001",
        ["--name", "two words"],
        "queued",
    )
    entries = redis_srv.client().xrange(backend_env["BARESTACK_RUNS_STREAM"])
    assert [fields for _, fields in entries] == [{"run_id": body["id"]}]

    shown = client.get(body["url"]).get_json()
    assert shown["id"] == body["id"] and shown["status"] == "queued"
    assert shown["stdout_tail"] == "" and shown["attempts"] == 0
    listed = client.get("/runs?module=backend/echo-001&limit=5").get_json()
    assert [run["id"] for run in listed["runs"]] == [body["id"]]
    assert "stdout_tail" not in listed["runs"][0]  # lists stay small
    assert (shown["requested_by"], shown["requested_via"]) == ("tester", None)
    assert row["requested_by"] == "tester" and row["requested_via"] is None
    assert client.get("/modules").get_json()["modules"][0]["last_run"]["id"] == body["id"]


def test_a_run_with_an_empty_object_has_no_args(client: FlaskClient, backend_env: dict[str, str]) -> None:
    response = client.post("/modules/backend/echo-001/runs", json={})
    assert response.status_code == 202
    assert fetch_run(backend_env["DATABASE_URL"], response.get_json()["id"])["args"] == []


def test_starting_an_unknown_module_is_404_and_stores_nothing(
    client: FlaskClient, backend_env: dict[str, str]
) -> None:
    response = client.post("/modules/backend/nope-999/runs", json={"args": []})
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown module"
    assert count_runs(backend_env["DATABASE_URL"]) == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"args": "--flag"}, "must be a list"),
        ({"args": ["ok", 3]}, '"args"[1] must be a string'),
        ({"args": ["a\u0000b"]}, "NUL"),
        ({"args": ["x"] * 65}, "at most 64"),
        ({"args": ["x" * 5000]}, "longer than"),
        ({"argz": []}, "unknown field(s): argz"),
        (["--flag"], "must be a JSON object"),
    ],
)
def test_bad_args_are_400_with_the_reason_and_store_nothing(
    client: FlaskClient, backend_env: dict[str, str], body: object, detail: str
) -> None:
    response = client.post("/modules/backend/echo-001/runs", json=body)
    assert response.status_code == 400
    assert detail in response.get_json()["detail"]
    assert count_runs(backend_env["DATABASE_URL"]) == 0


def test_malformed_json_and_wrong_content_type_are_refused(client: FlaskClient) -> None:
    broken = client.post("/modules/backend/echo-001/runs", data="{", content_type="application/json")
    assert broken.status_code == 400 and "not valid JSON" in broken.get_json()["detail"]
    form = client.post("/modules/backend/echo-001/runs", data={"args": "x"})
    assert form.status_code == 415


def test_a_run_that_cannot_be_queued_is_503_and_marked_failed(
    backend_env: dict[str, str], api_token: str
) -> None:
    env = {**backend_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    response = client_with_token(make_app(env), api_token).post(
        "/modules/backend/echo-001/runs", json={"args": []}
    )
    assert response.status_code == 503
    assert response.get_json()["error"] == "queue unavailable"
    conn_rows = count_runs(backend_env["DATABASE_URL"])
    assert conn_rows == 1  # the row exists, and says why it never ran
    client = client_with_token(make_app(backend_env), api_token)
    run = client.get("/runs").get_json()["runs"][0]
    assert run["status"] == "failed"
    assert "could not queue" in client.get(run["url"]).get_json()["stderr_tail"]


def test_unknown_and_malformed_run_ids_are_404(client: FlaskClient) -> None:
    unknown = client.get(f"/runs/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "unknown run"
    assert client.get("/runs/not-a-uuid").status_code == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=ten", "module=no-slash", "module=a/b/c"])
def test_bad_run_list_queries_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/runs?{query}")
    assert response.status_code == 400
    assert response.get_json()["detail"]


def test_every_error_is_json(client: FlaskClient) -> None:
    response = client.delete("/modules")
    assert response.status_code == 405
    assert response.is_json and response.get_json()["error"] == "method not allowed"


# --- behind nginx ---------------------------------------------------------------------------

PROXY_HEADERS = {
    "X-Forwarded-Prefix": "/api",
    "X-Forwarded-Host": "stack.example.test",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "203.0.113.7",
}


def test_links_and_location_carry_the_proxy_prefix(client: FlaskClient) -> None:
    response = client.post("/modules/backend/echo-001/runs", json={"args": []}, headers=PROXY_HEADERS)
    assert response.status_code == 202
    run_id = response.get_json()["id"]
    assert response.headers["Location"] == f"/api/runs/{run_id}"
    assert response.get_json()["url"] == f"/api/runs/{run_id}"
    modules = client.get("/modules", headers=PROXY_HEADERS).get_json()["modules"]
    assert modules[0]["url"].startswith("/api/modules/")
    assert modules[0]["runs_url"].endswith("/runs") and modules[0]["runs_url"].startswith("/api/")


# Nginx appends the address that called it to what the client sent: that last one is the client.
@pytest.mark.parametrize("forwarded_for", ["203.0.113.7", "198.51.100.1, 203.0.113.7", '"x", 203.0.113.7'])
def test_a_logged_request_shows_the_client_seen_path(
    backend_env: dict[str, str], api_token: str, capfd: pytest.CaptureFixture[str], forwarded_for: str
) -> None:
    # Threshold 0: every request is slow enough to be logged (fast ones get no line otherwise).
    client = client_with_token(make_app({**backend_env, "BARESTACK_SLOW_REQUEST_SECONDS": "0"}), api_token)
    capfd.readouterr()
    client.get("/modules/backend/nope-999", headers={**PROXY_HEADERS, "X-Forwarded-For": forwarded_for})
    lines = [line for line in capfd.readouterr().err.splitlines() if "/modules/" in line]
    assert len(lines) == 1
    method, path, status, duration, source = lines[0].split()
    assert (method, path, status, source) == (
        "GET",
        "/api/modules/backend/nope-999",
        "404",
        "from=203.0.113.7",
    )
    assert duration.endswith("ms") and float(duration[:-2]) >= 0


def test_queue_entries_are_plain_run_ids(client: FlaskClient, backend_env: dict[str, str]) -> None:
    run_id = client.post("/modules/backend/echo-001/runs", json={}).get_json()["id"]
    raw = redis.Redis.from_url(backend_env["REDIS_URL"], decode_responses=True)
    ((_, fields),) = raw.xrange(backend_env["BARESTACK_RUNS_STREAM"])
    assert json.dumps(fields) == json.dumps({"run_id": run_id})
