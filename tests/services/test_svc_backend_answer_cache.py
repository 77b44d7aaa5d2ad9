"""The backend's kept run listings (``barestack_backend.answer_cache``) against real PostgreSQL and Redis.

/modules (with a token) and /runs are answered from one encoding per interval and process; these
tests prove the answers stay correct: fresh within the interval, at once for a run started through
the same process, never shown to a caller without a token, never kept from a failure, and 304 for
a client that already has them.
"""

import time
import uuid

import psycopg2
from barestack_backend.app import create_app
from barestack_backend.settings import DEFAULT_ANSWER_CACHE_S, Settings
from barestack_common import replay
from flask import Flask
from flask.testing import FlaskClient
from svc_testkit.api_tokens import client_with_token
from svc_testkit.ports import free_port


def make_app(env: dict[str, str]) -> Flask:
    app = create_app(Settings.from_env(env))
    app.testing = True
    return app


def insert_run(database_url: str, module: str = "echo-001", status: str = "succeeded") -> str:
    """A run as the worker leaves it, written past the API (so no process of the API knows of it)."""
    run_id = str(uuid.uuid4())
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO barestack.runs (id, service, module, args, status) "
                "VALUES (%s, 'backend', %s, '[]', %s)",
                (run_id, module, status),
            )
    finally:
        conn.close()
    return run_id


def last_run_of(client: FlaskClient, module: str) -> str | None:
    modules = {m["module"]: m for m in client.get("/modules").get_json()["modules"]}
    last = modules[module]["last_run"]
    return last["id"] if last else None


def test_listings_are_built_once_per_interval_and_show_new_runs_after_it(
    backend_env: dict[str, str], api_token: str
) -> None:
    app = make_app(backend_env)
    client = client_with_token(app, api_token)
    assert client.get("/runs?limit=5").get_json()["count"] == 0
    assert last_run_of(client, "echo-001") is None
    answers = app.extensions["barestack_backend"].answers
    built = answers.builds
    run_id = insert_run(backend_env["DATABASE_URL"])
    for _ in range(5):  # within the interval: the kept answers, no query, no encoding
        assert client.get("/runs?limit=5").get_json()["count"] == 0
    assert answers.builds == built
    time.sleep(DEFAULT_ANSWER_CACHE_S)
    assert [r["id"] for r in client.get("/runs?limit=5").get_json()["runs"]] == [run_id]
    assert last_run_of(client, "echo-001") == run_id
    assert answers.builds == built + 2
    # Each limit and filter is an answer of its own.
    assert client.get("/runs?limit=1&module=backend/fail-002").get_json()["count"] == 0


def test_a_run_started_through_the_process_shows_in_its_next_listing(
    backend_env: dict[str, str], api_token: str
) -> None:
    client = client_with_token(make_app(backend_env), api_token)
    assert client.get("/runs").get_json()["count"] == 0
    assert last_run_of(client, "echo-001") is None
    started = client.post("/modules/backend/echo-001/runs", json={"args": []})
    assert started.status_code == 202
    run_id = started.get_json()["id"]
    assert [r["id"] for r in client.get("/runs").get_json()["runs"]] == [run_id]
    assert last_run_of(client, "echo-001") == run_id


def test_a_token_holders_answer_is_never_served_without_a_token(
    backend_env: dict[str, str], api_token: str
) -> None:
    insert_run(backend_env["DATABASE_URL"])
    app = make_app(backend_env)
    client, anonymous = client_with_token(app, api_token), app.test_client()
    assert client.get("/runs").get_json()["count"] == 1
    assert last_run_of(client, "echo-001") is not None
    refused = anonymous.get("/runs")
    assert refused.status_code == 401 and "runs" not in refused.get_json()
    listing = anonymous.get("/modules").get_json()
    assert listing["runs_available"] is False and all("last_run" not in m for m in listing["modules"])
    bad = anonymous.get("/runs", headers={"Authorization": "Bearer bst_not-a-token"})
    assert bad.status_code == 401
    # A hostile query is refused before any kept answer is looked at.
    assert client.get("/runs?limit=0").status_code == 400
    assert client.get("/runs?module=../x").status_code == 400


def test_a_listing_built_while_postgres_is_down_is_not_kept(
    backend_env: dict[str, str], api_token: str
) -> None:
    """The token is checked first (cached), then PostgreSQL goes away: the failure is not kept."""
    from barestack_backend.answer_cache import AnswerCache

    app = make_app({**backend_env, "BARESTACK_TOKEN_CACHE_SECONDS": "30"})
    client = client_with_token(app, api_token)
    assert client.get("/runs").status_code == 200  # the token is now trusted for 30 s
    services = app.extensions["barestack_backend"]
    services.answers = AnswerCache(30.0)  # so nothing would expire during the test by itself
    app.extensions[replay.EXTENSION_KEY].forget()  # nor be replayed from before the swap
    working = services.database
    services.database = type(working)(f"postgresql://u:p@127.0.0.1:{free_port()}/x", application_name="t")
    down = client.get("/modules").get_json()
    assert down["runs_available"] is False
    assert client.get("/runs").status_code == 503
    services.database = working
    run_id = insert_run(backend_env["DATABASE_URL"])
    assert client.get("/modules").get_json()["runs_available"] is True
    assert last_run_of(client, "echo-001") == run_id
    assert client.get("/runs").get_json()["runs"][0]["id"] == run_id


def test_a_client_with_the_current_answer_gets_304(backend_env: dict[str, str], api_token: str) -> None:
    client = client_with_token(make_app(backend_env), api_token)
    for path in ("/modules", "/runs?limit=20"):
        first = client.get(path)
        etag = first.headers["ETag"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    insert_run(backend_env["DATABASE_URL"])
    time.sleep(DEFAULT_ANSWER_CACHE_S)
    changed = client.get("/runs?limit=20", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["count"] == 1


def test_without_keeping_every_listing_is_built_again(backend_env: dict[str, str], api_token: str) -> None:
    app = make_app({**backend_env, "BARESTACK_ANSWER_CACHE_SECONDS": "0"})
    client = client_with_token(app, api_token)
    assert client.get("/runs").get_json()["count"] == 0
    run_id = insert_run(backend_env["DATABASE_URL"])
    assert client.get("/runs").get_json()["runs"][0]["id"] == run_id
    assert app.extensions["barestack_backend"].answers.builds == 2


def test_health_kept_for_a_token_holder_never_reaches_an_anonymous_caller(
    backend_env: dict[str, str], api_token: str
) -> None:
    """/health's answer is encoded once per check result and kind of caller: the messages naming
    hosts and ports stay with token holders even when they asked first."""
    env = {**backend_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    app = make_app(env)
    detailed = client_with_token(app, api_token).get("/health")
    assert detailed.status_code == 503
    assert "refused" in detailed.get_json()["checks"]["redis"]["message"].lower()
    for _ in range(2):
        anonymous = app.test_client().get("/health")
        redis_check = anonymous.get_json()["checks"]["redis"]
        assert anonymous.status_code == 503 and redis_check["error"] == "ConnectionError"
        assert "127.0.0.1" not in anonymous.get_data(as_text=True)
        assert "refused" not in redis_check["message"].lower()
