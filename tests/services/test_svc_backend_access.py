"""Who may use the backend API, and what malformed requests get: never a 500, never a stored run.

Real PostgreSQL and Redis throughout; tokens are stored as the tokens CLI stores them.
"""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg2
import pytest
from barestack_backend.app import create_app
from barestack_backend.settings import Settings
from flask import Flask
from flask.testing import FlaskClient
from svc_testkit.api_tokens import bearer
from svc_testkit.live_server import serve
from svc_testkit.ports import free_port
from svc_testkit.runs_db import count_runs, fetch_run

RUNS = "/modules/backend/echo-001/runs"


def make_app(env: dict[str, str]) -> Flask:
    app = create_app(Settings.from_env(env))
    app.testing = True
    return app


@pytest.fixture
def app(backend_env: dict[str, str]) -> Flask:
    return make_app(backend_env)


@pytest.fixture
def anon(app: Flask) -> FlaskClient:
    return app.test_client()


def post_status(url: str, payload: object, headers: dict[str, str]) -> int:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data, {**headers, "Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def sql(database_url: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
    finally:
        conn.close()


def token_row(database_url: str, name: str) -> tuple[Any, ...] | None:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT last_used_at, revoked_at FROM barestack.api_tokens WHERE name = %s", (name,))
            return cur.fetchone()
    finally:
        conn.close()


# --- anonymous callers ----------------------------------------------------------------------


def test_anonymous_cannot_start_runs(anon: FlaskClient, backend_env: dict[str, str]) -> None:
    response = anon.post(RUNS, json={"args": []})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"] == "unauthenticated"
    assert count_runs(backend_env["DATABASE_URL"]) == 0


@pytest.mark.parametrize("path", ["/runs", f"/runs/{uuid.uuid4()}", "/runs?limit=5"])
def test_anonymous_cannot_read_runs(anon: FlaskClient, path: str) -> None:
    response = anon.get(path)
    assert response.status_code == 401 and response.is_json
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_anonymous_catalogue_shows_no_run_data(
    app: Flask, anon: FlaskClient, api_token: str, backend_env: dict[str, str]
) -> None:
    started = app.test_client().post(RUNS, json={"args": ["--secret-arg"]}, headers=bearer(api_token))
    assert started.status_code == 202
    listing = anon.get("/modules")
    assert listing.status_code == 200
    body = listing.get_json()
    assert body["count"] == 6 and body["runs_available"] is False
    assert body["runs_error"]["error"] == "unauthenticated"
    assert all("last_run" not in module for module in body["modules"])
    detail = anon.get("/modules/backend/echo-001").get_json()
    assert detail["module"]["module"] == "echo-001" and "runs" not in detail
    for text in (
        listing.get_data(as_text=True),
        anon.get("/modules/backend/echo-001").get_data(as_text=True),
    ):
        assert "--secret-arg" not in text and started.get_json()["id"] not in text
    # With the token the same pages carry the run, as before.
    authed = app.test_client().get("/modules/backend/echo-001", headers=bearer(api_token)).get_json()
    assert [run["args"] for run in authed["runs"]] == [["--secret-arg"]]


def test_anonymous_health_hides_hosts_but_a_token_sees_them(
    backend_env: dict[str, str], api_token: str
) -> None:
    env = {**backend_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    app = make_app(env)
    anonymous = app.test_client().get("/health").get_json()["checks"]["redis"]
    assert anonymous["ok"] is False and anonymous["error"] == "ConnectionError"
    assert "127.0.0.1" not in anonymous["message"] and "refused" not in anonymous["message"].lower()
    detailed = app.test_client().get("/health", headers=bearer(api_token)).get_json()["checks"]["redis"]
    assert "refused" in detailed["message"].lower()


def test_database_errors_name_no_host_user_or_driver_message(backend_env: dict[str, str]) -> None:
    port = free_port()
    env = {**backend_env, "DATABASE_URL": f"postgresql://someuser:pw@127.0.0.1:{port}/db"}
    client = make_app(env).test_client()
    for path in ("/runs", "/modules", "/modules/backend/echo-001", "/health"):
        response = client.get(path, headers=bearer("bst_" + "x" * 43))
        text = response.get_data(as_text=True)
        assert response.is_json and response.status_code in (200, 503), (path, response.status_code)
        for leak in (str(port), "someuser", "127.0.0.1", "connection to server", "psycopg"):
            assert leak not in text, (path, leak, text)
    runs = client.get("/runs", headers=bearer("bst_" + "x" * 43))
    assert runs.status_code == 503 and runs.get_json()["error"] == "database unavailable"


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer bst_not-a-real-token-at-all-00000000000",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "bst_x",
        "Bearer a b",
    ],
)
def test_unknown_or_malformed_tokens_are_401(
    anon: FlaskClient, backend_env: dict[str, str], api_token: str, authorization: str
) -> None:
    for path in ("/runs", "/modules"):  # a bad token is refused even where anonymous is fine
        response = anon.get(path, headers={"Authorization": authorization})
        assert response.status_code == 401, (path, authorization)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert anon.post(RUNS, json={}, headers={"Authorization": authorization}).status_code == 401
    assert count_runs(backend_env["DATABASE_URL"]) == 0


