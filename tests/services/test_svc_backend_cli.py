"""The backend's command-line tools as the deployment runs them: real processes on the test database.

``python -m barestack_backend.tokens`` (create, list, revoke, import) and
``python -m barestack_backend.retention --days N``.
"""

import json
import os
import secrets
import subprocess
import sys
import time
from typing import Any

import psycopg2
import pytest
from barestack_backend.app import create_app
from barestack_backend.auth import hash_token
from barestack_backend.settings import Settings
from barestack_backend.tokens import import_tokens, parse_import
from flask.testing import FlaskClient
from psycopg2.extras import RealDictCursor
from svc_testkit.api_tokens import bearer
from svc_testkit.worker_process import BACKEND_DIR, SHARED_LIB


def cli(module: str, *args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{BACKEND_DIR}:{SHARED_LIB}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", f"barestack_backend.{module}", *args],
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tokens(*args: str, db: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return cli("tokens", *args, env={"DATABASE_URL": db}, stdin=stdin)


@pytest.fixture
def db(clean_runs: str) -> str:
    return clean_runs


@pytest.fixture
def api(backend_env: dict[str, str]) -> FlaskClient:
    # The CLI's effect on the very next request: the per-process token cache (its own tests are in
    # test_svc_backend_access.py) would otherwise let a revoked token pass for up to a second.
    app = create_app(Settings.from_env({**backend_env, "BARESTACK_TOKEN_CACHE_SECONDS": "0"}))
    app.testing = True
    return app.test_client()


def status_with(api: FlaskClient, token: str) -> int:
    return api.get("/runs?limit=1", headers=bearer(token)).status_code


def query(db: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def random_token() -> str:
    return "imported-" + secrets.token_urlsafe(32)


# --- tokens ---------------------------------------------------------------------------------


def test_create_prints_a_working_token_once_and_stores_only_its_hash(db: str, api: FlaskClient) -> None:
    created = tokens("create", "ci-bot", db=db)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("bst_") and len(token) >= 40 and created.stdout.count("\n") == 1
    assert token not in created.stderr
    assert status_with(api, token) == 200
    ((stored_hash, act_for_users),) = query(
        db, "SELECT token_hash, act_for_users FROM barestack.api_tokens WHERE name = 'ci-bot'"
    )
    assert stored_hash == hash_token(token) and act_for_users is False
    assert token not in str(query(db, "SELECT * FROM barestack.api_tokens"))


def test_create_for_users_makes_a_delegating_token(db: str, api: FlaskClient) -> None:
    token = tokens("create", "web", "--act-for-users", db=db).stdout.strip()
    response = api.post("/modules/backend/echo-001/runs", json={}, headers=bearer(token, user="carol"))
    assert response.status_code == 202


@pytest.mark.parametrize("name", ["Bad", "-dash", "with space", "a" * 64, "semi;colon", ""])
def test_bad_names_exit_2_and_store_nothing(db: str, name: str) -> None:
    result = tokens("create", "--", name, db=db)  # "--": so that "-dash" is a name, not an option
    assert result.returncode == 2 and "bad token name" in result.stderr
    assert query(db, "SELECT count(*) FROM barestack.api_tokens") == [(0,)]


def test_a_duplicate_create_exits_2_and_keeps_the_first_token(db: str, api: FlaskClient) -> None:
    first = tokens("create", "dup", db=db).stdout.strip()
    again = tokens("create", "dup", db=db)
    assert again.returncode == 2 and "exists already" in again.stderr and again.stdout == ""
    assert status_with(api, first) == 200


def test_list_shows_names_and_dates_but_never_hashes(db: str) -> None:
    token = tokens("create", "alpha", db=db).stdout.strip()
    tokens("create", "beta", "--act-for-users", db=db)
    tokens("revoke", "beta", db=db)
    listed = tokens("list", db=db)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t") == ["NAME", "ACT_FOR_USERS", "CREATED", "REVOKED", "LAST_USED"]
    alpha, beta = (line.split("\t") for line in lines[1:])
    assert alpha[:2] == ["alpha", "no"] and alpha[3] == "-" and alpha[4] == "-"
    assert beta[:2] == ["beta", "yes"] and beta[3] != "-"
    assert hash_token(token) not in listed.stdout and token not in listed.stdout


def test_revoke_refuses_the_token_at_once(db: str, api: FlaskClient) -> None:
    token = tokens("create", "soon-gone", db=db).stdout.strip()
    assert status_with(api, token) == 200
    revoked = tokens("revoke", "soon-gone", db=db)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert status_with(api, token) == 401
    again = tokens("revoke", "soon-gone", db=db)
    assert again.returncode == 0 and "already" in again.stdout
    unknown = tokens("revoke", "never-was", db=db)
    assert unknown.returncode == 2 and "no token named 'never-was'" in unknown.stderr


def test_import_creates_then_changes_nothing_then_follows_changes(db: str, api: FlaskClient) -> None:
    bystander = tokens("create", "bystander", db=db).stdout.strip()
    frontend, ops = random_token(), random_token()
    wanted = [{"name": "frontend", "token": frontend, "act_for_users": True}, {"name": "ops", "token": ops}]

    first = tokens("import", db=db, stdin=json.dumps(wanted))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"changed": True, "created": ["frontend", "ops"], "updated": []}
    assert first.stdout.count("\n") == 1 and frontend not in first.stdout + first.stderr
    assert status_with(api, frontend) == 200 and status_with(api, ops) == 200
    assert (
        api.post("/modules/backend/echo-001/runs", json={}, headers=bearer(frontend, "dan")).status_code
        == 202
    )

    again = tokens("import", db=db, stdin=json.dumps(wanted))
    assert json.loads(again.stdout) == {"changed": False, "created": [], "updated": []}
    check_again = tokens("import", "--check", db=db, stdin=json.dumps(wanted))
    assert json.loads(check_again.stdout) == {"changed": False, "created": [], "updated": []}

    # A new token for ops, a new flag for frontend, and someone revoked frontend meanwhile.
    tokens("revoke", "frontend", db=db)
    new_ops = random_token()
    changed = [
        {"name": "frontend", "token": frontend, "act_for_users": False},
        {"name": "ops", "token": new_ops},
    ]
    check = tokens("import", "--check", db=db, stdin=json.dumps(changed))
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == {"changed": True, "created": [], "updated": ["frontend", "ops"]}
    assert status_with(api, ops) == 200 and status_with(api, new_ops) == 401  # check mode changed nothing
    assert status_with(api, frontend) == 401

    applied = tokens("import", db=db, stdin=json.dumps(changed))
    assert json.loads(applied.stdout) == {"changed": True, "created": [], "updated": ["frontend", "ops"]}
    assert status_with(api, new_ops) == 200 and status_with(api, ops) == 401
    assert status_with(api, frontend) == 200  # un-revoked
    assert api.get("/runs", headers=bearer(frontend, "dan")).status_code == 403  # no longer delegating
    assert status_with(api, bystander) == 200  # tokens not in the list are never touched
    assert [row[0] for row in query(db, "SELECT name FROM barestack.api_tokens ORDER BY name")] == [
        "bystander",
        "frontend",
        "ops",
    ]


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"name": "x"}', "must be a JSON list"),
        ('[{"name": "x"}]', 'must be an object with "name" and "token"'),
        ('[{"name": "Bad Name", "token": "TOKEN"}]', "bad token name"),
        ('[{"name": "short", "token": "abc"}]', "32+ characters"),
        ('[{"name": "spaces", "token": "has spaces has spaces has spaces has spaces"}]', "letters, digits"),
        ('[{"name": "flag", "token": "TOKEN", "act_for_users": "yes"}]', "true or false"),
        ('[{"name": "extra", "token": "TOKEN", "admin": true}]', "unknown field(s): admin"),
        ('[{"name": "twice", "token": "TOKEN"}, {"name": "twice", "token": "TOKEN2"}]', "appears twice"),
        ('[{"name": "one", "token": "TOKEN"}, {"name": "two", "token": "TOKEN"}]', "same token"),
    ],
)
def test_bad_import_input_exits_2_and_changes_nothing(db: str, stdin: str, message: str) -> None:
    secret = random_token()
    stdin = stdin.replace("TOKEN2", random_token()).replace("TOKEN", secret)
    result = tokens("import", db=db, stdin=stdin)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert secret not in result.stderr + result.stdout
    assert query(db, "SELECT count(*) FROM barestack.api_tokens") == [(0,)]


