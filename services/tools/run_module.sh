#!/usr/bin/env bash
# Run one module in its own venv: run_module.sh <service>/<module> [script] [args...]
#
# The venv comes from venv_mapping.json (BARESTACK_VENV_MAPPING), written by venv_manager.py.
# The module runs with cwd = its folder, PYTHONPATH = its service folder and services/_lib (so
# `from barestack_common.module import ...` works), and with the variables of BARESTACK_ENV_FILE
# when that is set, non-empty and readable. That file must hold no secrets (the deployed default
# is the modules' env file); it is read the way systemd reads an EnvironmentFile=, never evaluated
# by a shell.
# The script must lie inside the module's folder once symlinks are resolved.
# Exit 2 for usage errors, unknown modules and refused scripts; otherwise the module's own exit code.
#
# This script does not sandbox: the run worker starts it inside a transient systemd unit
# (barestack-run-*) with its own user, no secrets and no network. Run by hand (as root or any
# user), it runs the module as that user, with the caller's environment plus the env file.
set -euo pipefail

readonly PROG="run_module.sh"

if [[ $# -lt 1 || -z "$1" ]]; then
    printf 'usage: %s <service>/<module> [script] [args...]\n' "$PROG" >&2
    exit 2
fi
# Checked here, not only in the mapping lookup: the key ends up in paths and messages.
if [[ ! "$1" =~ ^[a-z][a-z0-9_]*/[a-z]+-[0-9]{3,}$ ]]; then
    printf "%s: invalid module name '%s' (expected <service>/<module>, e.g. backend/a-001)\n" "$PROG" "$1" >&2
    exit 2
fi

# The rest is python3, the host's system interpreter, present before any venv: it reads the
# mapping, parses the env file without evaluating it, checks the script and execs the venv's
# python, so nothing of the module's input ever passes through a shell.
exec python3 -I -c '
import json
import os
import sys

PROG = "run_module.sh"
WHITESPACE = " \t\n\r"
NEWLINE = "\n\r"
# Inside double quotes a backslash escapes only these (as in systemd and the shell).
DOUBLE_QUOTE_ESCAPES = "\"\\`$"


def die(message):
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.exit(2)


def valid_name(name):
    return bool(name) and not name[0].isdigit() and all(c == "_" or (c.isascii() and c.isalnum()) for c in name)


def parse_env_file(text):
    # systemd EnvironmentFile= syntax (its env-file.c), not python-dotenv: dotenv expands
    # ${VAR} references, which systemd does not, so the same file would mean two things.
    # KEY=VALUE lines; # and ; start comment lines; a value may be single-quoted (literal),
    # double-quoted (backslash escapes " \ ` $ and a newline) or bare (backslash escapes any
    # character, trailing whitespace dropped); quoted and bare parts concatenate; a backslash
    # before a newline continues the value. Lines without "=" or with an invalid name are skipped.
    result = {}
    key, value, state, trailing = "", [], "pre_key", None
    def push():
        name = key.strip()
        if valid_name(name):
            result[name] = "".join(value if trailing is None else value[:trailing])
    for c in text:
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in WHITESPACE:
                state, key = "key", c
        elif state == "key":
            if c in NEWLINE:
                state = "pre_key"
            elif c == "=":
                state, value, trailing = "pre_value", [], None
            else:
                key += c
        elif state == "pre_value":
            if c in NEWLINE:
                push()
                state = "pre_key"
            elif c == "\x27":
                state = "single"
            elif c == "\"":
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in WHITESPACE:
                state, trailing = "value", None
                value.append(c)
        elif state == "value":
            if c in NEWLINE:
                push()
                state = "pre_key"
            elif c == "\\":
                state, trailing = "value_escape", None
            else:
                if c not in WHITESPACE:
                    trailing = None
                elif trailing is None:
                    trailing = len(value)
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in NEWLINE:
                value.append(c)
        elif state == "single":
            if c == "\x27":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == "\"":
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in DOUBLE_QUOTE_ESCAPES:
                value.append(c)
            elif c not in NEWLINE:
                value.extend(("\\", c))
        elif state == "comment":
            if c in NEWLINE:
                state = "pre_key"
    if state not in ("pre_key", "key", "comment"):
        if state != "value":
            trailing = None
        push()
    return result


def inside(path, folder):
    return os.path.commonpath([path, folder]) == folder


def main(argv):
    key, script, args = argv[0], (argv[1] if len(argv) > 1 else "app.py"), argv[2:]
    mapping = os.environ.get("BARESTACK_VENV_MAPPING") or "/srv/barestack/shared/venv_mapping.json"
    env_file = os.environ.get("BARESTACK_ENV_FILE", "/etc/barestack/modules.env")
    try:
        with open(mapping, encoding="utf-8") as handle:
            entry = json.load(handle)["venvs"][key]
        venv, source = entry["venv"], entry["source"]
    except KeyError:
        die(f"unknown module {key!r} (not in {mapping})")
    except OSError:
        die(f"venv mapping {mapping} not found or not readable")
    except (OSError, ValueError, TypeError) as error:
        die(f"cannot look up {key!r} in {mapping}: {error.__class__.__name__}")
    if not all(isinstance(path, str) and path.startswith("/") for path in (venv, source)):
        die(f"bad venv or source path for {key!r} in {mapping}")
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK):
        die(f"venv of {key!r} is missing at {venv} (rerun the venv manager)")
    if not os.path.isdir(source):
        die(f"module folder of {key!r} is missing at {source}")
    module_dir = os.path.realpath(source)
    target = os.path.realpath(os.path.join(module_dir, script))
    if not inside(target, module_dir) or target == module_dir:
        die(f"script {script!r} is outside the folder of {key!r}")
    if not os.path.isfile(target):
        die(f"no script {script!r} in {source}")

    environ = dict(os.environ)
    if env_file and os.access(env_file, os.R_OK):
        try:
            with open(env_file, encoding="utf-8") as handle:
                environ.update(parse_env_file(handle.read()))
        except (OSError, UnicodeDecodeError) as error:
            die(f"cannot read {env_file}: {error.__class__.__name__}")
    # The service folder and the shared library beside it (not the resolved ones, so a release
    # behind a symlink keeps its paths): `from barestack_common.module import emit_json`.
    service_dir = os.path.dirname(source.rstrip("/"))
    library_dir = os.path.join(os.path.dirname(service_dir), "_lib")
    environ["PYTHONPATH"] = service_dir + os.pathsep + library_dir
    environ["BARESTACK_MODULE"] = key
    os.chdir(source)
    # Relative to the module folder, as the module would see it run from there (sys.argv[0]).
    os.execve(python, [python, os.path.relpath(target, module_dir), *args], environ)


main(sys.argv[1:])
' "$@"
