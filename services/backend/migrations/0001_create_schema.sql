-- Everything barestack owns lives in its own schema, so it never collides with
-- objects other tools put in "public". IF NOT EXISTS because the deployment creates
-- the schema first to hold its version table (barestack.schema_migrations).
CREATE SCHEMA IF NOT EXISTS barestack;

COMMENT ON SCHEMA barestack IS 'barestack: module runs and other application state';