def test_import_refuses_a_token_another_name_already_has(db: str) -> None:
    token = random_token()
    assert tokens("import", db=db, stdin=json.dumps([{"name": "first", "token": token}])).returncode == 0
    for mode in ([], ["--check"]):
        clash = tokens("import", *mode, db=db, stdin=json.dumps([{"name": "second", "token": token}]))
        assert clash.returncode == 2 and "already the token named 'first'" in clash.stderr
    assert [row[0] for row in query(db, "SELECT name FROM barestack.api_tokens")] == ["first"]


def test_the_cli_needs_database_url_and_hides_its_password(pg_server: Any) -> None:
    missing = cli("tokens", "list", env={})
    assert missing.returncode == 2 and "DATABASE_URL is not set" in missing.stderr
    password = "Hidden-" + secrets.token_hex(8)
    url = f"postgresql://{pg_server.app_user}:{password}@127.0.0.1:{pg_server.port}/{pg_server.database}"
    wrong = tokens("list", db=url)
    assert wrong.returncode == 1 and "OperationalError" in wrong.stderr and password not in wrong.stderr


# --- retention ------------------------------------------------------------------------------


def test_retention_deletes_only_old_runs_that_are_not_running(db: str) -> None:
    rows = {
        "old-succeeded": ("succeeded", 40),
        "old-failed": ("failed", 31),
        "old-queued": ("queued", 45),
        "old-running": ("running", 50),
        "new-succeeded": ("succeeded", 29),
        "new-queued": ("queued", 0),
    }
    for module, (status, age_days) in rows.items():
        query(
            db,
            "INSERT INTO barestack.runs (id, service, module, status, created_at) "
            "VALUES (gen_random_uuid(), 'backend', %s, %s, now() - make_interval(days => %s))",
            (module, status, age_days),
        )
    result = cli("retention", "--days", "30", env={"DATABASE_URL": db})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted 3 runs older than 30 days"
    left = sorted(row[0] for row in query(db, "SELECT module FROM barestack.runs"))
    assert left == ["new-queued", "new-succeeded", "old-running"]
    again = cli("retention", "--days", "30", env={"DATABASE_URL": db})
    assert again.stdout.strip() == "deleted 0 runs older than 30 days"