def test_a_token_starts_a_run_recorded_as_its_name(
    anon: FlaskClient, api_token: str, backend_env: dict[str, str]
) -> None:
    assert token_row(backend_env["DATABASE_URL"], "tester") == (None, None)
    response = anon.post(RUNS, json={"args": ["x"]}, headers=bearer(api_token))
    assert response.status_code == 202
    row = fetch_run(backend_env["DATABASE_URL"], response.get_json()["id"])
    assert row is not None and (row["requested_by"], row["requested_via"]) == ("tester", None)
    shown = anon.get(response.get_json()["url"], headers=bearer(api_token)).get_json()
    assert shown["requested_by"] == "tester" and shown["requested_via"] is None
    last_used, revoked = token_row(backend_env["DATABASE_URL"], "tester") or (None, None)
    assert last_used is not None and revoked is None


def test_a_revoked_token_is_refused_once_the_token_cache_has_passed(
    anon: FlaskClient, api_token: str, backend_env: dict[str, str]
) -> None:
    from barestack_backend.settings import DEFAULT_TOKEN_CACHE_S

    assert anon.get("/runs", headers=bearer(api_token)).status_code == 200
    sql(
        backend_env["DATABASE_URL"],
        "UPDATE barestack.api_tokens SET revoked_at = now() WHERE name = 'tester'",
    )
    time.sleep(DEFAULT_TOKEN_CACHE_S)
    assert anon.get("/runs", headers=bearer(api_token)).status_code == 401
    assert anon.post(RUNS, json={}, headers=bearer(api_token)).status_code == 401
    assert count_runs(backend_env["DATABASE_URL"]) == 0


def test_without_a_token_cache_a_revoked_token_is_refused_from_the_next_request(
    backend_env: dict[str, str], api_token: str
) -> None:
    client = make_app({**backend_env, "BARESTACK_TOKEN_CACHE_SECONDS": "0"}).test_client()
    assert client.get("/runs", headers=bearer(api_token)).status_code == 200
    sql(
        backend_env["DATABASE_URL"],
        "UPDATE barestack.api_tokens SET revoked_at = now() WHERE name = 'tester'",
    )
    assert client.get("/runs", headers=bearer(api_token)).status_code == 401


def test_a_token_is_looked_up_once_per_cache_interval(
    app: Flask, anon: FlaskClient, api_token: str, backend_env: dict[str, str]
) -> None:
    from barestack_backend.auth import TOKEN_CACHE_KEY

    started = time.monotonic()
    for _ in range(20):
        assert anon.get("/runs", headers=bearer(api_token)).status_code == 200
    lookups = app.extensions[TOKEN_CACHE_KEY].lookups
    assert lookups < 10, lookups
    assert lookups <= 1 + (time.monotonic() - started) / app.extensions[TOKEN_CACHE_KEY].ttl_s, lookups
    # An unknown or wrong token is never taken from the cache.
    assert anon.get("/runs", headers=bearer(api_token + "x")).status_code == 401
    assert anon.get("/runs", headers=bearer("bst_" + "A" * 43)).status_code == 401


