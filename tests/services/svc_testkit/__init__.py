"""Real throwaway infrastructure for the services' tests: PostgreSQL, Redis, modules, servers, browser."""
