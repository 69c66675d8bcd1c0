"""A bounded, ordered queue of settlements the ledger did not confirm, retried rather than dropped.

A settlement that times out on the client may still have run on the server, so it is only safe to
send again because the ledger makes it idempotent (the Redis scripts remember each settled ticket
for ``TICKET_MEMORY_SECONDS``). The queue therefore retries an entry only while it is younger
than ``RETRY_SECONDS`` (well inside that memory); older entries, entries that fail for a reason a
retry cannot fix, and entries that find the queue full are *lost*: a lost settlement is handed to
``on_lost`` so it is counted in ``genops.ledger.failures`` (operation ``settle_lost``). A lost
release (or the cancel of a reserve that failed) costs no spend: the reservation's lease returns it.

Entries are retried oldest first, and a drain stops at the first entry that fails again (the
ledger is still unreachable), so they land in the order they were made. Settlements commute
(additions, and a release never undoes a settlement), so a fresh settlement that reaches the
ledger before older queued ones changes no total.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple

from genops_autoinstrument.governance.ledger.base import LedgerError

QUEUE_LIMIT = 10_000  # settlements kept for retry per ledger; beyond this they are lost (and counted)
RETRY_SECONDS = 60.0  # an entry is retried for this long after its first attempt, then lost
TICKET_MEMORY_SECONDS = 120  # how long the ledger remembers a settled ticket (> RETRY_SECONDS: no double count)
EXIT_DRAIN_SECONDS = 0.5  # the longest the queue is retried at exit (within GENOPS_EXIT_FLUSH_SECONDS)


class Pending(NamedTuple):
    """One unconfirmed settlement: what to send again, and since when it has been tried."""

    operation: str  # "settle" or "release"
    script: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    first_tried: float  # time.monotonic() of the first attempt


class Retryable(Exception):
    """Raised by a sender when the ledger did not answer (timeout, connection): try again later."""


Lost = Callable[[str, BaseException], None]


class SettlementQueue:
    """FIFO of :class:`Pending`, bounded in length and age; thread-safe, one drain at a time."""

    def __init__(self, limit: int = QUEUE_LIMIT, retry_seconds: float = RETRY_SECONDS) -> None:
        self.limit = limit
        self.retry_seconds = retry_seconds
        self._entries: deque[Pending] = deque()
        self._lock = threading.Lock()
        self._draining = threading.Lock()
        self.on_lost: Lost | None = None
        self.lost = 0  # entries given up on (also reported through on_lost)

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, entry: Pending) -> bool:
        """Queue ``entry`` behind the others; False (and reported lost) when the queue is full."""
        with self._lock:
            if len(self._entries) < self.limit:
                self._entries.append(entry)
                return True
        self.lose(entry, RuntimeError(f"{len(self._entries)} settlements already wait for the ledger"))
        return False

    def drain(self, send: Callable[[Pending], Any], deadline: float | None = None) -> int:
        """Send queued entries oldest first until one fails retryably, ``deadline`` (monotonic)
        passes or the queue is empty; the number that landed."""
        if not self._draining.acquire(blocking=False):
            return 0  # another thread is draining: order is kept by one drain at a time
        landed = 0
        try:
            while self._entries and (deadline is None or time.monotonic() < deadline):
                entry = self._entries[0]
                if time.monotonic() - entry.first_tried > self.retry_seconds:
                    self._pop(entry)
                    self.lose(entry, TimeoutError(f"not confirmed within {self.retry_seconds:g} s"))
                    continue
                try:
                    send(entry)
                except Retryable:
                    break
                except Exception as error:  # a reason a retry cannot fix
                    self._pop(entry)
                    self.lose(entry, error)
                    continue
                self._pop(entry)
                landed += 1
        finally:
            self._draining.release()
        return landed

    def give_up(self, why: str) -> None:
        """Report every entry still queued as lost (the process is leaving and the ledger did not answer)."""
        with self._lock:
            entries, self._entries = list(self._entries), deque()
        for entry in entries:
            self.lose(entry, TimeoutError(why))

    def clear(self) -> None:
        """Forget every entry without reporting (a forked child: they are the parent's)."""
        with self._lock:
            self._entries.clear()
        self._draining = threading.Lock()

    def _pop(self, entry: Pending) -> None:
        with self._lock:
            if self._entries and self._entries[0] is entry:
                self._entries.popleft()

    def lose(self, entry: Pending, error: BaseException) -> None:
        """Count ``entry`` as finally lost and report it."""
        self.lost += 1
        report = self.on_lost
        if report is not None and entry.operation == "settle":
            try:
                report(f"{entry.operation}_lost", LedgerError(f"a {entry.operation} never reached the ledger: {error}"))
            except Exception:  # pragma: no cover - reporting must not break the drain
                pass
