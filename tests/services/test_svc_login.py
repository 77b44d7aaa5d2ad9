"""Logging in on the frontend: the form, the session cookie, CSRF, redirects, and the accounts CLI.

The frontend talks to the real backend (PostgreSQL, Redis); the accounts file is real and the
sync CLI runs as a subprocess, as the Ansible role runs it.
"""

import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from barestack_common.env import ConfigError
from barestack_frontend.app import create_app
from barestack_frontend.settings import Settings
from flask.testing import FlaskClient
from itsdangerous import BadSignature
from svc_testkit.accounts import PERSON, User, csrf_from, login, session_csrf, write_accounts
from svc_testkit.ports import free_port
from svc_testkit.runs_db import count_runs

REPO = Path(__file__).resolve().parents[2]
FAILED = "The user name or password is wrong."


def frontend(backend_url: str, env: dict[str, str]) -> FlaskClient:
    app = create_app(Settings.from_env({"BACKEND_API_URL": backend_url, **env}))
    app.testing = True
    return app.test_client()


@pytest.fixture
def browser(live_backend: str, auth_env: dict[str, str]) -> FlaskClient:
    return frontend(live_backend, auth_env)


def login_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    page = client.get("/login")
    return {"csrf_token": csrf_from(page.get_data(as_text=True)), **fields}


def set_cookie_header(response: object) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("barestack_session=")]  # type: ignore[attr-defined]
    assert len(headers) == 1, headers
    return headers[0]