def test_retention_deletes_in_batches(db: str) -> None:
    from barestack_backend.db import Database
    from barestack_backend.retention import delete_old_runs

    query(
        db,
        "INSERT INTO barestack.runs (id, service, module, status, created_at) "
        "SELECT gen_random_uuid(), 'backend', 'm', 'succeeded', now() - interval '9 days' "
        "FROM generate_series(1, 25)",
    )
    database = Database(db, application_name="retention-test", max_connections=1)
    try:
        assert delete_old_runs(database, 7, batch=10) == 25
    finally:
        database.close()
    assert query(db, "SELECT count(*) FROM barestack.runs") == [(0,)]


@pytest.mark.parametrize("days", ["0", "-1", "x", "²", "1.5", "7_0", "+7", "99999999"])
def test_retention_refuses_a_bad_number_of_days(db: str, days: str) -> None:
    query(
        db,
        "INSERT INTO barestack.runs (id, service, module, status, created_at) "
        "VALUES (gen_random_uuid(), 'backend', 'm', 'succeeded', now() - interval '400 days')",
    )
    result = cli("retention", f"--days={days}", env={"DATABASE_URL": db})
    assert result.returncode == 2, result.stderr
    assert query(db, "SELECT count(*) FROM barestack.runs") == [(1,)]


def test_import_takes_a_missing_or_null_act_for_users_as_false(db: str, api: FlaskClient) -> None:
    plain, nulled = random_token(), random_token()
    wanted = [{"name": "plain", "token": plain}, {"name": "nulled", "token": nulled, "act_for_users": None}]
    result = tokens("import", db=db, stdin=json.dumps(wanted))
    assert json.loads(result.stdout) == {"changed": True, "created": ["plain", "nulled"], "updated": []}
    for token in (plain, nulled):
        assert api.get("/runs", headers=bearer(token)).status_code == 200
        assert api.get("/runs", headers=bearer(token, user="erin")).status_code == 403


def test_imports_at_the_same_moment_both_succeed(db: str) -> None:
    """Every app host seeds the same tokens at once on a first deploy: the second import waits for
    the first and finds its rows, instead of inserting them again and failing on the unique index."""
    wanted = [{"name": "frontend", "token": random_token(), "act_for_users": True}]
    first = psycopg2.connect(db, cursor_factory=RealDictCursor)
    try:
        with first.cursor() as cur:  # the first host's import, not committed yet
            assert import_tokens(cur, parse_import(json.dumps(wanted)), check=False)["changed"] is True
        second = subprocess.Popen(
            [sys.executable, "-m", "barestack_backend.tokens", "import"],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": f"{BACKEND_DIR}:{SHARED_LIB}",
                "DATABASE_URL": db,
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stdin is not None
        second.stdin.write(json.dumps(wanted))
        second.stdin.close()
        waiting = (
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE application_name = 'barestack-tokens' AND wait_event_type = 'Lock'"
        )
        watcher = psycopg2.connect(db, cursor_factory=RealDictCursor)
        watcher.autocommit = True  # each reading of pg_stat_activity fresh, not one transaction's
        try:
            with watcher.cursor() as cur:
                deadline = time.monotonic() + 20
                while True:
                    cur.execute(waiting)
                    row = cur.fetchone()
                    if row is not None and row["n"] == 1:
                        break
                    assert second.poll() is None, second.stderr.read() if second.stderr else ""
                    assert time.monotonic() < deadline, "the second import never waited for the first"
                    time.sleep(0.05)
        finally:
            watcher.close()
        first.commit()
        second.wait(timeout=30)
        assert second.stdout is not None and second.stderr is not None
        out, err = second.stdout.read(), second.stderr.read()
    finally:
        first.close()
    assert second.returncode == 0, err
    assert json.loads(out) == {"changed": False, "created": [], "updated": []}
