"""Answers replayed to identical requests before Flask (``barestack_common.replay``).

The backend and the frontend run against real PostgreSQL and Redis; the rules the middleware
applies to any app (what is kept, what passes, what a write does) are checked on a small Flask
app of the test's own. Each test reads the middleware's replay count, so an assertion that an
answer was or was not replayed is about the middleware, not inferred from timing.
"""

import time
from collections.abc import Iterator

import psycopg2
import pytest
from barestack_backend.app import create_app as create_backend
from barestack_backend.settings import Settings as BackendSettings
from barestack_common import replay
from barestack_frontend.app import create_app as create_frontend
from barestack_frontend.settings import Settings as FrontendSettings
from flask import Flask, Response, request
from flask.testing import FlaskClient
from svc_testkit.accounts import PERSON, login
from svc_testkit.api_tokens import bearer, issue_token
from svc_testkit.live_server import LiveServer, serve

PROXIED = {
    "X-Forwarded-Prefix": "/api",
    "X-Forwarded-Host": "stack.example.test",
    "X-Forwarded-Proto": "https",
}


def backend_app(env: dict[str, str], **settings: str) -> Flask:
    app = create_backend(BackendSettings.from_env({**env, **settings}))
    app.testing = True
    return app


def replays(app: Flask) -> int:
    return app.extensions[replay.EXTENSION_KEY].replays  # type: ignore[no-any-return]


def test_the_same_request_gets_the_same_answer_without_the_app(
    backend_env: dict[str, str], api_token: str
) -> None:
    app = backend_app(backend_env)
    client = app.test_client()
    for path in ("/modules", "/runs?limit=20", "/health"):
        first = client.get(path, headers=bearer(api_token))
        before = replays(app)
        again = client.get(path, headers=bearer(api_token))
        assert replays(app) == before + 1, path
        assert again.status_code == first.status_code == 200
        assert again.get_data() == first.get_data()
        assert sorted(again.headers.items()) == sorted(first.headers.items())


def test_another_credential_prefix_or_query_is_another_request(
    backend_env: dict[str, str], api_token: str
) -> None:
    app = backend_app(backend_env)
    client = app.test_client()
    with_token = client.get("/modules", headers=bearer(api_token)).get_json()
    assert with_token["runs_available"] is True
    before = replays(app)
    anonymous = client.get("/modules").get_json()
    assert anonymous["runs_available"] is False and "last_run" not in anonymous["modules"][0]
    other_token = issue_token(backend_env["DATABASE_URL"], "second")
    assert client.get("/modules", headers=bearer(other_token)).status_code == 200
    proxied = client.get("/modules", headers={**bearer(api_token), **PROXIED}).get_json()
    assert proxied["modules"][0]["url"].startswith("/api/modules/")
    assert client.get("/modules?service=frontend", headers=bearer(api_token)).get_json()["count"] == 1
    refused = client.get("/runs", headers=bearer("bst_" + "x" * 43))
    assert refused.status_code == 401
    assert replays(app) == before  # none of these was the first request again


