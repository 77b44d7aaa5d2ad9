"""Validating request bodies: any POST is a JSON object; a run request ``{"args": ["--flag", "value"]}``."""

import json
from typing import Any

from flask import Request

from barestack_backend.errors import ApiError

MAX_ARGS = 64
MAX_ARG_CHARS = 4096
ALLOWED_KEYS = frozenset({"args"})
UTF8 = frozenset({"utf-8", "utf8"})


def _bad(detail: str) -> ApiError:
    return ApiError(400, "invalid run request", detail)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_object_body(request: Request) -> dict[str, Any]:
    """The body of a POST, which must be a JSON object sent as application/json (``{}`` at least).

    Anything else is a 4xx, never a 500: other media types (even with an empty body) 415, a body
    over MAX_CONTENT_LENGTH 413 (raised by werkzeug while reading), and bytes that are not UTF-8,
    not JSON, nested past Python's recursion limit or not an object 400.
    """
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != "application/json" or charset not in UTF8:
        raise ApiError(415, "unsupported media type", "send the body as application/json (UTF-8)")
    body = request.get_data(cache=True)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("body is not valid UTF-8") from None
    if not text.strip():
        raise _bad("body must be a JSON object; send {} for no arguments")
    try:
        document = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise _bad("body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, integers with too many digits
        raise _bad(f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise _bad('body must be a JSON object like {"args": ["..."]}')
    return document


def validate_args(args: Any, max_total_bytes: int) -> list[str]:
    if not isinstance(args, list):
        raise _bad('"args" must be a list of strings')
    if len(args) > MAX_ARGS:
        raise _bad(f'"args" may hold at most {MAX_ARGS} items, got {len(args)}')
    total = 0
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            raise _bad(f'"args"[{index}] must be a string, got {type(arg).__name__}')
        if len(arg) > MAX_ARG_CHARS:
            raise _bad(f'"args"[{index}] is longer than {MAX_ARG_CHARS} characters')
        if "\x00" in arg:
            # A NUL byte cannot be passed on a command line.
            raise _bad(f'"args"[{index}] contains a NUL character')
        try:
            total += len(arg.encode("utf-8"))
        except UnicodeEncodeError:
            # JSON's \ud800 escapes decode to lone surrogates, which PostgreSQL cannot store.
            raise _bad(f'"args"[{index}] is not valid Unicode (lone surrogate)') from None
    if total > max_total_bytes:
        raise ApiError(
            413, "arguments too large", f'"args" hold {total} bytes together; at most {max_total_bytes}'
        )
    return list(args)


def parse(document: dict[str, Any], max_total_bytes: int) -> list[str]:
    """The module arguments asked for in a run request's JSON object; no "args" means none."""
    unknown = sorted(set(document) - ALLOWED_KEYS)
    if unknown:
        shown = ", ".join(key[:40] for key in unknown[:5])  # keys are the caller's: keep the echo short
        raise _bad(f"unknown field(s): {shown}")
    return validate_args(document.get("args", []), max_total_bytes)
