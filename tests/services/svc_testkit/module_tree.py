"""A small module tree like the venv manager lays out: module dirs, one venv, venv_mapping.json,
and a run_module.sh stand-in with the same command line and exit codes.

The modules are tiny Python programs whose behaviour the tests need: print and succeed, fail,
sleep, print a lot, and "die on the first attempt" for the worker-takeover test.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

UV = Path(sys.executable).with_name("uv")

MODULES: dict[str, str] = {
    "backend/echo-001": """
        import sys
        print("hello from echo-001")
        print("args:", " ".join(sys.argv[1:]))
        print("a warning on stderr", file=sys.stderr)
    """,
    "backend/fail-002": """
        import sys
        print("about to fail")
        print("boom: something broke", file=sys.stderr)
        sys.exit(3)
    """,
    "backend/sleep-003": """
        import sys, time
        print("sleeping", flush=True)
        time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 1)
        print("slept")
    """,
    "backend/once-004": """
        # First attempt: leave a marker with our pid, then hang (the test kills our worker).
        # Any later attempt: finish at once.
        import os, sys, time
        marker = sys.argv[1]
        if os.path.exists(marker):
            print("second attempt finished the run")
            sys.exit(0)
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        print("first attempt started", flush=True)
        time.sleep(60)
    """,
    "backend/noisy-005": """
        for i in range(20000):
            print(f"line {i:05d} " + "x" * 40)
        print("THE END")
    """,
    "frontend/page-001": """
        print("frontend module page-001")
    """,
}

RUN_MODULE_STANDIN = '''#!{python}
"""Test stand-in for run_module.sh <service>/<module> [script] [args...]."""
import json, os, sys

mapping_path = os.environ.get("BARESTACK_VENV_MAPPING", {mapping!r})
if len(sys.argv) < 2:
    print("usage: run_module.sh <service>/<module> [script] [args...]", file=sys.stderr)
    sys.exit(2)
key, script, args = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "app.py"), sys.argv[3:]
with open(mapping_path) as f:
    entry = json.load(f)["venvs"].get(key)
if not entry or entry.get("kind") != "module":
    print(f"run_module.sh: unknown module {{key}}", file=sys.stderr)
    sys.exit(2)
os.chdir(entry["source"])
python = os.path.join(entry["venv"], "bin", "python")
os.execv(python, [python, script, *args])
'''


@dataclass(frozen=True)
class ModuleTree:
    root: Path
    mapping_path: Path
    run_module: Path
    keys: tuple[str, ...]


def _make_venv(path: Path) -> None:
    if UV.exists():
        subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)


def build_module_tree(root: Path) -> ModuleTree:
    venv = root / "venvs" / "shared"
    _make_venv(venv)
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    venvs: dict[str, dict[str, object]] = {}
    for key, source in MODULES.items():
        service, module = key.split("/")
        module_dir = root / "services" / service / module
        module_dir.mkdir(parents=True)
        (module_dir / "app.py").write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        venvs[key] = {
            "service": service,
            "module": module,
            "kind": "module",
            "source": str(module_dir),
            "venv": str(venv),
            "hash": hashlib.sha256(source.encode()).hexdigest(),
            "python": python_version,
            "requirements": ["packaging==24.2"],
            "packages": {"packaging": "24.2"},
        }
    # A service entry, which is not a module and must not be listed or runnable.
    venvs["backend"] = {"service": "backend", "module": None, "kind": "service", "venv": str(venv)}
    mapping_path = root / "venv_mapping.json"
    mapping_path.write_text(json.dumps({"format": 1, "python": python_version, "venvs": venvs}, indent=1))
    run_module = root / "run_module.sh"
    run_module.write_text(RUN_MODULE_STANDIN.format(python=sys.executable, mapping=str(mapping_path)))
    run_module.chmod(0o755)
    return ModuleTree(root, mapping_path, run_module, tuple(MODULES))


def remove(tree: ModuleTree) -> None:
    shutil.rmtree(tree.root, ignore_errors=True)