def test_a_revoked_token_is_refused_when_the_token_cache_would_refuse_it(
    backend_env: dict[str, str], api_token: str
) -> None:
    """Answers are kept 30 s here, tokens trusted 1 s: the token, not the answer, ends the replays."""
    app = backend_app(backend_env, BARESTACK_ANSWER_CACHE_SECONDS="30", BARESTACK_TOKEN_CACHE_SECONDS="1")
    client = app.test_client()
    assert client.get("/runs", headers=bearer(api_token)).status_code == 200
    conn = psycopg2.connect(backend_env["DATABASE_URL"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE barestack.api_tokens SET revoked_at = now() WHERE name = 'tester'")
    finally:
        conn.close()
    revoked_at = time.monotonic()
    statuses = []
    while time.monotonic() - revoked_at < 2.5:
        statuses.append(client.get("/runs", headers=bearer(api_token)).status_code)
        if statuses[-1] != 200:
            break
        time.sleep(0.05)
    assert replays(app) > 0  # the token's answer was being replayed...
    assert statuses[-1] == 401, statuses  # ...and stopped with the token's trust, not the answer's
    assert time.monotonic() - revoked_at < 1.5


def test_a_write_forgets_every_kept_answer(backend_env: dict[str, str], api_token: str) -> None:
    app = backend_app(backend_env, BARESTACK_ANSWER_CACHE_SECONDS="30")
    client = app.test_client()
    assert client.get("/runs", headers=bearer(api_token)).get_json()["count"] == 0
    assert client.get("/runs", headers=bearer(api_token)).get_json()["count"] == 0
    before = replays(app)
    started = client.post("/modules/backend/echo-001/runs", json={"args": []}, headers=bearer(api_token))
    assert started.status_code == 202
    runs = client.get("/runs", headers=bearer(api_token)).get_json()["runs"]
    assert [run["id"] for run in runs] == [started.get_json()["id"]]
    assert replays(app) == before


def test_conditional_requests_reach_the_app(backend_env: dict[str, str], api_token: str) -> None:
    app = backend_app(backend_env)
    client = app.test_client()
    etag = client.get("/modules", headers=bearer(api_token)).headers["ETag"]
    before = replays(app)
    again = client.get("/modules", headers={**bearer(api_token), "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert replays(app) == before


# The rules on an app of the test's own: what each route answers says what replay must do.


@pytest.fixture
def rules_app() -> Iterator[tuple[Flask, FlaskClient, list[str]]]:
    app = Flask("replay-rules")
    app.testing = True
    calls: list[str] = []

    def answer(name: str, status: int = 200, offered_for: float | None = 30.0) -> Response:
        calls.append(name)
        if offered_for is not None:
            replay.offer(request.environ, time.monotonic() + offered_for)
        return Response(f"{name} {len(calls):04d}", status=status)  # one length per route

    app.add_url_rule("/offered", "offered", lambda: answer("offered"))
    app.add_url_rule("/failed", "failed", lambda: answer("failed", 503))
    app.add_url_rule("/not-offered", "not_offered", lambda: answer("not-offered", offered_for=None))
    app.add_url_rule("/expired", "expired", lambda: answer("expired", offered_for=-1))
    app.add_url_rule("/short", "short", lambda: answer("short", offered_for=0.2))

    @app.get("/cookie")
    def cookie() -> Response:
        response = answer("cookie")
        response.set_cookie("seen", "1")
        return response

    @app.get("/bounded")
    def bounded() -> Response:
        replay.bound(request.environ, time.monotonic() - 1)  # e.g. a credential no longer trusted
        return answer("bounded")

    @app.get("/checked")
    def checked() -> Response:
        replay.offer(request.environ, time.monotonic() + 30, lambda: "stale" not in calls)
        return answer("checked", offered_for=None)

    app.add_url_rule("/write", "write", lambda: answer("write", offered_for=None), methods=["POST"])
    replay.install(app)
    yield app, app.test_client(), calls


def test_only_offered_fresh_cookieless_200s_are_replayed(
    rules_app: tuple[Flask, FlaskClient, list[str]],
) -> None:
    _app, client, calls = rules_app
    first = client.get("/offered").get_data()
    assert client.get("/offered").get_data() == first and calls == ["offered"]
    for path in ("/failed", "/not-offered", "/expired", "/cookie", "/bounded"):
        client.get(path)
        client.get(path)
        assert calls.count(path.lstrip("/")) == 2, path
    assert client.head("/offered").status_code == 200 and calls.count("offered") == 2  # HEAD: to the app
    assert client.get("/offered?x=1").get_data() != first  # another query, another request


def test_a_kept_answer_ends_at_its_deadline_or_when_no_longer_valid(
    rules_app: tuple[Flask, FlaskClient, list[str]],
) -> None:
    _app, client, calls = rules_app
    client.get("/short")
    client.get("/short")
    assert calls.count("short") == 1
    time.sleep(0.25)
    client.get("/short")
    assert calls.count("short") == 2
    client.get("/checked")
    client.get("/checked")
    assert calls.count("checked") == 1
    calls.append("stale")  # what the answer was built from changed: still_valid() now says no
    client.get("/checked")
    assert calls.count("checked") == 2


def test_a_write_forgets_and_kept_bodies_are_bounded(rules_app: tuple[Flask, FlaskClient, list[str]]) -> None:
    app, client, calls = rules_app
    client.get("/offered")
    client.post("/write")
    client.get("/offered")
    assert calls == ["offered", "write", "offered"]
    middleware = app.extensions[replay.EXTENSION_KEY]
    middleware.MAX_BYTES = len(client.get("/offered").get_data()) * 2 + 1  # room for two bodies
    middleware.forget()
    for query in ("a", "b", "c"):  # c does not fit beside a and b: they are dropped, c is kept
        client.get(f"/offered?{query}")
    calls.clear()
    client.get("/offered?c")
    client.get("/offered?a")
    assert calls == ["offered"]


# The frontend's anonymous front page.


@pytest.fixture
def live_backend_app(backend_env: dict[str, str]) -> Iterator[LiveServer]:
    server = serve(create_backend(BackendSettings.from_env(backend_env)))
    yield server
    server.stop()


def test_the_anonymous_front_page_is_replayed_a_logged_in_one_never(
    live_backend_app: LiveServer, auth_env: dict[str, str]
) -> None:
    env = {"BACKEND_API_URL": live_backend_app.url, "BARESTACK_CATALOGUE_TTL": "30", **auth_env}
    app = create_frontend(FrontendSettings.from_env(env))
    app.testing = True
    anonymous = app.test_client()
    first = anonymous.get("/")
    assert first.status_code == 200 and "backend/echo-001" in first.get_data(as_text=True)
    before = replays(app)
    assert anonymous.get("/").get_data() == first.get_data()
    assert replays(app) == before + 1
    person = app.test_client()
    login(person, PERSON)
    for _ in range(2):
        page = person.get("/")
        assert "Logged in as" in page.get_data(as_text=True)
    assert replays(app) == before + 1
