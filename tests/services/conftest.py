"""Fixtures for the services' tests: real PostgreSQL and Redis, started once per session.

Nothing here is mocked. PostgreSQL (the highest major version installed) and Redis come from
Debian's packages and run on free loopback ports; the services' packages are imported from
services/<name>/ directly, and the helpers they share from services/_lib/, as every service
process finds them when deployed.
"""

import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for service_dir in ("backend", "frontend", "infrastructure", "_lib"):
    path = str(REPO / "services" / service_dir)
    if path not in sys.path:
        sys.path.insert(0, path)

from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from svc_testkit import accounts, api_tokens, module_tree, nginx_server, postgres, redis_server  # noqa: E402
from svc_testkit.browser import SCREENS, Browser, missing_browser  # noqa: E402
from svc_testkit.migrations import apply_migrations  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.PostgresServer]:
    missing = postgres.missing_binaries()
    if missing:
        pytest.skip(missing)
    server = postgres.PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg_server: postgres.PostgresServer) -> str:
    """The application database with every migration applied, as the deployment leaves it."""
    apply_migrations(pg_server.url())
    return pg_server.url()


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[redis_server.RedisServer]:
    missing = redis_server.missing_binary()
    if missing:
        pytest.skip(missing)
    server = redis_server.RedisServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def modules() -> Iterator[module_tree.ModuleTree]:
    tree = module_tree.build_module_tree(Path(tempfile.mkdtemp(prefix="barestack-modules-")))
    yield tree
    module_tree.remove(tree)


@pytest.fixture
def clean_runs(database_url: str, pg_server: postgres.PostgresServer) -> str:
    conn = pg_server.admin_connection(pg_server.database)
    try:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE barestack.runs, barestack.api_tokens")
    finally:
        conn.close()
    return database_url


@pytest.fixture
def runs_stream() -> str:
    """A stream of its own per test, so that no test sees another's queue entries."""
    return f"barestack:runs:test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def api_token(clean_runs: str) -> str:
    """A valid token (named ``tester``, not delegating) in the test database; send it with bearer()."""
    return api_tokens.issue_token(clean_runs, api_tokens.TEST_TOKEN_NAME)


@pytest.fixture
def frontend_token(clean_runs: str) -> str:
    """The frontend's token: named ``frontend``, may act for users (X-Barestack-User)."""
    return api_tokens.issue_token(clean_runs, api_tokens.FRONTEND_TOKEN_NAME, act_for_users=True)


@pytest.fixture
def backend_env(
    clean_runs: str, redis_srv: redis_server.RedisServer, modules: module_tree.ModuleTree, runs_stream: str
) -> dict[str, str]:
    """The backend's and worker's environment, as systemd's EnvironmentFile would give it."""
    return {
        "DATABASE_URL": clean_runs,
        "REDIS_URL": redis_srv.url,
        "BARESTACK_VENV_MAPPING": str(modules.mapping_path),
        "BARESTACK_RUN_MODULE": str(modules.run_module),
        "BARESTACK_RUNS_STREAM": runs_stream,
        # This controller has no systemd as PID 1, so workers built from this env run modules as
        # child processes; the systemd-run sandbox is proved on test machines (verify-runs-sandbox.yml).
        "BARESTACK_RUN_SANDBOX": "none",
    }


@pytest.fixture
def live_backend(backend_env: dict[str, str]) -> Iterator[str]:
    """The backend API served for real on a loopback port; yields its base URL."""
    from barestack_backend.app import create_app
    from barestack_backend.settings import Settings
    from svc_testkit.live_server import serve

    server = serve(create_app(Settings.from_env(backend_env)))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def nginx_srv() -> Iterator[nginx_server.NginxServer]:
    missing = nginx_server.missing_binary()
    if missing:
        pytest.skip(missing)
    server = nginx_server.NginxServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def login_accounts(tmp_path_factory: pytest.TempPathFactory) -> accounts.AccountsFixture:
    """An accounts file with an operator and a plain user, the SECRET_KEY and the frontend's token."""
    return accounts.make_accounts(tmp_path_factory.mktemp("accounts"))


@pytest.fixture
def auth_env(login_accounts: accounts.AccountsFixture, frontend_token: str) -> dict[str, str]:
    """The frontend's login settings and its backend token (a real row in api_tokens)."""
    return {**login_accounts.env, "BARESTACK_FRONTEND_TOKEN": frontend_token}


@pytest.fixture
def live_frontend(live_backend: str, auth_env: dict[str, str]) -> Iterator[str]:
    """The frontend served for real on a loopback port, talking to the live backend with its token."""
    from barestack_frontend.app import create_app
    from barestack_frontend.settings import Settings
    from svc_testkit.live_server import serve

    server = serve(create_app(Settings.from_env({"BACKEND_API_URL": live_backend, **auth_env})))
    yield server.url
    server.stop()


@pytest.fixture
def infra_env(
    live_backend: str,
    live_frontend: str,
    backend_env: dict[str, str],
    nginx_srv: nginx_server.NginxServer,
    auth_env: dict[str, str],
) -> dict[str, str]:
    """The dashboard's environment with every component up (systemd excepted: not on this machine)."""
    return {
        "BACKEND_URL": live_backend,
        "FRONTEND_URL": live_frontend,
        "DATABASE_URL": backend_env["DATABASE_URL"],
        "REDIS_URL": backend_env["REDIS_URL"],
        "NGINX_STATUS_URL": nginx_srv.status_url,
        "BARESTACK_RUNS_STREAM": backend_env["BARESTACK_RUNS_STREAM"],
        "BARESTACK_CHECK_TIMEOUT": "2",
        "BARESTACK_ACCOUNTS_FILE": auth_env["BARESTACK_ACCOUNTS_FILE"],
        "SECRET_KEY": auth_env["SECRET_KEY"],
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless chromium per test module, behind the nginx role's site (skips without either)."""
    missing = missing_browser() or nginx_server.missing_binary()
    if missing:
        pytest.skip(missing)
    SCREENS.mkdir(exist_ok=True)
    session = Browser()
    yield session.driver
    session.quit()
