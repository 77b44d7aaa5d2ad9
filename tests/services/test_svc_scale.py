"""Per-module work at the scale the stack is built for: 450 modules with a long run history."""

import json
import time
from pathlib import Path

import psycopg2
import pytest
from barestack_backend.app import create_app
from barestack_backend.settings import Settings
from barestack_frontend.app import create_app as create_frontend
from barestack_frontend.settings import Settings as FrontendSettings
from svc_testkit.accounts import PERSON, login
from svc_testkit.api_tokens import bearer
from svc_testkit.live_server import serve

MODULE_COUNT = 450
RUNS_PER_MODULE = 40


@pytest.fixture
def big_env(backend_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    venvs = {
        f"backend/m-{n:03d}": {
            "service": "backend",
            "module": f"m-{n:03d}",
            "kind": "module",
            "source": f"/srv/barestack/backend/m-{n:03d}",
            "venv": f"/srv/barestack/venvs/backend/m-{n:03d}",
            "hash": f"{n:064x}",
            "python": "3.13.5",
            "requirements": ["packaging==24.2"],
            "packages": {"packaging": "24.2"},
        }
        for n in range(MODULE_COUNT)
    }
    mapping = tmp_path / "venv_mapping.json"
    mapping.write_text(json.dumps({"format": 1, "python": "3.13.5", "venvs": venvs}))
    conn = psycopg2.connect(backend_env["DATABASE_URL"])
    try:
        with conn, conn.cursor() as cur:
            # 18,000 finished runs; the newest run of module n is the one with i = RUNS_PER_MODULE.
            cur.execute(
                "INSERT INTO barestack.runs (id, service, module, status, exit_code, created_at) "
                "SELECT gen_random_uuid(), 'backend', format('m-%%s', lpad(n::text, 3, '0')), "
                "CASE WHEN i = %s AND n %% 2 = 1 THEN 'failed' ELSE 'succeeded' END, 0, "
                "now() - make_interval(mins => %s - i) "
                "FROM generate_series(0, %s) AS n, generate_series(1, %s) AS i",
                (RUNS_PER_MODULE, RUNS_PER_MODULE, MODULE_COUNT - 1, RUNS_PER_MODULE),
            )
            cur.execute("ANALYZE barestack.runs")
    finally:
        conn.close()
    return {**backend_env, "BARESTACK_VENV_MAPPING": str(mapping)}


def test_modules_with_last_runs_stay_fast_at_450_modules(
    big_env: dict[str, str], api_token: str, auth_env: dict[str, str]
) -> None:
    app = create_app(Settings.from_env(big_env))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(api_token)["Authorization"]  # runs need a token
    client.get("/modules")  # first call parses the mapping and opens the pool
    started = time.perf_counter()
    body = client.get("/modules").get_json()
    elapsed = time.perf_counter() - started
    assert body["count"] == MODULE_COUNT
    statuses = {m["module"]: m["last_run"]["status"] for m in body["modules"]}
    assert statuses["m-000"] == "succeeded" and statuses["m-001"] == "failed"
    assert elapsed < 1.0, f"/modules took {elapsed:.3f} s for {MODULE_COUNT} modules"

    server = serve(app)
    try:
        frontend_env = {"BACKEND_API_URL": server.url, **auth_env}
        frontend = create_frontend(FrontendSettings.from_env(frontend_env)).test_client()
        login(frontend, PERSON)  # run buttons and last runs are for logged-in people
        started = time.perf_counter()
        html = frontend.get("/").get_data(as_text=True)
        page_s = time.perf_counter() - started
    finally:
        server.stop()
    assert html.count('aria-label="Run backend/m-') == MODULE_COUNT
    assert page_s < 2.0, f"the module page took {page_s:.3f} s for {MODULE_COUNT} modules"
    print(f"\n/modules: {elapsed * 1000:.0f} ms; frontend index: {page_s * 1000:.0f} ms ({len(html)} bytes)")
