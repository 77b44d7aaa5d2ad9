"""Reading settings from environment variables, failing with a message that names the variable.

Values are never echoed back in errors: several of them (DATABASE_URL, REDIS_URL) carry passwords.
"""

from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

# int or float: the caller's parser decides which, and the result keeps that type.
_Number = TypeVar("_Number", int, float)


class ConfigError(ValueError):
    """A required environment variable is missing or has an invalid value."""


def required(environ: Mapping[str, str], name: str, hint: str) -> str:
    """The variable's value; missing or blank is an error whose ``hint`` shows a valid value."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set ({hint})")
    return value


def optional(environ: Mapping[str, str], name: str, default: str) -> str:
    """The variable's value, or ``default`` when it is missing or blank."""
    value = environ.get(name, "").strip()
    return value or default


def url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...], hint: str) -> str:
    """A required URL whose scheme is one of ``schemes``; the error never quotes the value."""
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


def _positive(
    environ: Mapping[str, str], name: str, default: _Number, parse: Callable[[str], _Number], kind: str
) -> _Number:
    """One rule for numeric settings: unset means ``default``; otherwise ``parse`` it, and it must be > 0."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be {kind}, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"environment variable {name} must be greater than 0, got {raw!r}")
    return value


def positive_number(environ: Mapping[str, str], name: str, default: float) -> float:
    """A number greater than 0 (a timeout, say), or ``default`` when the variable is unset."""
    return _positive(environ, name, default, float, "a number")


def positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number greater than 0 (a count, say), or ``default`` when the variable is unset."""
    return _positive(environ, name, default, int, "a whole number")


def seconds(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float, *, low_open: bool = False
) -> float:
    """Seconds from ``low`` (excluded when ``low_open``) to ``high``, or ``default`` when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number of seconds, got {raw!r}") from None
    if not (low < value if low_open else low <= value) or value > high:
        raise ConfigError(
            f"environment variable {name} must be between {low:g} and {high:g} seconds, got {raw!r}"
        )
    return value
