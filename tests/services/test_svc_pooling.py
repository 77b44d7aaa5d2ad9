"""The backend keeps its PostgreSQL and Redis connections, and still notices an outage at once.

Each outage test runs its own PostgreSQL or Redis (real servers from svc_testkit) so it can stop
and start it under the running app without disturbing the other tests.
"""

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import psycopg2
import pytest
from barestack_backend.app import create_app
from barestack_backend.settings import Settings
from svc_testkit import api_tokens, module_tree
from svc_testkit.live_server import serve
from svc_testkit.migrations import apply_migrations
from svc_testkit.postgres import PostgresServer
from svc_testkit.redis_server import RedisServer

# /health must follow an outage and a recovery within this many seconds (issue 10).
NOTICE_WITHIN_S = 2.0


# Base URL -> the API token serve_backend stored in that backend's database (/runs needs one).
_TOKENS: dict[str, str] = {}


def _status(url: str) -> int:
    headers = next((api_tokens.bearer(t) for base, t in _TOKENS.items() if url.startswith(base + "/")), {})
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _seconds_until(url: str, wanted: int, limit_s: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if _status(url) == wanted:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {wanted} within {limit_s} s")


def _backend_pids(pg: PostgresServer) -> set[int]:
    conn = pg.admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'barestack-backend'")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    apply_migrations(server.url())
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
def serve_backend(modules: module_tree.ModuleTree, runs_stream: str) -> Iterator[Callable[[str, str], str]]:
    servers = []

    def start(database_url: str, redis_url: str) -> str:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "BARESTACK_VENV_MAPPING": str(modules.mapping_path),
            "BARESTACK_RUN_MODULE": str(modules.run_module),
            "BARESTACK_RUNS_STREAM": runs_stream,
            # Every request here must reach PostgreSQL: the answer cache (its own tests) would answer
            # /runs from memory for up to a second, through an outage too.
            "BARESTACK_ANSWER_CACHE_SECONDS": "0",
        }
        server = serve(create_app(Settings.from_env(env)))
        servers.append(server)
        _TOKENS[server.url] = api_tokens.issue_token(database_url, api_tokens.TEST_TOKEN_NAME)
        return server.url

    yield start
    for server in servers:
        _TOKENS.pop(server.url, None)
        server.stop()


def test_requests_reuse_pooled_postgres_sessions(
    own_pg: PostgresServer, redis_srv: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    url = serve_backend(own_pg.url(), redis_srv.url)
    seen: set[int] = set()
    for _ in range(40):
        for path in ("/health", "/modules", "/runs?limit=20"):
            assert _status(url + path) == 200
        seen |= _backend_pids(own_pg)
    # werkzeug serves one request at a time here, so one session does everything; a pool that
    # closed returned connections would show a new server process for nearly every request.
    assert 1 <= len(seen) <= 2, seen


def test_health_follows_a_postgres_outage_and_reads_survive_a_restart(
    own_pg: PostgresServer, redis_srv: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    url = serve_backend(own_pg.url(), redis_srv.url)
    assert _status(url + "/health") == 200
    assert _status(url + "/runs") == 200  # a pooled connection now exists

    own_pg.halt()
    assert _seconds_until(url + "/health", 503) < NOTICE_WITHIN_S
    assert _status(url + "/runs") == 503

    own_pg.resume()
    assert _seconds_until(url + "/health", 200) < NOTICE_WITHIN_S
    assert _status(url + "/runs") == 200


def test_a_restart_between_requests_costs_no_error(
    own_pg: PostgresServer, redis_srv: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    url = serve_backend(own_pg.url(), redis_srv.url)
    assert _status(url + "/runs") == 200
    before = _backend_pids(own_pg)
    own_pg.halt()
    own_pg.resume()
    # The pooled session died with the old server; checkout notices and reconnects, no 500.
    assert _status(url + "/runs") == 200
    assert _status(url + "/health") == 200
    assert before.isdisjoint(_backend_pids(own_pg))


def test_a_terminated_session_is_replaced_without_an_error(
    own_pg: PostgresServer, redis_srv: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    url = serve_backend(own_pg.url(), redis_srv.url)
    assert _status(url + "/runs") == 200
    conn = own_pg.admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'barestack-backend'"
            )
    finally:
        conn.close()
    time.sleep(0.2)  # let the terminated backend's goodbye reach the app's socket
    assert _status(url + "/runs") == 200


def test_health_follows_a_redis_outage(
    database_url: str, own_redis: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    url = serve_backend(database_url, own_redis.url)
    assert _status(url + "/health") == 200

    own_redis.halt()
    assert _seconds_until(url + "/health", 503) < NOTICE_WITHIN_S

    own_redis.resume()
    assert _seconds_until(url + "/health", 200) < NOTICE_WITHIN_S


def test_health_does_not_open_a_session_per_call(
    own_pg: PostgresServer, redis_srv: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    url = serve_backend(own_pg.url(), redis_srv.url)
    assert _status(url + "/health") == 200
    conn = psycopg2.connect(own_pg.url())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            before = cur.fetchone()[0]
            for _ in range(100):
                assert _status(url + "/health") == 200
            cur.execute("SELECT pg_stat_clear_snapshot()")
            time.sleep(1.2)  # session counts reach the shared statistics at most once a second
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            after = cur.fetchone()[0]
    finally:
        conn.close()
    assert after - before <= 2, (before, after)


def _redis_pings(server: RedisServer) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def test_health_checks_run_once_per_interval_however_often_it_is_called(
    database_url: str, own_redis: RedisServer, serve_backend: Callable[[str, str], str]
) -> None:
    # A deploy gate or a load balancer may poll /health many times a second: the checks behind it
    # (here Redis PINGs, counted by Redis itself) run at most once per RESULT_TTL_S per process.
    from barestack_backend.routes.health import RESULT_TTL_S

    url = serve_backend(database_url, own_redis.url)
    assert _status(url + "/health") == 200
    before = _redis_pings(own_redis)
    started = time.monotonic()
    calls = 0
    while calls < 60 or time.monotonic() - started < 2 * RESULT_TTL_S:
        assert _status(url + "/health") == 200
        calls += 1
    elapsed = time.monotonic() - started
    pings = _redis_pings(own_redis) - before
    assert pings <= elapsed / RESULT_TTL_S + 2, (pings, calls, elapsed)
    assert pings < calls / 4, (pings, calls)