def test_login_sets_a_strict_session_cookie_and_goes_where_asked(browser: FlaskClient) -> None:
    data = login_form(
        browser, username=PERSON.name, password=PERSON.password, next="/modules/backend/echo-001"
    )
    response = browser.post("/login", data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == "/modules/backend/echo-001"
    cookie = set_cookie_header(response)
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes, "Secure only when BARESTACK_COOKIE_SECURE=1"
    expires = next(a for a in attributes if a.startswith("expires="))
    assert expires, "a permanent (8 h) cookie"
    assert PERSON.password not in cookie
    index = browser.get("/")
    assert index.headers["Cache-Control"] == "private, no-store"
    page = index.get_data(as_text=True)
    assert f"Logged in as <strong>{PERSON.name}</strong>" in page
    assert 'aria-label="Run backend/echo-001"' in page


def test_the_cookie_is_secure_when_configured(live_backend: str, auth_env: dict[str, str]) -> None:
    client = frontend(live_backend, {**auth_env, "BARESTACK_COOKIE_SECURE": "1"})
    response = client.post("/login", data=login_form(client, username=PERSON.name, password=PERSON.password))
    assert response.status_code == 303
    assert "secure" in [p.strip().lower() for p in set_cookie_header(response).split(";")]
    with pytest.raises(ConfigError, match="BARESTACK_COOKIE_SECURE must be 1 or 0"):
        Settings.from_env({"BACKEND_API_URL": live_backend, **auth_env, "BARESTACK_COOKIE_SECURE": "maybe"})


def test_wrong_password_and_unknown_user_get_the_same_401(browser: FlaskClient) -> None:
    def attempt(name: str, password: str) -> tuple[int, str, float]:
        data = login_form(browser, username=name, password=password)
        started = time.perf_counter()
        response = browser.post("/login", data=data)
        return response.status_code, response.get_data(as_text=True), time.perf_counter() - started

    wrong_status, wrong_page, _ = attempt(PERSON.name, "not-the-password")
    unknown_status, unknown_page, _ = attempt("nobody", "not-the-password")
    assert wrong_status == unknown_status == 401
    for page in (wrong_page, unknown_page):
        assert FAILED in page and 'name="password"' in page and "not-the-password" not in page
    assert wrong_page.replace(PERSON.name, "nobody").count(FAILED) == unknown_page.count(FAILED)
    assert browser.get_cookie("barestack_session") is not None  # the CSRF session, without a user
    assert "Logged in as" not in browser.get("/").get_data(as_text=True)
    # An unknown name costs a password check too (against a dummy hash): no fast "no such user".
    known = sorted(attempt(PERSON.name, "not-the-password")[2] for _ in range(3))[1]
    unknown = sorted(attempt("nobody", "not-the-password")[2] for _ in range(3))[1]
    assert unknown > known * 0.3, f"unknown user {unknown * 1000:.1f} ms vs known {known * 1000:.1f} ms"


def test_login_and_logout_need_the_csrf_token(browser: FlaskClient) -> None:
    credentials = {"username": PERSON.name, "password": PERSON.password}
    assert browser.post("/login", data=credentials).status_code == 403  # no session, no token
    browser.get("/login")
    assert browser.post("/login", data=credentials).status_code == 403  # token missing
    assert browser.post("/login", data={**credentials, "csrf_token": "forged"}).status_code == 403
    assert "Logged in as" not in browser.get("/").get_data(as_text=True)

    login(browser, PERSON)
    assert browser.post("/logout", data={"other": "field"}).status_code == 403
    assert browser.post("/logout").status_code == 400  # not even a form
    assert browser.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert "Logged in as" in browser.get("/").get_data(as_text=True)
    assert browser.post("/logout", data={"csrf_token": session_csrf(browser)}).status_code == 303
    assert "Logged in as" not in browser.get("/").get_data(as_text=True)


def test_a_new_session_at_login(browser: FlaskClient) -> None:
    browser.get("/login")
    before = session_csrf(browser)
    login(browser, PERSON)
    assert session_csrf(browser) != before, "the CSRF token (and session) must change at login"


def test_run_posts_need_the_token_a_form_and_this_site(browser: FlaskClient, clean_runs: str) -> None:
    login(browser, PERSON)
    path = "/modules/backend/echo-001/run"
    assert browser.post(path, data={"args": ""}).status_code == 403
    assert browser.post(path, data={"args": "", "csrf_token": "x" * 43}).status_code == 403
    text_plain = browser.post(
        path, data=f"csrf_token={session_csrf(browser)}&args=", content_type="text/plain"
    )
    assert text_plain.status_code == 400
    cross = browser.post(
        path, data={"csrf_token": session_csrf(browser)}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert count_runs(clean_runs) == 0, "no refused post may start a run"
    assert browser.post(path, data={"csrf_token": session_csrf(browser)}).status_code == 303
    assert count_runs(clean_runs) == 1


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "https://evil.example/", "/\\evil.example", "///evil.example", "/\t/evil.example", ""],
)
def test_next_never_leaves_the_site(browser: FlaskClient, target: str) -> None:
    page = browser.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert "evil.example" not in page
    data = login_form(browser, username=PERSON.name, password=PERSON.password, next=target)
    response = browser.post("/login", data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_anonymous_visitors_see_the_catalogue_but_no_runs(browser: FlaskClient, clean_runs: str) -> None:
    index = browser.get("/")
    assert index.status_code == 200
    html = index.get_data(as_text=True)
    assert ">backend/echo-001</a>" in html and "6 of 6 modules" in html
    assert 'aria-label="Run' not in html and "csrf_token" not in html
    assert 'href="/login?next=/"' in html
    assert browser.get_cookie("barestack_session") is None, "no session for catalogue visitors"
    module = browser.get("/modules/backend/echo-001").get_data(as_text=True)
    assert "backend/echo-001" in module and "Recent runs" not in module and 'method="post"' not in module

    run_path = f"/runs/{uuid.uuid4()}"
    run_page = browser.get(run_path)
    assert run_page.status_code == 401
    assert f'href="/login?next={run_path}"' in run_page.get_data(as_text=True)
    refused = browser.post("/modules/backend/echo-001/run", data={"args": ""})
    assert refused.status_code == 401
    assert 'href="/login?next=/modules/backend/echo-001"' in refused.get_data(as_text=True)
    assert count_runs(clean_runs) == 0


def test_body_limit(live_backend: str, auth_env: dict[str, str]) -> None:
    client = frontend(live_backend, {**auth_env, "BARESTACK_MAX_BODY_BYTES": "2000"})
    big = login_form(client, username=PERSON.name, password="x" * 3000)
    response = client.post("/login", data=big)
    assert response.status_code == 413 and "Traceback" not in response.get_data(as_text=True)
    default = frontend(live_backend, auth_env)
    assert (
        default.post("/login", data=login_form(default, username="a", password="x" * 70_000)).status_code
        == 413
    )
    assert (
        default.post("/login", data=login_form(default, username="a", password="x" * 60_000)).status_code
        == 401
    )


def test_malformed_requests_get_4xx_never_500(browser: FlaskClient) -> None:
    token = {"csrf_token": csrf_from(browser.get("/login").get_data(as_text=True))}
    cases = [
        browser.post(
            "/login", data=b"\xff\xfe=\xff&csrf_token=%ZZ", content_type="application/x-www-form-urlencoded"
        ),
        browser.post("/login", data=b"--x\r\nbroken", content_type="multipart/form-data; boundary=x"),
        browser.post("/login", data=b"{}", content_type="application/json"),
        browser.post("/login", data={**token, "username": "\u00e9\u0000" * 10, "password": "\ud7ff" * 20}),
        browser.post(
            "/login",
            data={**token, "username": PERSON.name, "password": PERSON.password, "next": "/\u00e9?\u2028"},
        ),
        browser.get("/login?next=%FF%FE"),
        browser.get("/runs/not-a-uuid"),
        browser.put("/login"),
        browser.get("/modules/" + "x" * 5000 + "/y"),
    ]
    # A correctly signed session with nonsense in it is just "not logged in".
    app = browser.application
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    odd = serializer.dumps({"user": ["x"], "at": "soon", "csrf": 5})
    assert serializer.loads(odd) == {"user": ["x"], "at": "soon", "csrf": 5}
    fresh = app.test_client()
    fresh.set_cookie("barestack_session", odd, path="/")
    cases.append(fresh.get(f"/runs/{uuid.uuid4()}"))
    cases.append(fresh.post("/logout", data={"csrf_token": "5"}))
    statuses = [response.status_code for response in cases]
    # Bad bytes and broken multipart carry no valid token (403); JSON is not a form (400); odd but
    # harmless input logs in (303) or is ignored (200); the odd session is nobody (401, 403).
    assert statuses == [403, 403, 400, 401, 303, 200, 404, 405, 404, 401, 403], statuses


def test_login_settings(live_backend: str, auth_env: dict[str, str], tmp_path: Path) -> None:
    env = {"BACKEND_API_URL": live_backend, **auth_env}
    with pytest.raises(ConfigError, match="SECRET_KEY is not set, but the accounts file"):
        Settings.from_env({k: v for k, v in env.items() if k != "SECRET_KEY"})
    with pytest.raises(ConfigError, match="SECRET_KEY is too short"):
        Settings.from_env({**env, "SECRET_KEY": "0123456789"})
    with pytest.raises(ConfigError, match="BARESTACK_FRONTEND_TOKEN must be printable ASCII"):
        Settings.from_env({**env, "BARESTACK_FRONTEND_TOKEN": "two words"})
    settings = Settings.from_env(env)
    assert auth_env["SECRET_KEY"] not in repr(settings) and auth_env["BARESTACK_FRONTEND_TOKEN"] not in repr(
        settings
    )
    # Nothing configured: the catalogue works, logging in says it is not set up.
    bare = frontend(live_backend, {"BARESTACK_ACCOUNTS_FILE": str(tmp_path / "absent.json")})
    assert bare.get("/").status_code == 200
    assert bare.get("/login").status_code == 503
    assert bare.get(f"/runs/{uuid.uuid4()}").status_code == 401


def test_sessions_end_after_8_hours_and_with_a_password_change(
    live_backend: str, auth_env: dict[str, str], tmp_path: Path
) -> None:
    user = User("changer", "first-password-here", operator=False)
    path = tmp_path / "accounts.json"
    write_accounts(path, [user])
    client = frontend(live_backend, {**auth_env, "BARESTACK_ACCOUNTS_FILE": str(path)})
    login(client, user)
    run_path = f"/runs/{uuid.uuid4()}"
    assert client.get(run_path).status_code == 404  # logged in: the backend answers "no such run"
    with client.session_transaction() as session:
        session["at"] -= 8 * 3600 + 1
    assert client.get(run_path).status_code == 401

    login(client, user)
    assert client.get(run_path).status_code == 404
    write_accounts(path, [User(user.name, "second-password-here", operator=False)])
    assert client.get(run_path).status_code == 401
    login(client, User(user.name, "second-password-here", operator=False))
    write_accounts(path, [])
    assert client.get(run_path).status_code == 401


# --- python -m barestack_frontend.accounts sync, as the Ansible role runs it ---------------------------


def sync(path: Path, users: object, *options: str) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(str(REPO / "services" / d) for d in ("frontend", "_lib"))
    return subprocess.run(
        [sys.executable, "-m", "barestack_frontend.accounts", "sync", *options, str(path)],
        input=users if isinstance(users, str) else json.dumps(users),
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": pythonpath},
        timeout=60,
        check=False,
    )


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_accounts_sync_cli(tmp_path: Path, live_backend: str) -> None:
    path = tmp_path / "accounts.json"
    alice = {"name": "alice", "password": "alice-long-password", "operator": True}
    bob = {"name": "bob", "password": "bob-long-password-1", "operator": False}

    checked = sync(path, [alice, bob], "--check")
    assert outcome(checked) == {"changed": True, "added": ["alice", "bob"], "updated": [], "removed": []}
    assert not path.exists(), "--check changes nothing"

    first = sync(path, [alice, bob], "--group", "root")
    assert outcome(first) == {"changed": True, "added": ["alice", "bob"], "updated": [], "removed": []}
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_gid == 0
    if os.geteuid() == 0:
        assert info.st_uid == 0
    stored = json.loads(path.read_text())
    assert set(stored["users"]) == {"alice", "bob"} and stored["users"]["alice"]["operator"] is True
    assert stored["users"]["bob"]["password_hash"].startswith("scrypt:")
    for result in (checked, first):
        for secret in (alice["password"], bob["password"], stored["users"]["bob"]["password_hash"]):
            assert secret not in result.stdout + result.stderr

    before = path.read_bytes()
    again = sync(path, [alice, bob], "--group", "root")
    assert outcome(again) == {"changed": False, "added": [], "updated": [], "removed": []}
    assert path.read_bytes() == before, "an idempotent re-run keeps the hashes"

    # The services take the file as it is: alice can log in with it.
    client = frontend(live_backend, {"BARESTACK_ACCOUNTS_FILE": str(path), "SECRET_KEY": "k" * 40})
    login(client, User("alice", str(alice["password"]), operator=True))

    changed_password = {**bob, "password": "bob-new-password-2"}
    promoted = {**alice, "operator": False}
    update = sync(path, [promoted, changed_password], "--group", "root")
    assert outcome(update) == {"changed": True, "added": [], "updated": ["alice", "bob"], "removed": []}
    stored_now = json.loads(path.read_text())
    assert stored_now["users"]["alice"]["password_hash"] == stored["users"]["alice"]["password_hash"]
    assert stored_now["users"]["alice"]["operator"] is False
    assert stored_now["users"]["bob"]["password_hash"] != stored["users"]["bob"]["password_hash"]

    path.chmod(0o644)
    fixed = sync(path, [promoted, changed_password], "--group", "root")
    assert outcome(fixed)["changed"] is True and stat.S_IMODE(path.stat().st_mode) == 0o640

    removal_check = sync(path, [promoted], "--check")
    assert outcome(removal_check) == {"changed": True, "added": [], "updated": [], "removed": ["bob"]}
    assert "bob" in json.loads(path.read_text())["users"]
    removal = sync(path, [promoted])
    assert outcome(removal) == {"changed": True, "added": [], "updated": [], "removed": ["bob"]}
    assert list(json.loads(path.read_text())["users"]) == ["alice"]
    assert not [p for p in tmp_path.iterdir() if p.name != "accounts.json"], "no temporary file left behind"


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([{"name": "Bad Name", "password": "long-enough-password"}], "entry 0 ('Bad Name'): name must match"),
        ([{"name": "carol", "password": "short-pw"}], "entry 0 ('carol'): password must be"),
        ([{"name": "carol", "password": "long-enough-password", "operator": "yes"}], "operator must be"),
        ([{"name": "c", "password": "long-enough-password"}] * 2, "entry 1 ('c'): user 'c' is listed twice"),
        ([{"name": "d", "password": "long-enough-password", "role": "x"}], "unknown keys role"),
        ({"name": "d"}, "stdin must be a JSON list"),
        ("not json", "stdin is not JSON"),
    ],
)
def test_accounts_sync_refuses_bad_input(tmp_path: Path, users: object, message: str) -> None:
    path = tmp_path / "accounts.json"
    result = sync(path, users)
    assert result.returncode == 2, result
    assert message in result.stderr and result.stdout == ""
    assert "short-pw" not in result.stderr and "long-enough-password" not in result.stderr
    assert not path.exists()
    unknown_group = sync(path, [], "--group", "no-such-group-here")
    assert unknown_group.returncode == 2 and "no group" in unknown_group.stderr


