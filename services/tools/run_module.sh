#!/usr/bin/env bash
# Run one module in its own venv: run_module.sh <service>/<module> [script] [args...]
#
# The venv comes from venv_mapping.json (BARESTACK_VENV_MAPPING), written by venv_manager.py.
# The module runs with cwd = its folder, PYTHONPATH = its service folder (so `from _shared
# import ...` works) and the stack's settings from BARESTACK_ENV_FILE when readable.
# Exit 2 for usage errors and unknown modules; otherwise the module's own exit code.
set -euo pipefail

readonly PROG="run_module.sh"
readonly MAPPING="${BARESTACK_VENV_MAPPING:-/srv/barestack/shared/venv_mapping.json}"
readonly ENV_FILE="${BARESTACK_ENV_FILE:-/etc/barestack/barestack.env}"

die() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    exit 2
}

if [[ $# -lt 1 || -z "$1" ]]; then
    printf 'usage: %s <service>/<module> [script] [args...]\n' "$PROG" >&2
    exit 2
fi
key="$1"
shift
script="app.py"
if [[ $# -gt 0 ]]; then
    script="$1"
    shift
fi

# Checked here, not only in the mapping lookup: the key ends up in paths and messages.
[[ "$key" =~ ^[a-z][a-z0-9_]*/[a-z]+-[0-9]{3,}$ ]] || die "invalid module name '$key' (expected <service>/<module>, e.g. backend/a-001)"
[[ -r "$MAPPING" ]] || die "venv mapping $MAPPING not found or not readable"

# python3 is the host's system interpreter, present before any venv. It prints the venv and
# the module folder on two lines (and refuses paths with a newline, which would split them).
lookup() {
    python3 -c '
import json, sys
mapping, key = sys.argv[1], sys.argv[2]
try:
    with open(mapping, encoding="utf-8") as handle:
        entry = json.load(handle)["venvs"][key]
    venv, source = entry["venv"], entry["source"]
except KeyError:
    sys.exit(3)
except (OSError, ValueError, TypeError) as error:
    sys.stderr.write(f"cannot read {mapping}: {error}\n")
    sys.exit(4)
if not all(isinstance(path, str) and path and "\n" not in path for path in (venv, source)):
    sys.stderr.write(f"bad venv or source path for {key} in {mapping}\n")
    sys.exit(4)
print(venv)
print(source)
' "$MAPPING" "$key"
}

status=0
lookup_output="$(lookup)" || status=$?
case "$status" in
    0) ;;
    3) die "unknown module '$key' (not in $MAPPING)" ;;
    *) die "cannot look up '$key' in $MAPPING" ;;
esac
{ read -r venv; read -r module_dir; } <<<"$lookup_output"

[[ -x "$venv/bin/python" ]] || die "venv of '$key' is missing at $venv (rerun the venv manager)"
[[ -d "$module_dir" ]] || die "module folder of '$key' is missing at $module_dir"

if [[ -r "$ENV_FILE" ]]; then
    # Export every assignment in the file to the module; values are never echoed.
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi

cd "$module_dir"
[[ -f "$script" ]] || die "no script '$script' in $module_dir"
export PYTHONPATH="${module_dir%/*}"
export BARESTACK_MODULE="$key"
exec "$venv/bin/python" "$script" "$@"
