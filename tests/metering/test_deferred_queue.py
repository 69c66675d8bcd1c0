"""The deferred queue under stress: a stuck job never hangs a fork or grows memory without bound."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from genops_autoinstrument.engine import deferred


def _stuck_queue(monkeypatch: pytest.MonkeyPatch) -> tuple[deferred.DeferredQueue, threading.Event, threading.Event]:
    """A queue whose worker is inside a job that waits for ``release``."""
    queue = deferred.DeferredQueue()
    monkeypatch.setattr(queue, "BATCH_SECONDS", 0.0)
    entered, release = threading.Event(), threading.Event()

    def stuck() -> None:
        entered.set()
        release.wait(30)

    queue.submit(stuck)
    assert entered.wait(30), "the worker never ran the job"
    return queue, entered, release


def test_records_beyond_the_cap_are_dropped_with_one_warning(monkeypatch, caplog):
    queue, _, release = _stuck_queue(monkeypatch)
    monkeypatch.setattr(queue, "MAX_QUEUED", 3)
    ran: list[int] = []
    try:
        with caplog.at_level(logging.WARNING, logger="genops"):
            for number in range(5):
                queue.submit(ran.append, number)
    finally:
        release.set()
    assert queue.flush()
    assert ran == [0, 1, 2] and queue.dropped == 2
    assert sum("recording thread is stuck" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_does_not_wait_forever_for_a_stuck_job(monkeypatch):
    monkeypatch.setattr(deferred, "FLUSH_SECONDS", 0.2)
    queue, _, release = _stuck_queue(monkeypatch)
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not queue._items else 3)  # the child starts with an empty queue
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
    assert os.waitstatus_to_exitcode(status) == 0
    assert queue.flush()
