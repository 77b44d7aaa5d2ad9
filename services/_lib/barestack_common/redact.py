"""Removing credentials from text that leaves the process (HTTP responses, log lines)."""

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

REPLACEMENT = "***"
# scheme://user:password@host -> keep the user, hide the password.
_URL_PASSWORD = re.compile(r"(?P<prefix>[a-z][a-z0-9+.-]*://[^:@/\s]*:)[^@\s]*@", re.IGNORECASE)
# libpq key=value strings: password=secret or password='se cret'.
_KEYWORD_PASSWORD = re.compile(r"(?P<prefix>password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def secrets_in_url(url: str) -> list[str]:
    """The password of a URL in every spelling it may show up in (percent-encoded and decoded)."""
    try:
        raw = urlsplit(url).password
    except ValueError:
        raw = None
    if not raw:
        return []
    return sorted({raw, unquote(raw)}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and any URL or libpq password replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REPLACEMENT)
    text = _URL_PASSWORD.sub(rf"\g<prefix>{REPLACEMENT}@", text)
    return _KEYWORD_PASSWORD.sub(rf"\g<prefix>{REPLACEMENT}", text)


def describe_error(error: BaseException, secrets: Iterable[str] = ()) -> dict[str, str]:
    """Error class and a one-line, credential-free message, for health checks and logs."""
    message = " ".join(str(error).split()) or error.__class__.__name__
    return {"error": error.__class__.__name__, "message": redact(message, secrets)}
