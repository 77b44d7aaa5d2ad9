"""The worker as systemd runs it: ``python -m barestack_backend.worker`` in its own process."""

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[3] / "services"
BACKEND_DIR = SERVICES / "backend"
SHARED_LIB = SERVICES / "_lib"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker never logged {text!r}; log:\n{self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_worker(env: dict[str, str], name: str, log_dir: Path, **overrides: str) -> WorkerProcess:
    log_path = log_dir / f"{name}.log"
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # As deployed: the backend package, then the helpers the services share.
        "PYTHONPATH": f"{BACKEND_DIR}:{SHARED_LIB}",
        "PYTHONUNBUFFERED": "1",
        # No systemd here: modules run as plain children (still with an allowlisted environment).
        "BARESTACK_RUN_SANDBOX": "none",
        **env,
        "BARESTACK_WORKER_NAME": name,
        **overrides,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "barestack_backend.worker"], env=environ, stdout=log, stderr=log
        )
    return WorkerProcess(process, log_path)


@contextmanager
def worker_thread(env: dict[str, str], name: str, **overrides: str) -> Iterator[None]:
    """The worker inside the test process, on a thread: runs go unsandboxed (no systemd as PID 1
    is assumed here, as in the worker's own tests); ``overrides`` are more BARESTACK_* variables."""
    # Imported here: starting the worker as a process (above) needs none of the backend's code.
    from barestack_backend.worker import build_worker
    from barestack_backend.worker_settings import WorkerSettings

    settings = WorkerSettings.from_env(
        {**env, "BARESTACK_WORKER_NAME": name, "BARESTACK_RUN_SANDBOX": "none", **overrides}
    )
    stop = threading.Event()
    worker = build_worker(dataclasses.replace(settings, block_ms=200), stop)
    thread = threading.Thread(target=worker.serve, name="worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        worker.database.close()
