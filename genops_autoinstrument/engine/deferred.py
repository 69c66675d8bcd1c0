"""Work GenOps does after a call, off the application's thread: completing spans, recording metrics.

The OpenTelemetry SDK spends ~10-15 µs per histogram record or counter add and ~20 µs setting a
span's response attributes and ending it (attribute cleaning, locks, processors), and a provider
call runs with the SDK's code cold in the CPU caches, which doubles that. So the application
thread only captures the call's facts (and the end time) and appends one job to
:data:`deferred_queue`; a daemon thread runs the jobs in order, in batches.

Nothing is lost or late where it matters:

* every metric collection (periodic export, ``force_flush``, shutdown, pull and in-memory readers)
  runs the queued jobs first, through :func:`flush_before_collection`;
* a tracer provider with a :class:`SpanQueueFlusher` as its first processor runs them before its
  other processors flush or shut down (GenOps adds it to the providers it creates; the engine
  defers span completion only into such providers);
* exit, GenOps' telemetry shutdown and the summary run them first;
* a fork waits for the batch in progress (no SDK lock is inherited held); the child starts with an
  empty queue and its own worker.
"""

from __future__ import annotations

import collections
import queue
import threading
import weakref
from time import sleep as _sleep
from typing import Any, Callable

from opentelemetry.sdk.trace import SpanProcessor

from genops_autoinstrument import lifecycle

FLUSH_SECONDS = 5.0  # longest a flush (collection, exit) waits for the batch in progress

_Job = tuple[Callable[..., None], tuple[Any, ...]]


class DeferredQueue:
    """Runs jobs on one daemon thread, in order, off the application's thread.

    Woken by the first job of a batch, the worker waits up to ``BATCH_SECONDS`` (less when
    ``BATCH_SIZE`` jobs are queued) before running them all. Each time the worker runs costs the
    application thread some CPU (the interpreter lock changes hands, shared objects' cache lines
    move between cores), so it runs rarely, and the SDK's code then runs in a tight loop, cheaper
    than interleaved with the application's own work. :meth:`flush` runs everything queued so far
    on the calling thread.

    :meth:`submit` takes no lock (a deque append, and a ``SimpleQueue.put`` to wake an idle worker),
    so it is safe from ``__del__`` and garbage collection, where streams may end.
    """

    BATCH_SECONDS = 1.0  # longest a job waits in the queue (collections and exit flush it anyway)
    # A batch this large wakes the worker early. Kept well under the BatchSpanProcessor's queue
    # (2048) and export batch (512): a burst of span ends must not overflow the exporter's queue.
    BATCH_SIZE = 256
    YIELD_EVERY = 32  # the worker lets other threads (the span exporter's) run between job groups
    MAX_QUEUED = 65_536  # past this the worker is stuck: new records are dropped (and counted), not hoarded

    def __init__(self) -> None:
        self._reset()
        self._held_for_fork = False
        lifecycle.around_fork(self._before_fork, self._after_fork_in_parent, lifecycle.FORK_DEFERRED)
        lifecycle.on_fork_child(self._reset, lifecycle.FORK_DEFERRED)

    def _reset(self) -> None:
        self._items: collections.deque[_Job] = collections.deque()
        self._busy = threading.RLock()  # held while queued jobs are popped and run
        self._signal: queue.SimpleQueue[None] = queue.SimpleQueue()  # wakes the idle worker
        self._idle = False  # the worker waits on _signal (or is about to)
        self._start_lock = threading.RLock()
        self._starting = False
        self._thread: threading.Thread | None = None
        self._inline = False  # no worker could be started: run jobs on the caller's thread
        self.dropped = 0  # records refused because the queue was full

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Queue ``job(*args)``; cheap, never blocks on the worker, never raises."""
        items = self._items
        queued = len(items)
        if queued >= self.MAX_QUEUED:
            self._drop()
            return
        items.append((job, args))
        if self._idle or queued >= self.BATCH_SIZE - 1:
            self._signal.put(None)
        elif self._thread is None:
            self._start()

    def start(self) -> None:
        """Start the worker now (the engine does, so that a stream ended by the garbage collector
        never has to start a thread)."""
        if self._thread is None:
            self._start()

    def _drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1:
            _internal_error("deferred queue", RuntimeError(f"more than {self.MAX_QUEUED} records waiting: the recording thread is stuck; dropping"))

    def _start(self) -> None:
        with self._start_lock:
            if self._inline:
                self.flush()
                return
            if self._thread is not None or self._starting:
                return
            self._starting = True
            try:
                thread = threading.Thread(target=self._work, name="genops-deferred", daemon=True)
                thread.start()
            except Exception as error:  # no threads (interpreter shutting down, sandbox): run inline
                _internal_error("deferred worker", error)
                self._inline = True
                self.flush()
                return
            finally:
                self._starting = False
            self._thread = thread
            lifecycle.at_exit(self._flush_at_exit, lifecycle.EXIT_DEFERRED)  # before the summary and the telemetry shutdown

    def _work(self) -> None:
        items, signal, busy = self._items, self._signal, self._busy
        while True:
            self._idle = True
            if not items:  # a submit after this check sees _idle and signals
                signal.get()
            self._idle = False
            while True:  # signals sent while it was waking up
                try:
                    signal.get_nowait()
                except queue.Empty:
                    break
            try:
                try:
                    signal.get(timeout=self.BATCH_SECONDS)  # let a batch gather; a full one signals
                except queue.Empty:
                    pass
                with busy:
                    _run_all(items, self.YIELD_EVERY)
            except Exception as error:  # pragma: no cover - keep running; flushes still drain
                _internal_error("deferred worker", error)

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Run everything queued so far on the calling thread; False if the worker's batch in
        progress did not end within ``timeout`` (or what is left of the exit deadline, at exit)."""
        if not self._busy.acquire(timeout=lifecycle.exit_seconds_left(timeout)):
            return False
        try:
            _run_all(self._items)
        finally:
            self._busy.release()
        return True

    def _flush_at_exit(self) -> None:
        """Bounded by the exit deadline, which the rest of GenOps' exit work shares."""
        self.flush(FLUSH_SECONDS)

    def _before_fork(self) -> None:
        # Wait for the batch in progress, so the child inherits no SDK lock held mid-job; but a job
        # stuck on I/O (an application's synchronous exporter) must not hang the fork.
        self._held_for_fork = self._busy.acquire(timeout=FLUSH_SECONDS)

    def _after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._busy.release()


