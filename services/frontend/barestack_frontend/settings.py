"""The frontend's settings, read from the environment (systemd's EnvironmentFile in production)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from barestack_common import env, log_setup
from barestack_common.auth import AuthSettings
from barestack_common.env import ConfigError
from barestack_common.http_client import SUPPORTED_SCHEMES

DEFAULT_BACKEND_TIMEOUT_S = 3.0
# How long the catalogue shown to visitors who are not logged in is reused before it is asked again.
DEFAULT_CATALOGUE_TTL_S = 2.0


def _backend_api_url(environ: Mapping[str, str]) -> str:
    value = environ.get("BACKEND_API_URL", "").strip()
    if not value:
        raise ConfigError(
            "environment variable BACKEND_API_URL is not set (e.g. http://127.0.0.1:5000 or "
            "http+unix://%2Frun%2Fbarestack%2Fbackend.sock)"
        )
    parts = urlsplit(value)
    if parts.scheme not in SUPPORTED_SCHEMES or not parts.netloc:
        raise ConfigError(
            f"environment variable BACKEND_API_URL must be a URL starting with one of: "
            f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        )
    return value.rstrip("/")


def _frontend_token(environ: Mapping[str, str]) -> str | None:
    token = environ.get("BARESTACK_FRONTEND_TOKEN", "").strip()
    if not token:
        return None
    if not all(0x21 <= ord(c) < 0x7F for c in token):
        # It goes into an HTTP header: printable ASCII only (the value itself is never shown).
        raise ConfigError(
            "environment variable BARESTACK_FRONTEND_TOKEN must be printable ASCII without spaces"
        )
    return token


@dataclass(frozen=True)
class Settings:
    backend_api_url: str
    backend_timeout_s: float = DEFAULT_BACKEND_TIMEOUT_S
    # Sent as "Authorization: Bearer ..." on every backend call (the backend's token named "frontend").
    frontend_token: str | None = field(default=None, repr=False)
    auth: AuthSettings = field(default_factory=AuthSettings)
    # Seconds the anonymous catalogue (and its page) is reused; 0 asks the backend on every view.
    catalogue_ttl_s: float = DEFAULT_CATALOGUE_TTL_S
    # Requests at least this slow get a journal line (server errors always do): barestack_common.request_log.
    slow_request_s: float = log_setup.DEFAULT_SLOW_REQUEST_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        return cls(
            backend_api_url=_backend_api_url(environ),
            backend_timeout_s=env.seconds(
                environ, "BACKEND_TIMEOUT", DEFAULT_BACKEND_TIMEOUT_S, 0, 60, low_open=True
            ),
            frontend_token=_frontend_token(environ),
            auth=AuthSettings.from_env(environ),
            catalogue_ttl_s=env.seconds(environ, "BARESTACK_CATALOGUE_TTL", DEFAULT_CATALOGUE_TTL_S, 0, 60),
            slow_request_s=log_setup.slow_request_seconds(environ),
        )
