"""Validating the body of ``POST /modules/<service>/<module>/runs``: ``{"args": ["--flag", "value"]}``."""

import json
from typing import Any

from flask import Request

from barestack_backend.errors import ApiError

MAX_ARGS = 64
MAX_ARG_CHARS = 4096
ALLOWED_KEYS = frozenset({"args"})


def _bad(detail: str) -> ApiError:
    return ApiError(400, "invalid run request", detail)


def validate_args(args: Any) -> list[str]:
    if not isinstance(args, list):
        raise _bad('"args" must be a list of strings')
    if len(args) > MAX_ARGS:
        raise _bad(f'"args" may hold at most {MAX_ARGS} items, got {len(args)}')
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            raise _bad(f'"args"[{index}] must be a string, got {type(arg).__name__}')
        if len(arg) > MAX_ARG_CHARS:
            raise _bad(f'"args"[{index}] is longer than {MAX_ARG_CHARS} characters')
        if "\x00" in arg:
            # A NUL byte cannot be passed on a command line.
            raise _bad(f'"args"[{index}] contains a NUL character')
    return list(args)


def parse(request: Request) -> list[str]:
    """The module arguments asked for; an empty body means no arguments."""
    body = request.get_data(cache=True)
    if not body.strip():
        return []
    if not request.is_json:
        raise ApiError(415, "unsupported media type", "send the run request as application/json")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise _bad(f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise _bad('body must be a JSON object like {"args": ["..."]}')
    unknown = sorted(set(document) - ALLOWED_KEYS)
    if unknown:
        raise _bad(f"unknown field(s): {', '.join(unknown)}")
    return validate_args(document.get("args", []))