def _run_all(items: "collections.deque[_Job]", yield_every: int = 0) -> None:
    """Run the queued jobs in order; with ``yield_every``, release the interpreter lock after each
    group of that many, so the span exporter's thread drains its queue as the spans arrive."""
    pop = items.popleft
    count = 0
    while True:
        try:
            job, args = pop()
        except IndexError:
            return
        run_job(job, args)
        count += 1
        if count == yield_every:
            count = 0
            _sleep(0)


def run_job(job: Callable[..., None], args: Any) -> None:
    """Run one job; a failing job is logged once and costs only its own record."""
    try:
        job(*args)
    except Exception as error:
        _internal_error("deferred record", error)


def _internal_error(where: str, error: BaseException) -> None:
    from genops_autoinstrument.diagnostics import internal_error

    internal_error(where, error)


deferred_queue = DeferredQueue()


def flush_before_collection(options: Any) -> Any:
    """Observable-instrument callback: the SDK calls it at the start of every metric collection, so
    queued records reach that collection. It observes nothing, so the instrument exports no data."""
    timeout = getattr(options, "timeout_millis", None)
    deferred_queue.flush(min(FLUSH_SECONDS, timeout / 1000) if timeout and timeout > 0 else FLUSH_SECONDS)
    return ()


class SpanQueueFlusher(SpanProcessor):
    """A span processor that completes GenOps' queued spans before the processors after it flush or
    shut down. It must come first in its provider: add it with :func:`add_span_queue_flusher`."""

    def shutdown(self) -> None:
        deferred_queue.flush()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return deferred_queue.flush(min(FLUSH_SECONDS, timeout_millis / 1000) if timeout_millis > 0 else FLUSH_SECONDS)


_flushed_providers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def add_span_queue_flusher(provider: Any) -> None:
    """Make ``provider`` (an SDK ``TracerProvider`` without processors yet) complete GenOps' queued
    spans before exporting; the engine then defers span completion into it."""
    provider.add_span_processor(SpanQueueFlusher())
    _flushed_providers.add(provider)


def completes_queued_spans(provider: Any) -> bool:
    """True when ``provider`` has a :class:`SpanQueueFlusher` first (spans may be ended late into it)."""
    try:
        return provider in _flushed_providers
    except TypeError:  # not weak-referenceable: never one of ours
        return False
