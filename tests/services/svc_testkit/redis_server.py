"""A throwaway redis-server (Debian's) on a free loopback port, with a password and no persistence."""

import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from svc_testkit.ports import free_port
from svc_testkit.processes import terminate


def missing_binary() -> str | None:
    return None if shutil.which("redis-server") else "redis-server not found (apt-get install redis-server)"


def _spawn(workdir: Path, port: int, password: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--requirepass",
            password,
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: a Ctrl-C at the terminal (make dev) must not stop Redis before the
        # processes using it; its owner stops it.
        start_new_session=True,
    )


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    workdir: Path
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    @classmethod
    def start(cls) -> "RedisServer":
        workdir = Path(tempfile.mkdtemp(prefix="barestack-redis-"))
        port, password = free_port(), secrets.token_urlsafe(18)
        server = cls(_spawn(workdir, port, password), workdir, port, password)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def halt(self) -> None:
        """Stop redis-server as an outage would, keeping port and password for ``resume``."""
        self.process.terminate()
        self.process.wait(timeout=5)

    def resume(self) -> None:
        self.process = _spawn(self.workdir, self.port, self.password)
        self._wait_ready()

    def stop(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)
