"""The infrastructure dashboard against real services, PostgreSQL, Redis and nginx.

This controller has no systemd as PID 1, so the units must show as unknown, never as made-up data.
"""

import contextlib
import json
import re
import resource
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from barestack_common.env import ConfigError
from barestack_infrastructure.app import create_app
from barestack_infrastructure.checks.nginx import parse_stub_status
from barestack_infrastructure.collector import Collector, Snapshot, SnapshotCache
from barestack_infrastructure.settings import DEFAULT_UNITS, Settings
from barestack_infrastructure.systemd_units import SystemdReader, parse_show
from flask import Flask
from flask.testing import FlaskClient
from svc_testkit.accounts import OPERATOR, PERSON, User, session_cookie, write_accounts
from svc_testkit.nginx_server import NginxServer
from svc_testkit.ports import free_port
from svc_testkit.postgres import PostgresServer
from svc_testkit.redis_server import RedisServer


def dashboard(env: dict[str, str], user: User | None = None) -> FlaskClient:
    """The dashboard as a browser sees it; with ``user``, after that user logged in on the frontend."""
    app = create_app(Settings.from_env(env))
    app.testing = True
    client = app.test_client()
    if user is not None:
        client.set_cookie("barestack_session", session_cookie(env, user), path="/")
    return client


@pytest.fixture
def client(infra_env: dict[str, str]) -> FlaskClient:
    """An operator's browser: the page and /metrics are for operators."""
    return dashboard(infra_env, OPERATOR)


def test_settings_name_what_is_wrong(infra_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="BACKEND_URL is not set"):
        Settings.from_env({k: v for k, v in infra_env.items() if k != "BACKEND_URL"})
    with pytest.raises(ConfigError, match="invalid unit name"):
        Settings.from_env({**infra_env, "BARESTACK_UNITS": "barestack-backend,--all"})
    assert Settings.from_env(infra_env).units == DEFAULT_UNITS


