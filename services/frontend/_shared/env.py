"""Settings modules read from the environment, with an error that says where they come from."""

import os

ENV_FILE_HINT = "it comes from /etc/barestack/barestack.env, which run_module.sh loads"


class MissingSettingError(Exception):
    """A setting the module needs is not in its environment."""


def require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSettingError(f"{name} is not set ({ENV_FILE_HINT})")
    return value


def optional_env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default
