"""The backend's long-lived collaborators, built once per app and reached through ``current_app``."""

from dataclasses import dataclass, field

import redis
from barestack_common.redact import secrets_in_url
from flask import current_app

from barestack_backend import redis_connection
from barestack_backend.answer_cache import AnswerCache
from barestack_backend.db import Database, pool_size_from_env
from barestack_backend.module_catalog import ModuleCatalog
from barestack_backend.run_queue import RunQueue
from barestack_backend.settings import Settings

EXTENSION_KEY = "barestack_backend"


@dataclass
class BackendServices:
    settings: Settings
    database: Database
    redis: redis.Redis
    queue: RunQueue
    catalog: ModuleCatalog
    answers: AnswerCache
    secrets: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> "BackendServices":
        client = redis_connection.connect(settings.redis_url)
        return cls(
            settings=settings,
            database=Database(
                settings.database_url,
                application_name="barestack-backend",
                max_connections=pool_size_from_env(),
            ),
            redis=client,
            queue=RunQueue(client, settings.runs_stream, settings.runs_group),
            catalog=ModuleCatalog(settings.venv_mapping_path),
            answers=AnswerCache(settings.answer_cache_s),
            secrets=secrets_in_url(settings.database_url) + secrets_in_url(settings.redis_url),
        )


def current() -> BackendServices:
    # Through the app object itself: an attribute read on the current_app proxy costs ~6 times more.
    return current_app._get_current_object().extensions[EXTENSION_KEY]  # type: ignore[attr-defined]
