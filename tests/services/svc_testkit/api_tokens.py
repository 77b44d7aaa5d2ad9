"""API tokens for the services' tests, stored the way ``python -m barestack_backend.tokens`` stores them.

The hash comes from the backend's own ``hash_token``, so a test token is checked by the real
lookup; only the CLI's own tests go through the CLI (as subprocesses).
"""

import secrets
from typing import TYPE_CHECKING

import psycopg2

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

TEST_TOKEN_NAME = "tester"
FRONTEND_TOKEN_NAME = "frontend"


def register_token(database_url: str, name: str, token: str, act_for_users: bool = False) -> str:
    """Store ``token`` under ``name`` (replacing a token of that name); returns the token."""
    from barestack_backend.auth import hash_token

    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO barestack.api_tokens (name, token_hash, act_for_users) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, "
                "act_for_users = EXCLUDED.act_for_users, revoked_at = NULL",
                (name, hash_token(token), act_for_users),
            )
    finally:
        conn.close()
    return token


def issue_token(database_url: str, name: str, act_for_users: bool = False) -> str:
    """A new random token stored under ``name``, as ``tokens create`` makes them."""
    return register_token(database_url, name, "bst_" + secrets.token_urlsafe(32), act_for_users)


def bearer(token: str, user: str | None = None) -> dict[str, str]:
    """The request headers that present ``token`` (and the person it acts for, if any)."""
    headers = {"Authorization": f"Bearer {token}"}
    if user is not None:
        headers["X-Barestack-User"] = user
    return headers


def client_with_token(app: "Flask", token: str) -> "FlaskClient":
    """A Flask test client that sends ``Authorization: Bearer <token>`` on every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(token)["Authorization"]
    return client
