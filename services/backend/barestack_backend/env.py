"""Reading settings from environment variables, failing with a message that names the variable.

Values are never echoed back in errors: several of them (DATABASE_URL, REDIS_URL) carry passwords.
"""

from collections.abc import Mapping
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A required environment variable is missing or has an invalid value."""


def required(environ: Mapping[str, str], name: str, hint: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set ({hint})")
    return value


def optional(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...], hint: str) -> str:
    value = required(environ, name, hint)
    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        scheme = ""
    if scheme not in schemes:
        raise ConfigError(
            f"environment variable {name} must be a URL starting with one of: {', '.join(schemes)}"
        )
    return value


def positive_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"environment variable {name} must be greater than 0, got {raw!r}")
    return value


def positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"environment variable {name} must be greater than 0, got {raw!r}")
    return value
