"""Jinja filters that turn API values into what a person reads."""

import shlex
from datetime import datetime

from flask import Flask

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "timeout")


def duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    return f"{milliseconds / 1000:.2f} s"


def timestamp(value: str | None) -> str:
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return value


def status_class(status: str | None) -> str:
    return f"status-{status}" if status in RUN_STATUSES else "status-none"


def quote_arg(arg: str) -> str:
    """An argument spelled so that shlex.split() (the run form) gives it back unchanged."""
    return shlex.quote(arg)


def install(app: Flask) -> None:
    app.add_template_filter(duration)
    app.add_template_filter(timestamp)
    app.add_template_filter(status_class)
    app.add_template_filter(quote_arg)