def test_health_is_ok_when_every_critical_component_is_up(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    for component in ("backend", "frontend", "postgresql", "redis", "nginx"):
        assert body["checks"][component]["ok"] is True, body["checks"][component]
    assert body["checks"]["backend"]["details"]["checks"] == {"postgresql": True, "redis": True}
    assert body["checks"]["nginx"]["details"]["requests"] >= 1
    assert body["checks"]["redis"]["details"]["runs_stream_length"] == 0


# The dashboard asks the controller's own systemd. A controller with systemd as PID 1 (a Debian VM or
# test machine) answers, and has no barestack units: "not installed". Without systemd (a container)
# the dashboard says it cannot ask.
SYSTEMD_HERE = SystemdReader(1.0).available()
UNIT_SUMMARY = "not installed" if SYSTEMD_HERE else "unknown: systemd not available"


def test_units_are_read_from_systemd_or_unknown_without_it(client: FlaskClient) -> None:
    body = client.get("/health").get_json()
    assert body["systemd_available"] is SYSTEMD_HERE
    assert list(body["units"]) == list(DEFAULT_UNITS)
    for unit in body["units"].values():
        assert unit["summary"] == UNIT_SUMMARY
        assert unit["known"] is SYSTEMD_HERE
        if SYSTEMD_HERE:
            assert unit["load_state"] == "not-found" and unit["active_state"] == "inactive"
        else:
            assert unit["active_state"] is None and unit["restarts"] is None


@pytest.mark.parametrize("dead", ["REDIS_URL", "BACKEND_URL"])
def test_health_is_503_when_a_critical_component_is_down(infra_env: dict[str, str], dead: str) -> None:
    port = free_port()
    url = f"redis://:pw@127.0.0.1:{port}/0" if dead == "REDIS_URL" else f"http://127.0.0.1:{port}"
    response = dashboard({**infra_env, dead: url}).get("/health")
    assert response.status_code == 503
    component = "redis" if dead == "REDIS_URL" else "backend"
    check = response.get_json()["checks"][component]
    assert check["ok"] is False and check["critical"] is True
    assert "refused" in check["details"]["error"].lower()


def test_nginx_and_frontend_are_not_critical(infra_env: dict[str, str]) -> None:
    env = {**infra_env, "NGINX_STATUS_URL": "", "NGINX_URL": f"http://127.0.0.1:{free_port()}/"}
    env["FRONTEND_URL"] = f"http://127.0.0.1:{free_port()}"
    response = dashboard(env).get("/health")
    assert response.status_code == 200
    assert response.get_json()["checks"]["nginx"]["ok"] is False
    assert response.get_json()["checks"]["frontend"]["ok"] is False


def test_nginx_without_a_status_page_counts_as_up_when_it_answers(
    infra_env: dict[str, str], nginx_srv: object
) -> None:
    env = {**infra_env, "NGINX_STATUS_URL": "", "NGINX_URL": nginx_srv.url}  # type: ignore[attr-defined]
    check = dashboard(env).get("/health").get_json()["checks"]["nginx"]
    assert check["ok"] is True
    assert check["summary"] == "answers (HTTP 404)"
    assert check["details"]["server"].startswith("nginx")


def test_the_database_password_never_shows(infra_env: dict[str, str], pg_server: PostgresServer) -> None:
    password = "Sup3r-Secret-dashboard"
    env = {
        **infra_env,
        "DATABASE_URL": f"postgresql://{pg_server.app_user}:{password}@127.0.0.1:{pg_server.port}/x",
    }
    client = dashboard(env, OPERATOR)
    health = client.get("/health")
    assert health.status_code == 503
    assert "password authentication failed" in health.get_json()["checks"]["postgresql"]["details"]["error"]
    for path in ("/health", "/", "/metrics"):
        page = client.get(path)
        assert page.status_code in (200, 503), (path, page.status_code)
        assert password not in page.get_data(as_text=True)


def test_the_page_shows_every_component_and_unit(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "All critical components are up." in html
    for name in ("Backend", "Frontend", "PostgreSQL", "Redis", "Nginx", *DEFAULT_UNITS):
        assert f">{name}" in html
    assert html.count(UNIT_SUMMARY) == len(DEFAULT_UNITS)


def test_the_page_still_renders_when_things_are_down(infra_env: dict[str, str]) -> None:
    env = {**infra_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    response = dashboard(env, OPERATOR).get("/")
    assert response.status_code == 200
    assert "A critical component is down" in response.get_data(as_text=True)


METRIC_LINE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? -?[0-9.]+(e-?[0-9]+)?$')


def test_metrics_are_prometheus_text(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    lines = response.get_data(as_text=True).splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    assert all(METRIC_LINE.match(line) for line in samples), [s for s in samples if not METRIC_LINE.match(s)]
    for component in ("backend", "frontend", "postgresql", "redis", "nginx"):
        assert f'barestack_component_up{{component="{component}"}} 1' in samples
        assert any(
            s.startswith(f'barestack_check_duration_seconds{{component="{component}"}} ') for s in samples
        )
    assert "barestack_up 1" in samples and f"barestack_systemd_available {int(SYSTEMD_HERE)}" in samples
    assert "barestack_runs_stream_length 0" in samples
    unit_active = [s for s in samples if s.startswith("barestack_unit_active{")]
    if SYSTEMD_HERE:  # known and not installed: not active
        assert len(unit_active) == len(DEFAULT_UNITS) and all(s.endswith(" 0") for s in unit_active)
    else:  # Unknown unit states are left out rather than reported as 0 (down).
        assert not any(s.startswith("barestack_unit_") for s in samples)
    assert "# TYPE barestack_component_up gauge" in lines


def test_links_carry_the_proxy_prefix(client: FlaskClient) -> None:
    html = client.get("/", headers={"X-Forwarded-Prefix": "/infra"}).get_data(as_text=True)
    for target in ("/infra/static/style.css", "/infra/health", "/infra/metrics", "/infra/"):
        assert f'href="{target}"' in html
    assert not re.search(r'href="/(?!infra/)', html)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: what a hung service looks like."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_checks_run_concurrently_with_their_timeout(infra_env: dict[str, str], silent_server: str) -> None:
    env = {
        **infra_env,
        "BACKEND_URL": silent_server,
        "FRONTEND_URL": silent_server,
        "BARESTACK_CHECK_TIMEOUT": "1",
    }
    collector = Collector(Settings.from_env(env))
    started = time.monotonic()
    snapshot = collector.snapshot()
    elapsed = time.monotonic() - started
    checks = {check.component: check for check in snapshot.checks}
    assert not checks["backend"].ok and not checks["frontend"].ok
    assert (
        checks["backend"].summary == "HttpUnavailable" and "timed out" in checks["backend"].details["error"]
    )
    assert checks["postgresql"].ok and checks["redis"].ok
    assert elapsed < 1.9, f"two 1 s timeouts took {elapsed:.2f} s: the checks did not run concurrently"


def test_systemctl_show_output_is_read_per_unit() -> None:
    # The shape `systemctl show --property=... a b` prints: one block per unit, blank line between.
    output = (
        "Id=barestack-backend.service\nLoadState=loaded\nActiveState=active\nSubState=running\n"
        "ActiveEnterTimestamp=Wed 2025-11-26 02:48:00 UTC\nNRestarts=2\n\n"
        "Id=barestack-worker.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n"
        "ActiveEnterTimestamp=\nNRestarts=0\n"
    )
    blocks = parse_show(output)
    assert [block["Id"] for block in blocks] == ["barestack-backend.service", "barestack-worker.service"]
    assert blocks[0]["NRestarts"] == "2" and blocks[1]["ActiveEnterTimestamp"] == ""


def test_stub_status_is_parsed() -> None:
    text = (
        "Active connections: 3 \nserver accepts handled requests\n 10 10 42 \n"
        "Reading: 0 Writing: 1 Waiting: 2 \n"
    )
    assert parse_stub_status(text) == {
        "active_connections": 3,
        "accepted_connections": 10,
        "handled_connections": 10,
        "requests": 42,
    }
    with pytest.raises(ValueError, match="not an nginx stub_status page"):
        parse_stub_status("<html>hello</html>")


# --- cached snapshots (issue 10): a request reads the last collection, it runs no check ---------


def _children_of_this_process() -> set[int]:
    children: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            children |= {int(pid) for pid in (task / "children").read_text().split()}
    return children


def _reaped_child_faults() -> int:
    # Every child that ran and was reaped adds its page faults here: a strictly growing count of
    # finished children, where /proc's list only shows the ones alive at that instant.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt


def _nginx_requests(nginx_srv: NginxServer) -> int:
    with urllib.request.urlopen(nginx_srv.status_url, timeout=5) as response:
        return parse_stub_status(response.read().decode())["requests"]


def _app_with_forking_systemd_reader(env: dict[str, str], runtime_dir: Path) -> Flask:
    """The dashboard with a systemd reader that really forks (``true`` for systemctl and journalctl).

    There is no systemd on this controller; ``true`` stands for its commands so that a collection
    starts child processes as it does on a host, and a page view that collected would show them.
    """
    app = create_app(Settings.from_env(env))
    app.testing = True
    cache: SnapshotCache = app.extensions["barestack_infrastructure.collector"]
    cache.collector.systemd = SystemdReader(2.0, runtime_dir=runtime_dir, systemctl="true", journalctl="true")
    return app


def test_page_views_fork_nothing_and_call_nothing(
    infra_env: dict[str, str], nginx_srv: NginxServer, tmp_path: Path
) -> None:
    env = {**infra_env, "BARESTACK_COLLECT_INTERVAL": "30"}
    app = _app_with_forking_systemd_reader(env, tmp_path)
    client = app.test_client()
    client.set_cookie("barestack_session", session_cookie(env, OPERATOR), path="/")
    faults = _reaped_child_faults()
    assert client.get("/health").status_code == 200  # the first request collects
    assert _reaped_child_faults() > faults, "the collection should have run systemctl and journalctl"
    cache: SnapshotCache = app.extensions["barestack_infrastructure.collector"]
    assert cache.collections == 1

    children, faults = _children_of_this_process(), _reaped_child_faults()
    nginx_before = _nginx_requests(nginx_srv)
    for _ in range(30):
        assert client.get("/").status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
    assert _children_of_this_process() == children
    assert _reaped_child_faults() == faults, "a page view started a child process"
    # The only request nginx saw since is our own second read of its status page.
    assert _nginx_requests(nginx_srv) == nginx_before + 1
    assert cache.collections == 1


def test_the_page_and_health_show_the_age_of_the_data(infra_env: dict[str, str]) -> None:
    client = dashboard({**infra_env, "BARESTACK_COLLECT_INTERVAL": "30"}, OPERATOR)
    first = client.get("/health").get_json()
    time.sleep(1.1)
    later = client.get("/health").get_json()
    assert later["collected_at"] == first["collected_at"]
    assert later["age_s"] >= 1.0 and later["stale"] is False
    assert re.search(r"Checked [0-9]+ s ago \(20[0-9-]+T", client.get("/").get_data(as_text=True))
    assert "barestack_check_age_seconds " in client.get("/metrics").get_data(as_text=True)


def test_health_follows_an_outage_within_a_few_seconds(tmp_path: Path, infra_env: dict[str, str]) -> None:
    redis = RedisServer.start()
    try:
        client = dashboard({**infra_env, "REDIS_URL": redis.url, "BARESTACK_COLLECT_INTERVAL": "1"})
        assert client.get("/health").status_code == 200
        redis.halt()
        started = time.monotonic()
        while client.get("/health").status_code != 503:
            assert time.monotonic() - started < 4, "/health still said ok 4 s into a Redis outage"
            time.sleep(0.1)
        redis.resume()
        started = time.monotonic()
        while client.get("/health").status_code != 200:
            assert time.monotonic() - started < 4, "/health still said unavailable 4 s after Redis came back"
            time.sleep(0.1)
    finally:
        redis.stop()


def test_data_older_than_the_max_age_is_not_served_as_healthy(infra_env: dict[str, str]) -> None:
    settings = Settings.from_env({**infra_env, "BARESTACK_COLLECT_INTERVAL": "1"})
    collector = Collector(settings)
    cache = SnapshotCache(collector, settings.collect_interval_s, settings.max_age_s)
    assert cache.get().healthy
    old = cache.get()
    aged = Snapshot(old.checks, old.units, old.systemd_available, time.time() - 60, settings.max_age_s)
    assert aged.stale and not aged.healthy
    time.sleep(settings.max_age_s + 0.2)
    # Too old to answer with: the request waits for a new collection instead.
    fresh = cache.get()
    assert fresh.collected_at > old.collected_at and fresh.age_s < 1 and fresh.healthy


def test_the_page_and_metrics_are_for_operators_and_health_for_anyone(infra_env: dict[str, str]) -> None:
    prefix = {"X-Forwarded-Prefix": "/infra"}  # as nginx proxies /infra/
    anonymous = dashboard(infra_env)
    page = anonymous.get("/", headers=prefix)
    assert page.status_code == 401 and page.mimetype == "text/html"
    assert 'href="/login?next=/infra/"' in page.get_data(as_text=True)
    assert "All critical components" not in page.get_data(as_text=True)
    metrics = anonymous.get("/metrics")
    assert metrics.status_code == 401 and metrics.mimetype == "text/plain"
    assert "barestack_up" not in metrics.get_data(as_text=True)
    health = anonymous.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"

    person = dashboard(infra_env, PERSON)
    refused = person.get("/", headers=prefix)
    assert refused.status_code == 403 and "not an operator" in refused.get_data(as_text=True)
    assert person.get("/metrics").status_code == 403
    assert person.get("/health").status_code == 200

    operator = dashboard(infra_env, OPERATOR)
    shown = operator.get("/", headers=prefix)
    assert shown.status_code == 200 and "All critical components are up." in shown.get_data(as_text=True)
    assert "Logged in as <strong>olga</strong>" in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    assert operator.get("/metrics").status_code == 200


def test_a_forged_or_foreign_session_cookie_is_anonymous(infra_env: dict[str, str]) -> None:
    from itsdangerous import URLSafeTimedSerializer

    client = dashboard(infra_env)
    client.set_cookie("barestack_session", "not-a-signed-session", path="/")
    assert client.get("/").status_code == 401
    # A session claiming to be the operator, signed with another key, is nobody.
    forged = URLSafeTimedSerializer("another-key-" * 4, salt="cookie-session").dumps({"user": "olga"})
    client.set_cookie("barestack_session", forged, path="/")
    assert client.get("/metrics").status_code == 401


def test_a_removed_or_demoted_operator_loses_access(infra_env: dict[str, str], tmp_path: Path) -> None:
    temp_operator = User("tempop", "temporary-operator-pass", operator=True)
    path = tmp_path / "accounts.json"
    write_accounts(path, [temp_operator])
    env = {**infra_env, "BARESTACK_ACCOUNTS_FILE": str(path)}
    client = dashboard(env, temp_operator)
    assert client.get("/").status_code == 200
    # Demoted with the same password (the sync CLI keeps the hash then): still logged in, not an operator.
    document = json.loads(path.read_text())
    document["users"]["tempop"]["operator"] = False
    path.with_suffix(".new").write_text(json.dumps(document))
    path.with_suffix(".new").replace(path)
    assert client.get("/").status_code == 403
    assert client.get("/metrics").status_code == 403
    write_accounts(path, [])
    assert client.get("/").status_code == 401
    assert client.get("/metrics").status_code == 401


def test_login_settings_are_checked_at_start(infra_env: dict[str, str], tmp_path: Path) -> None:
    without_key = {k: v for k, v in infra_env.items() if k != "SECRET_KEY"}
    with pytest.raises(ConfigError, match="SECRET_KEY is not set, but the accounts file"):
        Settings.from_env(without_key)
    with pytest.raises(ConfigError, match="SECRET_KEY is too short"):
        Settings.from_env({**infra_env, "SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="BARESTACK_MAX_BODY_BYTES must be a whole number"):
        Settings.from_env({**infra_env, "BARESTACK_MAX_BODY_BYTES": "lots"})
    # No accounts file: nobody can log in, so no key is needed; the page stays closed.
    no_accounts = {**without_key, "BARESTACK_ACCOUNTS_FILE": str(tmp_path / "absent.json")}
    assert dashboard(no_accounts).get("/").status_code == 401
    assert dashboard(no_accounts).get("/health").status_code == 200


def test_malformed_requests_are_4xx(client: FlaskClient, infra_env: dict[str, str]) -> None:
    assert client.post("/health", data="x" * 100_000).status_code == 405
    assert client.get("/nope").status_code == 404
    anonymous = dashboard(infra_env)
    assert anonymous.get("/metrics", headers={"Cookie": "barestack_session=\x7f%%%"}).status_code == 401


def test_the_page_is_rendered_once_per_second_per_viewer_and_never_shown_to_another(
    infra_env: dict[str, str], tmp_path: Path
) -> None:
    from barestack_infrastructure.routes.status import PAGES_KEY
    from svc_testkit.accounts import csrf_from

    second_operator = User("otto", "otto-operator-passphrase", operator=True)
    path = tmp_path / "accounts.json"
    write_accounts(path, [OPERATOR, second_operator])
    env = {**infra_env, "BARESTACK_ACCOUNTS_FILE": str(path)}
    app = create_app(Settings.from_env(env))
    olga, otto = app.test_client(), app.test_client()
    olga.set_cookie("barestack_session", session_cookie(env, OPERATOR), path="/")
    otto.set_cookie("barestack_session", session_cookie(env, second_operator), path="/")
    assert olga.get("/").status_code == 200  # the first snapshot is collected
    time.sleep(1 - time.time() % 1)  # at the start of a second: the next views fall in one
    pages = [olga.get("/").get_data(as_text=True) for _ in range(5)]
    renders = app.extensions[PAGES_KEY].renders
    assert len(set(pages)) <= 2 and renders <= 3  # the first view, and at most one second boundary
    theirs = otto.get("/").get_data(as_text=True)
    assert "Logged in as <strong>otto</strong>" in theirs and "olga" not in theirs
    assert csrf_from(theirs) != csrf_from(pages[-1])
    time.sleep(1.1)  # another second: the ages on the page are counted again
    olga.get("/")
    assert app.extensions[PAGES_KEY].renders > renders + 1
    # A kept page never outlives its viewer's access (within its second, too).
    write_accounts(path, [OPERATOR])
    assert otto.get("/").status_code == 401


def test_health_encodes_a_snapshot_once_and_its_age_on_every_call(infra_env: dict[str, str]) -> None:
    from barestack_infrastructure.routes.status import HEALTH_KEY

    app = create_app(Settings.from_env({**infra_env, "BARESTACK_COLLECT_INTERVAL": "30"}))
    client = app.test_client()
    first = client.get("/health")
    assert first.status_code == 200 and first.mimetype == "application/json"
    snapshot = app.extensions["barestack_infrastructure.collector"].get()
    assert first.get_json() == {**snapshot.to_json(), "age_s": first.get_json()["age_s"]}
    time.sleep(0.3)
    bodies = [client.get("/health").get_json() for _ in range(3)]
    assert app.extensions[HEALTH_KEY].encodings == 1
    assert bodies[-1]["age_s"] >= first.get_json()["age_s"] + 0.2  # counted now, not kept
    assert all(body["checks"] == first.get_json()["checks"] for body in bodies)
