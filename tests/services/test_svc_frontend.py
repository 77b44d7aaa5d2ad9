"""The frontend against a real backend (served on loopback, itself on real PostgreSQL and Redis)."""

import re
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from barestack_backend.app import create_app as create_backend
from barestack_backend.settings import Settings as BackendSettings
from barestack_frontend.app import create_app
from barestack_frontend.settings import ConfigError, Settings
from flask.testing import FlaskClient
from svc_testkit.accounts import PERSON, login, session_csrf
from svc_testkit.ports import free_port
from svc_testkit.runs_db import count_runs, fetch_run


def frontend_for(backend_url: str, auth_env: dict[str, str]) -> FlaskClient:
    app = create_app(Settings.from_env({"BACKEND_API_URL": backend_url, **auth_env}))
    app.testing = True
    return app.test_client()


@pytest.fixture
def anonymous(live_backend: str, auth_env: dict[str, str]) -> FlaskClient:
    return frontend_for(live_backend, auth_env)


@pytest.fixture
def client(anonymous: FlaskClient) -> FlaskClient:
    """A browser with a person logged in (runs need a login; the catalogue does not)."""
    login(anonymous, PERSON)
    return anonymous


def form(client: FlaskClient, **fields: str) -> dict[str, str]:
    """A form's fields as the page sends them: with the session's CSRF token."""
    return {"csrf_token": session_csrf(client), **fields}


def test_settings_require_a_usable_backend_url() -> None:
    with pytest.raises(ConfigError, match="BACKEND_API_URL is not set"):
        Settings.from_env({})
    with pytest.raises(ConfigError, match="BACKEND_API_URL must be a URL"):
        Settings.from_env({"BACKEND_API_URL": "ftp://backend"})
    with pytest.raises(ConfigError, match="BACKEND_TIMEOUT must be between"):
        Settings.from_env({"BACKEND_API_URL": "http://127.0.0.1:5000", "BACKEND_TIMEOUT": "600"})


