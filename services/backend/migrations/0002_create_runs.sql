-- One row per requested module run. The backend inserts it as 'queued' and puts its
-- id on the Redis stream; a worker moves it through 'running' to a final status.
CREATE TABLE barestack.runs (
    id           uuid        PRIMARY KEY,
    service      text        NOT NULL CHECK (service <> ''),
    module       text        NOT NULL CHECK (module <> ''),
    args         jsonb       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(args) = 'array'),
    status       text        NOT NULL DEFAULT 'queued'
                             CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timeout')),
    exit_code    integer,
    duration_ms  bigint      CHECK (duration_ms >= 0),
    stdout_tail  text        NOT NULL DEFAULT '',
    stderr_tail  text        NOT NULL DEFAULT '',
    -- How many times a worker started it: more than 1 means a worker died or was
    -- stopped mid-run and another one took the run over.
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    worker       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);

-- "Last runs of this module" (module page, last status per module on the front page).
CREATE INDEX runs_service_module_created_idx ON barestack.runs (service, module, created_at DESC);
-- "Latest runs" across all modules.
CREATE INDEX runs_created_idx ON barestack.runs (created_at DESC);

COMMENT ON TABLE barestack.runs IS 'Module runs requested through the backend API and executed by barestack workers';
