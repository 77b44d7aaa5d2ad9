"""venv_mapping.json: read it, render it deterministically, replace it atomically only on change.

The backend's /modules endpoint and run_module.sh read this file, so it is never left half
written, and a run that changes nothing does not touch it (no timestamps in it): an
unchanged file is how Ansible reports changed=0.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .discovery import is_valid_key
from .errors import VenvManagerError

MAPPING_FORMAT = 1


def load_mapping_venvs(path: Path) -> dict[str, dict[str, Any]]:
    """The ``venvs`` entries of an existing mapping; a missing file means none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise VenvManagerError(f"cannot read mapping {path}: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise VenvManagerError(
            f"mapping {path} is not valid JSON ({error}); remove it to rebuild every venv"
        ) from None
    if not isinstance(document, dict) or document.get("format") != MAPPING_FORMAT:
        raise VenvManagerError(f"mapping {path} is not a format {MAPPING_FORMAT} venv mapping")
    venvs = document.get("venvs")
    if not isinstance(venvs, dict) or not all(isinstance(entry, dict) for entry in venvs.values()):
        raise VenvManagerError(f"mapping {path} has no valid 'venvs' object")
    # Venv paths to delete are derived from keys, so a key must never be able to escape
    # the venvs dir ("../etc").
    bad_keys = sorted(key for key in venvs if not is_valid_key(key))
    if bad_keys:
        raise VenvManagerError(f"mapping {path} has invalid venv keys: {', '.join(bad_keys)}")
    return venvs


def render_mapping(python_version: str, venvs: dict[str, dict[str, Any]]) -> str:
    """The mapping's exact text: sorted keys so equal content gives equal bytes."""
    document = {"format": MAPPING_FORMAT, "python": python_version, "venvs": venvs}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def current_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace ``path`` with ``text`` unless it already holds exactly that."""
    if current_text(path) == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # Readers are the services' own users; the file holds paths and versions, no secrets.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
    return True