def test_accounts_sync_replaces_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text("{broken")
    result = sync(path, [{"name": "erin", "password": "erin-long-password"}])
    assert outcome(result)["added"] == ["erin"] and "not a valid accounts file" in result.stderr
    assert re.search(r'"erin"', path.read_text())


@pytest.mark.parametrize("service", ["frontend", "infrastructure"])
def test_with_accounts_but_no_secret_key_the_service_refuses_to_start(
    service: str, login_accounts: object, tmp_path: Path
) -> None:
    from test_svc_gunicorn import GUNICORN, start_gunicorn, stop

    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} not found")
    env = {
        "BACKEND_API_URL": "http://127.0.0.1:9",
        "BACKEND_URL": "http://127.0.0.1:9",
        "FRONTEND_URL": "http://127.0.0.1:9",
        "DATABASE_URL": "postgresql://x@127.0.0.1:9/x",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "BARESTACK_ACCOUNTS_FILE": str(login_accounts.path),  # type: ignore[attr-defined]
    }
    server = start_gunicorn(service, free_port(), env, tmp_path)
    try:
        assert server.process.wait(timeout=30) != 0
    finally:
        stop(server)
    assert "environment variable SECRET_KEY is not set, but the accounts file" in server.log


def test_a_new_secret_key_ends_every_session_though_the_signer_is_kept(
    live_backend: str, auth_env: dict[str, str]
) -> None:
    """The session cookie's signer is built once per key (not per request); a key change still
    refuses every cookie signed with the old one, and a forged cookie is still anonymous."""
    client = frontend(live_backend, auth_env)
    login(client, PERSON)
    app = client.application
    interface = app.session_interface
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert "Logged in as" in client.get("/").get_data(as_text=True)
    cookie = client.get_cookie("barestack_session")
    assert cookie is not None
    app.secret_key = "another-secret-key-of-at-least-32-characters"
    with pytest.raises(BadSignature):  # the old key's cookie no longer verifies
        interface.get_signing_serializer(app).loads(cookie.value)  # type: ignore[attr-defined]
    assert "Logged in as" not in client.get("/").get_data(as_text=True)
    app.secret_key = auth_env["SECRET_KEY"]
    login(client, PERSON)
    assert "Logged in as" in client.get("/").get_data(as_text=True)
    client.set_cookie("barestack_session", "eyJ1c2VyIjoicGlldCJ9.forged.signature", path="/")
    assert "Logged in as" not in client.get("/").get_data(as_text=True)
