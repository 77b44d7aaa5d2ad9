"""The Redis stream that carries run ids from the API to the workers.

Each entry is ``{"run_id": <uuid>}``; the run itself (module, args, status) lives in PostgreSQL.
Workers read through one consumer group, so every entry goes to one worker, stays pending
until that worker acknowledges it, and can be claimed by another worker if the first one dies.
Acknowledged entries are deleted: the stream only ever holds work not yet done.
"""

from dataclasses import dataclass

import redis

RUN_ID_FIELD = "run_id"


@dataclass(frozen=True)
class QueueEntry:
    entry_id: str
    run_id: str | None  # None when the entry is malformed or was deleted


def _entries(raw: list[tuple[str, dict[str, str]]]) -> list[QueueEntry]:
    # Fields are None for an entry deleted from the stream while still pending; it is kept (with
    # no run id) so that the worker acknowledges it and it leaves the pending list.
    return [QueueEntry(entry_id, (fields or {}).get(RUN_ID_FIELD)) for entry_id, fields in raw]


class RunQueue:
    def __init__(self, client: redis.Redis, stream: str, group: str) -> None:
        self.client = client
        self.stream = stream
        self.group = group

    def enqueue(self, run_id: str) -> str:
        return str(self.client.xadd(self.stream, {RUN_ID_FIELD: run_id}))

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists; entries already there are kept."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def read_new(self, consumer: str, block_ms: int, count: int = 1) -> list[QueueEntry]:
        return self._read(consumer, ">", block_ms, count)

    def read_own_pending(self, consumer: str, count: int = 10) -> list[QueueEntry]:
        """Entries delivered to this consumer name earlier and never acknowledged (e.g. before a restart)."""
        return self._read(consumer, "0", None, count)

    def _read(self, consumer: str, start: str, block_ms: int | None, count: int) -> list[QueueEntry]:
        reply = self.client.xreadgroup(
            self.group, consumer, {self.stream: start}, count=count, block=block_ms
        )
        # RESP2 (what ``redis_connection.connect`` speaks): [[stream, [(id, fields), ...]]].
        return [entry for _stream, messages in reply or [] for entry in _entries(messages)]

    def claim_abandoned(self, consumer: str, min_idle_ms: int, count: int = 10) -> list[QueueEntry]:
        """Take over entries that another consumer received but has not touched for ``min_idle_ms``."""
        reply = self.client.xautoclaim(self.stream, self.group, consumer, min_idle_ms, "0-0", count=count)
        # Redis 7: [next_start, [(id, fields), ...], [deleted ids]]; deleted ones were dropped from the PEL.
        return _entries(reply[1])

    def keep_alive(self, consumer: str, entry_id: str) -> None:
        """Reset the entry's idle time so that no other worker claims it while this one still runs it."""
        self.client.xclaim(self.stream, self.group, consumer, 0, [entry_id], justid=True)

    def release(self, consumer: str, entry_id: str, idle_ms: int) -> None:
        """Leave an entry this consumer will not run to the others: it stays pending, marked idle for
        ``idle_ms``, so the next claim round of any other worker takes it (``claim_abandoned``)."""
        self.client.xclaim(self.stream, self.group, consumer, 0, [entry_id], idle=idle_ms, justid=True)

    def done(self, entry_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, entry_id)
        pipe.xdel(self.stream, entry_id)
        pipe.execute()

    def pending_count(self) -> int:
        try:
            summary = self.client.xpending(self.stream, self.group)
        except redis.ResponseError:  # no such group yet: nothing is pending
            return 0
        return int(summary["pending"])