def test_the_token_cache_setting_is_checked(backend_env: dict[str, str]) -> None:
    from barestack_common.env import ConfigError

    for bad in ("-1", "31", "soon"):
        with pytest.raises(ConfigError, match="BARESTACK_TOKEN_CACHE_SECONDS"):
            Settings.from_env({**backend_env, "BARESTACK_TOKEN_CACHE_SECONDS": bad})


def test_a_delegating_token_records_the_person_it_acts_for(
    anon: FlaskClient, frontend_token: str, backend_env: dict[str, str]
) -> None:
    response = anon.post(RUNS, json={}, headers=bearer(frontend_token, user="alice"))
    assert response.status_code == 202
    row = fetch_run(backend_env["DATABASE_URL"], response.get_json()["id"])
    assert row is not None and (row["requested_by"], row["requested_via"]) == ("alice", "frontend")
    shown = anon.get(response.get_json()["url"], headers=bearer(frontend_token)).get_json()
    assert (shown["requested_by"], shown["requested_via"]) == ("alice", "frontend")
    # Without the header the token acts as itself.
    own = anon.post(RUNS, json={}, headers=bearer(frontend_token))
    assert fetch_run(backend_env["DATABASE_URL"], own.get_json()["id"])["requested_by"] == "frontend"


def test_a_plain_token_may_not_act_for_a_person(
    anon: FlaskClient, api_token: str, backend_env: dict[str, str]
) -> None:
    response = anon.post(RUNS, json={}, headers=bearer(api_token, user="alice"))
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    assert anon.get("/runs", headers=bearer(api_token, user="alice")).status_code == 403
    assert count_runs(backend_env["DATABASE_URL"]) == 0


@pytest.mark.parametrize("user", ["Alice", "9lives", "a" * 33, "al ice", "../root", ""])
def test_a_malformed_person_name_is_400(
    anon: FlaskClient, frontend_token: str, backend_env: dict[str, str], user: str
) -> None:
    response = anon.post(RUNS, json={}, headers=bearer(frontend_token, user=user))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid user"
    assert count_runs(backend_env["DATABASE_URL"]) == 0


# --- quota ----------------------------------------------------------------------------------


def test_the_run_quota_counts_queued_and_running_runs_per_identity(
    backend_env: dict[str, str], api_token: str, frontend_token: str
) -> None:
    client = make_app({**backend_env, "BARESTACK_RUN_QUOTA": "2"}).test_client()
    first = client.post(RUNS, json={}, headers=bearer(api_token)).get_json()["id"]
    assert client.post(RUNS, json={}, headers=bearer(api_token)).status_code == 202
    refused = client.post(RUNS, json={}, headers=bearer(api_token))
    assert refused.status_code == 429 and refused.headers["Retry-After"].isdigit()
    assert refused.get_json()["error"] == "too many runs"
    assert count_runs(backend_env["DATABASE_URL"]) == 2
    # Another identity has its own quota, a person acting through a token too.
    assert client.post(RUNS, json={}, headers=bearer(frontend_token, user="bob")).status_code == 202
    # A running run still counts; a finished one frees its slot.
    sql(backend_env["DATABASE_URL"], "UPDATE barestack.runs SET status = 'running' WHERE id = %s", (first,))
    assert client.post(RUNS, json={}, headers=bearer(api_token)).status_code == 429
    sql(backend_env["DATABASE_URL"], "UPDATE barestack.runs SET status = 'succeeded' WHERE id = %s", (first,))
    assert client.post(RUNS, json={}, headers=bearer(api_token)).status_code == 202


def test_the_quota_holds_under_concurrent_requests(backend_env: dict[str, str], api_token: str) -> None:
    # 4 at once: the app's pool holds 4 connections, and a request uses one at a time.
    server = serve(make_app({**backend_env, "BARESTACK_RUN_QUOTA": "2"}))
    barrier = threading.Barrier(4)

    def post(_: int) -> int:
        barrier.wait()
        return post_status(server.url + RUNS, {}, bearer(api_token))

    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = sorted(pool.map(post, range(4)))
    finally:
        server.stop()
    assert statuses == [202, 202, 429, 429]
    assert count_runs(backend_env["DATABASE_URL"]) == 2


