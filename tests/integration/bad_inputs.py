#!/usr/bin/env python3
"""The README's bad-input table, as data, and the check that each input gets what the table says.

    bad_inputs.py api --base http://HOST      send every API row through Nginx (token: $BARESTACK_TOKEN)
    bad_inputs.py cli                         run every CLI row on this host (run it there, as root)
    bad_inputs.py markdown                    print the table for the README (inventory rows included)

Standard library only: it runs on the controller and, for the CLI rows, on a host.
Exit 1 when any row gets something else than the table says, listing each such row.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RUNS = "/api/modules/backend/a-001/runs"
NESTED = "[" * 30000 + "]" * 30000
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Api:
    what: str
    method: str
    path: str
    expect: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    token: bool = True  # send the verify token


@dataclass(frozen=True)
class Cli:
    what: str
    argv: list[str]
    expect: int  # exit code


API_ROWS = [
    Api("start a run without a token", "POST", RUNS, 401, b"{}", JSON, token=False),
    Api(
        "start a run with an unknown token",
        "POST",
        RUNS,
        401,
        b"{}",
        {**JSON, "Authorization": "Bearer bst_not-a-token"},
        token=False,
    ),
    Api(
        "start a run with a malformed Authorization header",
        "POST",
        RUNS,
        401,
        b"{}",
        {**JSON, "Authorization": "Basic YWRtaW46YWRtaW4="},
        token=False,
    ),
    Api(
        "text/plain POST, empty body (a cross-site form can send it)",
        "POST",
        RUNS,
        415,
        b"",
        {"Content-Type": "text/plain"},
    ),
    Api(
        "text/plain POST with a JSON body", "POST", RUNS, 415, b'{"args": []}', {"Content-Type": "text/plain"}
    ),
    Api("form POST", "POST", RUNS, 415, b"args=x", {"Content-Type": "application/x-www-form-urlencoded"}),
    Api("JSON that is not an object", "POST", RUNS, 400, b"[1, 2]", JSON),
    Api('"args" not a list', "POST", RUNS, 400, b'{"args": "x"}', JSON),
    Api('"args" holding a number', "POST", RUNS, 400, b'{"args": [1]}', JSON),
    Api("unknown field", "POST", RUNS, 400, b'{"argz": []}', JSON),
    Api("JSON nested 30,000 deep", "POST", RUNS, 400, NESTED.encode(), JSON),
    Api("invalid UTF-8 in JSON", "POST", RUNS, 400, b'{"args": ["\xff\xfe"]}', JSON),
    Api("NaN in JSON", "POST", RUNS, 400, b'{"args": [NaN]}', JSON),
    Api("NUL in an argument", "POST", RUNS, 400, b'{"args": ["a\\u0000b"]}', JSON),
    Api("body over 64 KiB (Nginx)", "POST", RUNS, 413, b"x" * 70_000, JSON),
    Api(
        "arguments over 16 KiB in all",
        "POST",
        RUNS,
        413,
        ('{"args": [' + ",".join(['"' + "y" * 4000 + '"'] * 5) + "]}").encode(),
        JSON,
    ),
    Api("unknown module", "POST", "/api/modules/backend/zz-999/runs", 404, b"{}", JSON),
    Api("module name with a path", "POST", "/api/modules/backend/..%2F..%2Fetc/runs", 404, b"{}", JSON),
    Api(
        "X-Barestack-User from a token that may not act for users",
        "POST",
        RUNS,
        403,
        b"{}",
        {**JSON, "X-Barestack-User": "alice"},
    ),
    Api("list runs without a token", "GET", "/api/runs", 401, token=False),
    Api(
        "read a run without a token",
        "GET",
        "/api/runs/00000000-0000-0000-0000-000000000000",
        401,
        token=False,
    ),
    Api("limit=² (a digit to str.isdigit, not to int)", "GET", "/api/runs?limit=%C2%B2", 400),
    Api("limit=0", "GET", "/api/runs?limit=0", 400),
    Api("limit=1e3", "GET", "/api/runs?limit=1e3", 400),
    Api("limit with 23 digits", "GET", "/api/runs?limit=99999999999999999999999", 400),
    Api("module filter without a slash", "GET", "/api/runs?module=nope", 400),
    Api("run id that is not a UUID", "GET", "/api/runs/not-a-uuid", 404),
    Api("run id that does not exist", "GET", "/api/runs/00000000-0000-0000-0000-000000000000", 404),
    Api("DELETE on the run list", "DELETE", "/api/runs", 405),
    Api("unknown API path", "GET", "/api/nowhere", 404),
    Api("dashboard without a login", "GET", "/infra/", 401, token=False),
    Api("dashboard metrics without a login", "GET", "/infra/metrics", 401, token=False),
    Api(
        "login post from another site",
        "POST",
        "/login",
        403,
        b"username=admin&password=x",
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"},
        token=False,
    ),
    Api(
        "login post without the form's CSRF token",
        "POST",
        "/login",
        403,
        b"username=admin&password=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
        token=False,
    ),
    Api(
        "start a run from the page without a login",
        "POST",
        "/modules/backend/a-001/run",
        401,
        b"args=",
        {"Content-Type": "application/x-www-form-urlencoded"},
        token=False,
    ),
]

CLI_ROWS = [
    Cli("barestack-api-token create with a bad name", ["barestack-api-token", "create", "Bad Name"], 2),
    Cli("barestack-api-token revoke an unknown name", ["barestack-api-token", "revoke", "no-such-token"], 2),
    Cli("barestack-api-token with no command", ["barestack-api-token"], 2),
    Cli(
        "run_module.sh with a script outside the module",
        ["run_module.sh", "backend/a-001", "../../../../etc/passwd"],
        2,
    ),
    Cli("run_module.sh with a path as module name", ["run_module.sh", "../backend/a-001"], 2),
    Cli("run_module.sh with an unknown module", ["run_module.sh", "backend/zz-999"], 2),
]

INVENTORY_ROWS = [
    ("app_env_extra value with a newline", "stops before any change, naming app_env_extra"),
    ("app_env_database_name `barestack; DROP`", "stops, naming app_env_database_name"),
    ("postgresql_app_role `app role`", "stops, naming postgresql_app_role"),
    ("postgresql_extra_settings value with a quote and newline", "stops, naming postgresql_extra_settings"),
    ("app_health_checks path `http://evil.example/`", "stops, naming app_health_checks"),
    ("app_run_timeout 0 or 999999", "stops, naming app_run_timeout"),
    ("app_users password shorter than 12", "stops, naming app_users (the password is never printed)"),
    ("nginx_server_name `example.org; return 200`", "stops, naming nginx_server_name"),
]


def send(base: str, row: Api, token: str) -> int:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
    headers = dict(row.headers)
    if row.token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(row.method, row.path, body=row.body or None, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def check_api(base: str) -> list[str]:
    token = os.environ.get("BARESTACK_TOKEN", "")
    if not token:
        return ["BARESTACK_TOKEN is not set"]
    wrong = []
    for row in API_ROWS:
        got = send(base, row, token)
        print(f"{got} {row.method} {row.path[:60]}  ({row.what})")
        if got != row.expect:
            wrong.append(f"{row.what}: expected {row.expect}, got {got}")
    return wrong


def check_cli() -> list[str]:
    wrong = []
    for row in CLI_ROWS:
        got = subprocess.run(row.argv, capture_output=True, check=False).returncode
        print(f"exit {got}: {' '.join(row.argv)}  ({row.what})")
        if got != row.expect:
            wrong.append(f"{row.what}: expected exit {row.expect}, got {got}")
    return wrong


def markdown() -> str:
    lines = ["| input | what it gets |", "|---|---|"]
    for row in API_ROWS:
        lines.append(f"| API: {row.what} (`{row.method} {row.path[:48]}`) | {row.expect} |")
    for row in CLI_ROWS:
        lines.append(f"| CLI: {row.what} | exit {row.expect}, a message on stderr |")
    for what, gets in INVENTORY_ROWS:
        lines.append(f"| inventory: {what} | {gets} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "markdown":
        print(markdown())
        return 0
    if len(argv) == 4 and argv[1] == "api" and argv[2] == "--base":
        wrong = check_api(argv[3])
    elif len(argv) == 2 and argv[1] == "cli":
        wrong = check_cli()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for line in wrong:
        print(f"WRONG: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
