-- Who may use the API: one row per bearer token, managed with
-- "python -m barestack_backend.tokens" (create, list, revoke, import).
CREATE TABLE barestack.api_tokens (
    name           text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    -- SHA-256 of the token, in hex. A fast unsalted hash is the right tool here and a password
    -- hash (bcrypt, argon2) is not: tokens are long random strings (the CLI makes 256-bit ones,
    -- import refuses short ones), so there is nothing to guess from a leaked hash, and a slow
    -- hash would only slow down every request. UNIQUE gives the index each request looks up.
    token_hash     text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    -- May name the person it acts for (X-Barestack-User): the frontend's token, say.
    act_for_users  boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Set: the token is refused from the next request on. Kept so the name stays taken.
    revoked_at     timestamptz,
    -- Refreshed at most once a minute per token, so a busy token does not write on every request.
    last_used_at   timestamptz
);

COMMENT ON TABLE barestack.api_tokens IS 'Bearer tokens of the backend API (hashes only)';

-- Who asked for a run: the token's name, or the person a delegating token acted for
-- (then requested_via names the token). Runs from before access control have NULLs.
ALTER TABLE barestack.runs
    ADD COLUMN requested_by  text,
    ADD COLUMN requested_via text;

-- The per-identity quota counts queued and running runs on every start: only those are indexed.
CREATE INDEX runs_active_requester_idx ON barestack.runs (requested_by)
    WHERE status IN ('queued', 'running');
