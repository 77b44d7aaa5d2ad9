#!/usr/bin/python
"""Ansible module: one venv per module (and per service) for a release, in one task.

A task looped over 400 modules costs 400 round trips (docs/ARCHITECTURE.md, "One task for all
modules"), so this module runs the venv manager (services/tools/venv_manager.py, shipped in the
release) once on the host and reports what it created, updated or removed. Check mode runs the
manager's --dry-run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: barestack_venvs
short_description: Build a release's per-module venvs with the barestack venv manager
description:
  - Runs C(services/tools/venv_manager.py build) of the release on the host, offline, from a wheelhouse.
  - With O(seed_from), first starts from a hardlinked copy of that release's venvs and mapping, so only
    venvs whose requirements changed are built.
  - Reports changed only when a venv or the mapping changed; supports check mode and diff.
options:
  release_dir:
    description: The release (holds services/, gets venvs/ and venv_mapping.json).
    required: true
    type: path
  seed_from:
    description: A previous release whose venvs and mapping the new release starts from.
    type: path
  wheelhouse:
    description: Folder of wheels, the only package source.
    required: true
    type: path
  uv:
    description: The uv binary.
    required: true
    type: path
  cache_dir:
    description: uv's cache, shared by every venv so files hardlink.
    required: true
    type: path
  python:
    description: Interpreter the venvs are made from.
    type: path
    default: /usr/bin/python3
  jobs:
    description: Parallel builds.
    type: int
"""

RETURN = r"""
report:
  description: The venv manager's JSON report (created, updated, removed, unchanged_count, failed, mapping).
  returned: always
  type: dict
"""


def seed_release(module: AnsibleModule, seed_from: str, release_dir: str) -> bool:
    """Hardlink the previous release's venvs into a new release and point its mapping at them."""
    venvs = os.path.join(release_dir, "venvs")
    mapping = os.path.join(release_dir, "venv_mapping.json")
    previous_venvs = os.path.join(seed_from, "venvs")
    previous_mapping = os.path.join(seed_from, "venv_mapping.json")
    if os.path.exists(venvs) or not os.path.isdir(previous_venvs) or not os.path.isfile(previous_mapping):
        return False
    if module.check_mode:
        return True
    subprocess.run(["cp", "-al", previous_venvs, venvs], check=True)
    old_prefix, new_prefix = seed_from.rstrip("/") + "/", release_dir.rstrip("/") + "/"
    with open(previous_mapping, encoding="utf-8") as handle:
        text = handle.read()
    # Same layout, new place: every path the mapping records moves with the release.
    seeded = json.loads(text.replace(json.dumps(old_prefix)[1:-1], json.dumps(new_prefix)[1:-1]))
    temporary = mapping + ".seed"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(seeded, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, mapping)
    return True


def main() -> None:
    # The services' users read the venvs and venv_mapping.json: whatever umask the login shell
    # has (the hardening sets 027 for logins), what this writes must be world-readable.
    os.umask(0o022)
    module = AnsibleModule(
        argument_spec={
            "release_dir": {"type": "path", "required": True},
            "seed_from": {"type": "path"},
            "wheelhouse": {"type": "path", "required": True},
            "uv": {"type": "path", "required": True},
            "cache_dir": {"type": "path", "required": True},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "jobs": {"type": "int"},
        },
        supports_check_mode=True,
    )
    params = module.params
    release_dir = params["release_dir"]
    manager = os.path.join(release_dir, "services", "tools", "venv_manager.py")
    if not os.path.isfile(manager):
        module.fail_json(msg=f"no venv manager at {manager}: is {release_dir} a barestack release?")
    if shutil.which(params["uv"]) is None:
        module.fail_json(msg=f"uv not found at {params['uv']}")

    seeded = bool(params["seed_from"]) and seed_release(module, params["seed_from"], release_dir)
    command = [
        params["python"], "-I", manager, "build",
        "--services-dir", os.path.join(release_dir, "services"),
        "--venvs-dir", os.path.join(release_dir, "venvs"),
        "--mapping", os.path.join(release_dir, "venv_mapping.json"),
        "--wheelhouse", params["wheelhouse"],
        "--uv", params["uv"],
        "--cache-dir", params["cache_dir"],
        "--python", params["python"],
    ]  # fmt: skip
    if params["jobs"]:
        command += ["--jobs", str(params["jobs"])]
    if module.check_mode:
        command.append("--dry-run")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        module.fail_json(
            msg="the venv manager did not report JSON", rc=result.returncode, stderr=result.stderr
        )

    changed = seeded or bool(report.get("changed"))
    outcome = {"changed": changed, "report": report, "rc": result.returncode}
    if module._diff and report.get("diff"):
        outcome["diff"] = report["diff"]
    if report.get("error"):
        module.fail_json(msg=f"venv manager: {report['error']}", **outcome)
    if report.get("failed"):
        names = ", ".join(failure["venv"] for failure in report["failed"])
        details = "\n".join(f"{failure['venv']}: {failure['error']}" for failure in report["failed"])
        module.fail_json(msg=f"venvs failed to build: {names}\n{details}", **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
