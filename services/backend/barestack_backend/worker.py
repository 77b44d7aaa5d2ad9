"""The run worker: ``python -m barestack_backend.worker`` (systemd unit barestack-worker).

It reads run ids from the Redis stream through a consumer group, runs each module with
``run_module.sh <service>/<module> app.py <args>`` and stores the result in PostgreSQL.
An entry is acknowledged only once its result is stored, so a worker that dies mid-run loses
nothing: after ``BARESTACK_CLAIM_IDLE_MS`` another worker (or this one, restarted) claims it.
Each run is a sandboxed transient systemd unit (see module_runner) that sees none of the
worker's secrets. If an admin deletes the stream or the consumer group, the worker re-creates it.
"""

import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from types import FrameType

import psycopg2
import redis
from barestack_common import log_setup
from barestack_common.env import ConfigError
from barestack_common.redact import redact, secrets_in_url

from barestack_backend import redis_connection, run_lifecycle
from barestack_backend.db import Database
from barestack_backend.module_runner import (
    SANDBOX_SYSTEMD,
    Ending,
    ManifestError,
    ModuleOutcome,
    module_folder,
    read_manifest,
    run_environ,
    run_module,
    run_unit_name,
    systemctl_stop,
    systemd_run_command,
)
from barestack_backend.run_model import FAILED, SUCCEEDED, TIMEOUT
from barestack_backend.run_queue import QueueEntry, RunQueue
from barestack_backend.worker_settings import WorkerSettings

log = logging.getLogger("barestack_backend.worker")
MAX_BACKOFF_S = 30.0
# Errors from the stores are survivable: log, wait, try again (systemd would restart us anyway,
# but retrying in place keeps the pending runs of this consumer name).
TRANSIENT_ERRORS = (redis.RedisError, psycopg2.Error, OSError)


def result_of(outcome: ModuleOutcome) -> run_lifecycle.Result:
    if outcome.ending is Ending.TIMED_OUT:
        status = TIMEOUT
    elif outcome.ending is Ending.EXITED and outcome.exit_code == 0:
        status = SUCCEEDED
    else:
        status = FAILED
    return run_lifecycle.Result(
        status, outcome.exit_code, outcome.duration_ms, outcome.stdout_tail, outcome.stderr_tail
    )