def test_index_lists_every_module_with_a_run_button(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ("backend/echo-001", "backend/fail-002", "frontend/page-001"):
        assert f">{name}</a>" in html
        assert f'aria-label="Run {name}"' in html
    assert 'action="/modules/backend/echo-001/run"' in html
    assert "6 of 6 modules" in html and "never run" in html


def test_index_filter(client: FlaskClient) -> None:
    html = client.get("/?q=FAIL").get_data(as_text=True)
    assert "backend/fail-002" in html and "backend/echo-001" not in html
    assert "1 of 6 modules" in html


def test_run_button_starts_a_run_and_redirects_to_its_page(
    client: FlaskClient, backend_env: dict[str, str]
) -> None:
    response = client.post("/modules/backend/echo-001/run", data=form(client, args="--name 'two words'"))
    assert response.status_code == 303
    match = re.fullmatch(r"/runs/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    row = fetch_run(backend_env["DATABASE_URL"], match.group(1))
    assert row["args"] == ["--name", "two words"] and row["status"] == "queued"
    # The frontend's token acts for the logged-in person: the run records who started it.
    assert row["requested_by"] == PERSON.name and row["requested_via"] == "frontend"

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Run of backend/echo-001" in page
    assert f'<dd id="requested-by">{PERSON.name}</dd>' in page
    assert '<span class="status status-queued" id="run-status">queued</span>' in page
    assert '<meta http-equiv="refresh" content="2">' in page  # keeps refreshing until the run ends
    # "Run again" re-sends the arguments spelled so that they split the same way.
    assert 'value="--name &#39;two words&#39;"' in page


def test_a_finished_run_page_shows_the_result_and_stops_refreshing(
    client: FlaskClient, backend_env: dict[str, str]
) -> None:
    from barestack_backend.worker import build_worker
    from barestack_backend.worker_settings import WorkerSettings

    location = client.post("/modules/backend/fail-002/run", data=form(client, args="")).headers["Location"]
    worker = build_worker(
        # No systemd as PID 1 here: the run goes unsandboxed, as in the worker's own tests.
        WorkerSettings.from_env(
            {**backend_env, "BARESTACK_WORKER_NAME": "w", "BARESTACK_RUN_SANDBOX": "none"}
        ),
        threading.Event(),
    )
    worker.queue.ensure_group()
    for entry in worker.queue.read_new("w", block_ms=100):
        worker.process(entry)
    page = client.get(location).get_data(as_text=True)
    assert '<span class="status status-failed" id="run-status">failed</span>' in page
    assert '<dd id="exit-code">3</dd>' in page
    assert "boom: something broke" in page and "about to fail" in page
    assert 'http-equiv="refresh"' not in page


def test_bad_arguments_are_explained_on_the_module_page(
    client: FlaskClient, backend_env: dict[str, str]
) -> None:
    unbalanced = client.post("/modules/backend/echo-001/run", data=form(client, args="'oops"))
    assert unbalanced.status_code == 400
    assert "The arguments cannot be read" in unbalanced.get_data(as_text=True)
    too_many = client.post("/modules/backend/echo-001/run", data=form(client, args=" ".join(["x"] * 65)))
    assert too_many.status_code == 400
    assert "The run was refused" in too_many.get_data(as_text=True)


def test_unknown_pages_are_404_pages(client: FlaskClient) -> None:
    assert client.get("/modules/backend/nope-999").status_code == 404
    assert client.post("/modules/backend/nope-999/run", data=form(client)).status_code == 404
    missing = client.get(f"/runs/{uuid.uuid4()}")
    assert missing.status_code == 404 and "There is no run" in missing.get_data(as_text=True)


def test_cross_site_posts_are_refused(client: FlaskClient, backend_env: dict[str, str]) -> None:
    # Refused even with the right CSRF token: the Origin check stands on its own.
    evil = client.post(
        "/modules/backend/echo-001/run", data=form(client), headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    fetch_site = client.post(
        "/modules/backend/echo-001/run", data=form(client), headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetch_site.status_code == 403
    same = client.post(
        "/modules/backend/echo-001/run",
        data=form(client),
        headers={"Origin": "https://stack.example.test", "X-Forwarded-Host": "stack.example.test"},
    )
    assert same.status_code == 303


def test_links_forms_and_redirects_carry_the_proxy_prefix(client: FlaskClient) -> None:
    headers = {
        "X-Forwarded-Prefix": "/app",
        "X-Forwarded-Host": "stack.example.test",
        "X-Forwarded-Proto": "https",
    }
    html = client.get("/", headers=headers).get_data(as_text=True)
    assert 'href="/app/static/style.css"' in html
    assert 'href="/app/modules/backend/echo-001"' in html
    assert 'action="/app/modules/backend/echo-001/run"' in html
    assert not re.search(r'(href|action)="/(?!app/)', html), "every link must carry the prefix"
    redirect = client.post("/modules/backend/echo-001/run", data=form(client), headers=headers)
    assert redirect.headers["Location"].startswith("/app/runs/")


def test_backend_down_is_a_clear_503_page_not_a_traceback(auth_env: dict[str, str]) -> None:
    client = frontend_for(f"http://127.0.0.1:{free_port()}", auth_env)
    response = client.get("/")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "The backend is not available" in html and "Traceback" not in html
    login(client, PERSON)  # logging in needs the accounts file only, not the backend
    assert client.post("/modules/backend/echo-001/run", data=form(client)).status_code == 503
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "degraded"
    assert health.get_json()["checks"]["backend"]["ok"] is False


def test_health_reports_a_working_backend(client: FlaskClient) -> None:
    body = client.get("/health").get_json()
    assert body["status"] == "ok"
    assert body["checks"]["backend"]["ok"] is True and body["checks"]["backend"]["status"] == "ok"


@pytest.fixture
def unix_socket_backend(backend_env: dict[str, str]) -> Iterator[str]:
    import threading

    from werkzeug.serving import make_server

    socket_dir = Path(tempfile.mkdtemp(prefix="barestack-sock-"))
    socket_path = socket_dir / "backend.sock"
    server = make_server(f"unix://{socket_path}", 0, create_backend(BackendSettings.from_env(backend_env)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http+unix://{quote(str(socket_path), safe='')}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()
    socket_path.unlink(missing_ok=True)
    socket_dir.rmdir()


def test_the_backend_can_be_reached_over_a_unix_socket(
    unix_socket_backend: str, auth_env: dict[str, str]
) -> None:
    client = frontend_for(unix_socket_backend, auth_env)
    assert client.get("/health").get_json()["status"] == "ok"
    assert "backend/echo-001" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("token", [None, "bst_not-a-token-the-backend-knows-of-at-all"])
def test_without_a_valid_backend_token_runs_are_refused_clearly(
    live_backend: str, auth_env: dict[str, str], backend_env: dict[str, str], token: str | None
) -> None:
    env = {k: v for k, v in auth_env.items() if k != "BARESTACK_FRONTEND_TOKEN"}
    if token is not None:
        env["BARESTACK_FRONTEND_TOKEN"] = token
    client = frontend_for(live_backend, env)
    login(client, PERSON)
    response = client.post("/modules/backend/echo-001/run", data=form(client, args=""))
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "The frontend may not use the backend" in html
    assert "check BARESTACK_FRONTEND_TOKEN" in html and (token is None or token not in html)
    assert count_runs(backend_env["DATABASE_URL"]) == 0


def test_the_backends_run_quota_is_explained(backend_env: dict[str, str], auth_env: dict[str, str]) -> None:
    from svc_testkit.live_server import serve

    backend = serve(create_backend(BackendSettings.from_env({**backend_env, "BARESTACK_RUN_QUOTA": "1"})))
    try:
        client = frontend_for(backend.url, auth_env)
        login(client, PERSON)
        assert client.post("/modules/backend/echo-001/run", data=form(client, args="")).status_code == 303
        second = client.post("/modules/backend/echo-001/run", data=form(client, args=""))
    finally:
        backend.stop()
    assert second.status_code == 429
    assert "The run was refused" in second.get_data(as_text=True)
    assert count_runs(backend_env["DATABASE_URL"]) == 1


def test_the_user_header_goes_only_with_a_logged_in_person(
    live_backend: str, auth_env: dict[str, str], api_token: str
) -> None:
    # A token that may not act for users: the backend answers 403 to any call naming a user, so
    # the anonymous pages working proves that they name nobody, and the logged-in ones failing
    # proves that they do name the person.
    client = frontend_for(live_backend, {**auth_env, "BARESTACK_FRONTEND_TOKEN": api_token})
    assert client.get("/").status_code == 200
    assert client.get("/modules/backend/echo-001").status_code == 200
    login(client, PERSON)
    refused = client.get("/")
    assert refused.status_code == 503 and "HTTP 403" in refused.get_data(as_text=True)
