"""Run listings kept for ``BARESTACK_ANSWER_CACHE_SECONDS`` per process, encoded and ready to send.

``GET /modules`` (with a token: each module's last run) and ``GET /runs`` read PostgreSQL and
encode up to hundreds of rows per call, the same rows for every caller with a token (run data is
not filtered by who asks). A busy client or dashboard polling them then costs one query and one
encoding per interval and process, not per call. What a caller sees is at most that old (1 s by
default, like the token cache): a run started through this process clears the process's kept
answers at once, so its starter sees it in the next listing; other processes and the worker's
status changes show within the interval. 0 turns the keeping off.

One caller builds a missing or expired answer while the others asking for the same one wait for
it instead of querying too. A failed build (PostgreSQL down) is never kept. Each answer carries an
ETag (a digest of its body), so a client sending ``If-None-Match`` gets a 304 without the body.
A kept answer also says until when it is fresh (``fresh_until``), which is how long the same
request may be answered with it again without reaching Flask (``barestack_common.replay``).
"""

import hashlib
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Answer:
    body: bytes
    etag: str
    keep: bool  # False: built from a failure (or a partial one), not to be served to anyone else
    # time.monotonic() at which a kept answer expires; 0 for one that is not kept (served once).
    fresh_until: float = 0.0

    @classmethod
    def of(cls, text: str, keep: bool = True) -> "Answer":
        body = (text + "\n").encode("utf-8")
        return cls(body, hashlib.blake2b(body, digest_size=16).hexdigest(), keep)


class AnswerCache:
    MAX_ENTRIES = 256  # distinct keys (limit, filter, proxy prefix); cleared whole when full

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()  # guards _kept and _building
        self._kept: dict[Hashable, Answer] = {}
        self._building: dict[Hashable, threading.Lock] = {}
        self.builds = 0  # answers built: what the cache exists to keep low

    def _fresh(self, key: Hashable) -> Answer | None:
        kept = self._kept.get(key)
        if kept is not None and time.monotonic() < kept.fresh_until:
            return kept
        return None

    def get(self, key: Hashable, build: Callable[[], Answer]) -> Answer:
        if self.ttl_s <= 0:
            self.builds += 1
            return build()
        with self._lock:
            answer = self._fresh(key)
            if answer is not None:
                return answer
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one builder per key; the others wait here, then find its answer
            with self._lock:
                answer = self._fresh(key)
            if answer is not None:
                return answer
            answer = build()
            with self._lock:
                self.builds += 1
                self._building.pop(key, None)
                if answer.keep:
                    answer = replace(answer, fresh_until=time.monotonic() + self.ttl_s)
                    if len(self._kept) >= self.MAX_ENTRIES:
                        self._kept.clear()
                    self._kept[key] = answer
            return answer

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
