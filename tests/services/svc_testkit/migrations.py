"""The backend's schema migrations, applied by the backend's own migrator (barestack_backend.migrate).

That module is what the deployment runs on the database host; the tests call the very same code,
so a migration that passes here is applied the same way there.
"""

import sys
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[3] / "services" / "backend"
if str(BACKEND) not in sys.path:
    sys.path.insert(0, str(BACKEND))

from barestack_backend import migrate as migrator  # noqa: E402
from barestack_backend.migrate import DEFAULT_DIR as MIGRATIONS_DIR  # noqa: E402
from barestack_backend.migrate import Migration, MigrationError, migrate, migration_files  # noqa: E402

MIGRATOR_FILE = Path(migrator.__file__)

__all__ = [
    "MIGRATIONS_DIR",
    "MIGRATOR_FILE",
    "Migration",
    "MigrationError",
    "apply_migrations",
    "migrate",
    "migration_files",
]


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations, as the connecting user; returns the versions applied now."""
    return migrate(database_url, directory).applied