# --- malformed requests ---------------------------------------------------------------------

NESTED = "[" * 20_000 + "]" * 20_000  # deeper than Python recurses, within the body limit


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/runs?limit=²", {}, 400),
        ("GET", "/runs?limit=-1", {}, 400),
        ("GET", "/runs?limit=1e3", {}, 400),
        ("GET", "/runs?limit=0x10", {}, 400),
        ("GET", "/runs?limit=%EF%BC%91", {}, 400),  # a full-width digit one
        ("GET", "/runs?limit=99999999999999999999999", {}, 400),
        ("GET", "/runs?module=backend/..", {}, 400),
        ("GET", "/runs?module=a%00b/c", {}, 400),
        ("GET", "/runs?module=%ff%fe/x", {}, 400),
        ("GET", "/runs/not-a-uuid", {}, 404),
        ("GET", f"/runs/{uuid.uuid4().hex}", {}, 404),  # no dashes
        ("GET", f"/runs/{{{uuid.uuid4()}}}", {}, 404),  # braces
        ("GET", f"/runs/urn:uuid:{uuid.uuid4()}", {}, 404),
        ("GET", "/modules/..%2f..%2fetc/passwd", {}, 404),
        ("GET", "/modules/backend/..", {}, 404),
        ("GET", "/modules/backend/echo-001%00", {}, 404),
        ("GET", "/nowhere", {}, 404),
        ("DELETE", "/runs", {}, 405),
        ("PUT", RUNS, {"json": {}}, 405),
        ("POST", "/modules/..%2f..%2fetc/runs", {"json": {}}, 404),
        ("POST", "/modules/backend/nope-999/runs", {"json": {}}, 404),
        ("POST", RUNS, {"data": NESTED, "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": '{"args": ' + NESTED + "}", "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": b'{"args": ["\xff\xfe"]}', "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": '{"args": ["\\ud800"]}', "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": '{"args": [NaN]}', "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": "1" * 5000, "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": "", "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": "null", "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": '"args"', "content_type": "application/json"}, 400),
        ("POST", RUNS, {"data": "{}", "content_type": "application/json; charset=latin-1"}, 415),
        ("POST", RUNS, {"data": "", "content_type": "text/plain"}, 415),
        ("POST", RUNS, {"data": "{}", "content_type": "text/plain"}, 415),
        ("POST", RUNS, {}, 415),  # no body, no content type
        ("POST", RUNS, {"data": {"args": "x"}}, 415),  # a form
        ("POST", RUNS, {"data": "x" * 70_000, "content_type": "application/json"}, 413),
        ("POST", RUNS, {"json": {"args": ["y" * 4000] * 5}}, 413),  # 20,000 bytes of args
    ],
)
def test_malformed_requests_get_a_json_4xx_and_store_nothing(
    anon: FlaskClient,
    api_token: str,
    backend_env: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    response = anon.open(path, method=method, headers=bearer(api_token), **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json and response.get_json()["error"]
    assert count_runs(backend_env["DATABASE_URL"]) == 0


def test_a_405_says_which_methods_are_allowed(anon: FlaskClient, api_token: str) -> None:
    response = anon.delete("/runs", headers=bearer(api_token))
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_body_and_argument_limits_come_from_the_environment(
    backend_env: dict[str, str], api_token: str
) -> None:
    env = {**backend_env, "BARESTACK_MAX_BODY_BYTES": "100", "BARESTACK_MAX_ARGS_BYTES": "10"}
    client = make_app(env).test_client()
    big = client.post(RUNS, json={"args": ["z" * 100]}, headers=bearer(api_token))
    assert big.status_code == 413 and big.get_json()["error"] == "request entity too large"
    args = client.post(RUNS, json={"args": ["12345", "678901"]}, headers=bearer(api_token))
    assert args.status_code == 413 and args.get_json()["error"] == "arguments too large"
    assert client.post(RUNS, json={"args": ["12345", "67890"]}, headers=bearer(api_token)).status_code == 202