def _is_nogroup(error: redis.RedisError) -> bool:
    return isinstance(error, redis.ResponseError) and str(error).startswith("NOGROUP")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        database: Database,
        queue: RunQueue,
        stop: threading.Event,
        module_environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.queue = queue
        self.stop = stop
        self.name = settings.worker_name
        self._module_environ = dict(os.environ if module_environ is None else module_environ)
        self._secrets = secrets_in_url(settings.database_url) + secrets_in_url(settings.redis_url)
        self._claim_every_s = max(0.2, settings.claim_idle_ms / 2000)
        self._keep_alive_every_s = max(0.1, settings.claim_idle_ms / 3000)

    def serve(self) -> None:
        """Work until ``stop`` is set; returns after the current run is finished or handed back."""
        backoff_s = 0.5
        own_pending_done = False
        next_claim = 0.0
        if self.settings.run_sandbox == SANDBOX_SYSTEMD:
            # Runs a previous life of this worker left (killed before it could stop them): they
            # must not go on while their entries are run again.
            systemctl_stop(self.settings.run_slice)
        while not self.stop.is_set():
            try:
                if not own_pending_done:
                    self.queue.ensure_group()
                    self._drain_own_pending()
                    own_pending_done = True
                if time.monotonic() >= next_claim:
                    self._take_over_abandoned()
                    next_claim = time.monotonic() + self._claim_every_s
                block_ms = int(min(self.settings.block_ms, self._claim_every_s * 1000))
                for entry in self.queue.read_new(self.name, block_ms):
                    if self.stop.is_set():
                        # Delivered by the blocking read during which the stop came: a stopping
                        # worker claims no new run, so another worker's next claim round takes it.
                        self.queue.release(self.name, entry.entry_id, self.settings.claim_idle_ms)
                        log.info("run %s left to the other workers: worker stopping", entry.run_id)
                        continue
                    self.process(entry)
                backoff_s = 0.5
            except TRANSIENT_ERRORS as error:
                if isinstance(error, redis.RedisError) and _is_nogroup(error):
                    # Someone deleted the stream or the consumer group: make it again and go on.
                    group = self.queue.group
                    log.warning("worker %s: consumer group %s is gone; re-creating it", self.name, group)
                    self._recreate_group(backoff_s)
                    continue
                log.warning(
                    "worker %s: %s: %s; retrying in %.1f s",
                    self.name,
                    error.__class__.__name__,
                    redact(" ".join(str(error).split()), self._secrets),
                    backoff_s,
                )
                self.stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)

    def _recreate_group(self, backoff_s: float) -> None:
        try:
            self.queue.ensure_group()
        except TRANSIENT_ERRORS as error:
            log.warning("worker %s: cannot re-create the group: %s", self.name, error.__class__.__name__)
            self.stop.wait(backoff_s)

    # Entries are taken one at a time and run at once: an entry held in a batch while an earlier
    # one runs would go idle, be claimed by another worker, and then run twice.

    def _drain_own_pending(self) -> None:
        """Entries this consumer name received before a restart and never acknowledged."""
        seen: set[str] = set()
        while not self.stop.is_set():
            entries = [
                e
                for e in self.queue.read_own_pending(self.name, count=len(seen) + 1)
                if e.entry_id not in seen
            ]
            if not entries:
                return
            seen.add(entries[0].entry_id)
            self.process(entries[0])

    def _take_over_abandoned(self, at_most: int = 10) -> None:
        for _ in range(at_most):
            if self.stop.is_set():
                return
            entries = self.queue.claim_abandoned(self.name, self.settings.claim_idle_ms, count=1)
            if not entries:
                return
            entry = entries[0]
            log.info(
                "claimed entry %s of run %s from a worker that went silent", entry.entry_id, entry.run_id
            )
            self.process(entry)

    def process(self, entry: QueueEntry) -> None:
        run_id = entry.run_id
        if run_id is None or not _is_uuid(run_id):
            log.warning("dropping stream entry %s: no valid run id", entry.entry_id)
            self.queue.done(entry.entry_id)
            return
        with self.database.cursor() as cur:
            decision = run_lifecycle.start_attempt(cur, run_id, self.name, self.settings.max_attempts)
        run = decision.run
        if run is None:
            log.info("run %s not executed: %s", run_id, decision.reason)
            self.queue.done(entry.entry_id)
            return

        outcome = self._run(run.id, run.attempts, f"{run.service}/{run.module}", run.args, entry.entry_id)
        if outcome.ending is Ending.ABANDONED:
            with self.database.cursor() as cur:
                run_lifecycle.hand_back(cur, run.id, self.name)
            # Not acknowledged: the entry stays pending and is claimed again.
            log.info("run %s %s/%s handed back: worker stopping", run.id, run.service, run.module)
            return
        result = result_of(outcome)
        with self.database.cursor() as cur:
            recorded = run_lifecycle.record_result(cur, run.id, self.name, result)
        self.queue.done(entry.entry_id)
        log.info(
            "run %s %s/%s attempt=%d status=%s exit_code=%s duration_ms=%d%s",
            run.id,
            run.service,
            run.module,
            run.attempts,
            result.status,
            result.exit_code,
            result.duration_ms,
            "" if recorded else " (not recorded: another worker took the run over)",
        )

    def _run(self, run_id: str, attempt: int, key: str, args: list[str], entry_id: str) -> ModuleOutcome:
        command = [str(self.settings.run_module_path), key, "app.py", *args]
        environ = run_environ(self._module_environ, run_id, attempt, key)
        unit = None
        if self.settings.run_sandbox == SANDBOX_SYSTEMD:
            folder = module_folder(environ.get("BARESTACK_VENV_MAPPING"), key)
            try:
                network = folder is not None and read_manifest(folder).network
            except ManifestError as error:
                return ModuleOutcome(Ending.NOT_STARTED, 2, 0, "", f"[barestack] {error}\n")
            unit = run_unit_name(run_id, attempt, network)
            # The module's variables go into the unit; systemd-run itself needs only PATH.
            command = systemd_run_command(unit, self.settings.run_slice, environ, command)
            environ = {"PATH": environ["PATH"]}
        return run_module(
            command,
            timeout_s=self.settings.run_timeout_s,
            stop=self.stop,
            stop_grace_s=self.settings.stop_grace_s,
            keep_alive=lambda: self._keep_alive(entry_id),
            keep_alive_every_s=self._keep_alive_every_s,
            env=environ,
            unit=unit,
        )

    def _keep_alive(self, entry_id: str) -> None:
        try:
            self.queue.keep_alive(self.name, entry_id)
        except redis.RedisError as error:
            # The run goes on; at worst another worker claims it if Redis stays unreachable.
            log.warning("could not refresh stream entry %s: %s", entry_id, error.__class__.__name__)


def build_worker(settings: WorkerSettings, stop: threading.Event) -> Worker:
    database = Database(settings.database_url, application_name=f"barestack-worker {settings.worker_name}")
    # Reads block for block_ms, so the socket timeout must be longer than that.
    client = redis_connection.connect(settings.redis_url, socket_timeout_s=settings.block_ms / 1000 + 5)
    queue = RunQueue(client, settings.runs_stream, settings.runs_group)
    return Worker(settings, database, queue, stop)


def main() -> int:
    log_setup.configure("barestack_backend")
    try:
        settings = WorkerSettings.from_env()
    except ConfigError as error:
        log.error("cannot start: %s", error)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current run, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker = build_worker(settings, stop)
    log.info(
        "worker %s consuming stream %s as group %s (timeout %g s, claim idle %d ms)",
        settings.worker_name,
        settings.runs_stream,
        settings.runs_group,
        settings.run_timeout_s,
        settings.claim_idle_ms,
    )
    worker.serve()
    worker.database.close()
    log.info("worker %s stopped", settings.worker_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
