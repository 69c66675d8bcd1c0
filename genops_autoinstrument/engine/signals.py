"""SIGTERM and SIGINT: what GenOps recorded is exported before the signal ends the process.

Under a process manager SIGTERM is the normal way to stop, and its default disposition kills the
process on the spot: no exit handler runs, and the spans and metrics of calls that completed but
still wait in a batch are lost. Where the application left the default, GenOps installs a handler
(from the main thread, when it sets up its telemetry: :func:`install`) that

1. records what is in flight as interrupted (``error.type`` ``interrupted``): each live stream
   proxy through its call (span, metrics, budget release, summary), then any other open span of
   GenOps' tracer;
2. runs GenOps' exit handlers (queued records, summary, exporters) within
   ``GENOPS_EXIT_FLUSH_SECONDS``, on a helper thread, since the main thread may have been
   interrupted holding a lock the flush needs (where no thread can start, on the main thread,
   every wait bounded: :func:`shut_down_here`);
3. restores the default disposition and sends the signal again, so the process ends as it would
   have: killed by SIGTERM (a second SIGTERM meanwhile kills it at once).

SIGINT's default handler raises KeyboardInterrupt, which the application may catch and go on: so
nothing is interrupted and nothing shut down then. GenOps' handler only runs the queued records
first (bounded), then raises KeyboardInterrupt as the default does. Were they left to the exit
handlers, code they run for the first time (a price table's import) would reset CPython's
"ended by an unhandled KeyboardInterrupt" flag, and the process would exit with status 1 instead
of dying by SIGINT. When the KeyboardInterrupt ends the program, the exit handlers export (bounded)
and end the streams still in flight as interrupted (:func:`interrupt_streams`, at exit).

A handler the application installs, before or after, is never replaced and wins. Code that takes
over SIGINT only from Python's default (``asyncio.run``, ``trio.run``) does so when it starts
before GenOps' first recorded call; started after it, it leaves SIGINT to GenOps' handler, which
raises KeyboardInterrupt where Python's default would.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
import time
import weakref
from types import FrameType
from typing import Any, Callable

from opentelemetry.sdk.trace import SpanProcessor

from genops_autoinstrument import lifecycle, semconv

log = logging.getLogger("genops")

__all__ = ["install", "track_stream", "interrupt_streams", "InFlightSpans", "shut_down_here"]


class Interrupted(BaseException):
    """What an in-flight call ends with when the process stops under it. Named like a builtin so
    that the engine, which names a builtin error by its bare class name, records ``interrupted``."""


Interrupted.__module__ = "builtins"
Interrupted.__name__ = Interrupted.__qualname__ = "interrupted"

# Live stream proxies, weakly: id(proxy) -> (weak reference, call). An entry leaves with its proxy.
_streams: dict[int, tuple[Any, Any]] = {}
# GenOps' spans that started and have not ended, in the providers GenOps created.
_open_spans: set[Any] = set()

SIGINT_SECONDS = 1.0  # the most a KeyboardInterrupt waits for the queued records to run
_budget: Callable[[], float] | None = None  # GENOPS_EXIT_FLUSH_SECONDS (read when a signal comes)
_pending = False  # installing was asked off the main thread: done at the next main-thread call
_stopping = False


def _after_fork_in_child() -> None:
    """A forked child's streams and open spans are the parent's calls, not the child's."""
    global _streams, _open_spans, _stopping
    _streams = {}
    _open_spans = set()
    _stopping = False


lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_DEFERRED)


# --- what is in flight --------------------------------------------------------------------------


def track_stream(proxy: Any, call: Any) -> None:
    """Remember a live stream proxy (weakly) and its call, so that a stop can end it as interrupted."""
    key = id(proxy)
    streams = _streams
    try:
        streams[key] = (weakref.ref(proxy, lambda _, key=key: streams.pop(key, None)), call)
    except TypeError:  # a proxy without weak references: not tracked
        pass


def interrupt_streams(reason: str = "interrupted at exit") -> None:
    """End every live stream's call as interrupted (an exit handler, and the first step on SIGTERM)."""
    for _, call in list(_streams.values()):
        if not call.ended:
            call.fail(Interrupted(reason))
    _streams.clear()


def _interrupt_open_spans(reason: str) -> None:
    """End GenOps' other open spans (calls without a stream proxy, units) as interrupted."""
    from opentelemetry.trace import Status, StatusCode

    for span in list(_open_spans):
        if span.is_recording():
            span.set_attribute(semconv.ERROR_TYPE, "interrupted")
            span.set_status(Status(StatusCode.ERROR, reason))
            span.end()
    _open_spans.clear()


class InFlightSpans(SpanProcessor):
    """Keeps the spans of GenOps' calls from their start to their end, so that SIGTERM can end
    them as interrupted; also the main thread's first chance to install the signal handlers."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if _pending and threading.current_thread() is threading.main_thread():
            _install_now()
        scope = span.instrumentation_scope
        if scope is not None and scope.name == semconv.INSTRUMENTATION_SCOPE:
            _open_spans.add(span)

    def on_end(self, span: Any) -> None:
        _open_spans.discard(span)


# --- the handlers -------------------------------------------------------------------------------


def install(budget: Callable[[], float]) -> None:
    """Install GenOps' SIGTERM and SIGINT handlers where the application left the defaults.

    Only the main thread can: elsewhere it is done on the next recorded call the main thread makes
    (see :class:`InFlightSpans`), or never, said in a debug line."""
    global _budget, _pending
    _budget = budget
    if threading.current_thread() is threading.main_thread():
        _install_now()
    else:
        _pending = True
        log.debug("GenOps' first call is off the main thread: its SIGTERM/SIGINT flush waits for a call on the main thread")


def _install_now() -> None:
    global _pending
    _pending = False
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError) as error:  # not the main interpreter, or no such signal here
        log.debug("GenOps could not install its SIGTERM/SIGINT flush (%s)", error)


def _seconds() -> float:
    try:
        return float(_budget()) if _budget is not None else 2.0
    except Exception:  # pragma: no cover - validated at startup
        return 2.0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Record what is in flight as interrupted, flush (bounded), then die by the same signal."""
    global _stopping
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM kills at once
    if not _stopping:
        _stopping = True
        _on_helper_thread(lambda: _stop(signum), _seconds())
    _die_by(signum)


def _stop(signum: int) -> None:
    deadline = time.monotonic() + _seconds()
    reason = f"interrupted by {signal.Signals(signum).name}"
    from genops_autoinstrument.engine.deferred import deferred_queue

    interrupt_streams(reason)
    deferred_queue.flush(max(0.0, deadline - time.monotonic()))  # queued completions end their spans first
    _interrupt_open_spans(reason)
    lifecycle.run_exit_handlers(max(0.0, deadline - time.monotonic()))


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Run the queued records (bounded), then raise KeyboardInterrupt as Python's handler does."""
    from genops_autoinstrument.engine.deferred import deferred_queue

    seconds = min(SIGINT_SECONDS, _seconds())
    _on_helper_thread(lambda: deferred_queue.flush(seconds), seconds)
    signal.default_int_handler(signum, frame)


def _on_helper_thread(work: Callable[[], Any], seconds: float) -> None:
    """Run ``work`` off the interrupted main thread, waiting ``seconds`` at most; where no thread
    can start (a signal during interpreter shutdown), here: ``work`` bounds its own waits."""
    def run() -> None:
        try:
            work()
        except Exception as error:  # pragma: no cover - never in the way of the signal
            from genops_autoinstrument.diagnostics import internal_error

            internal_error("signal flush", error)

    lifecycle.run_bounded(run, seconds + 0.1, "genops-signal-flush")


def shut_down_here(provider: Any, seconds: float) -> bool:
    """Flush and shut down ``provider`` on the calling thread within ``seconds``: the exit flush
    where no thread can start (Python 3.12.0-3.12.1 at interpreter shutdown).

    The SDK's own threads, started long before (each batch span processor's, each periodic
    reader's), still export; only the waits for them are bounded here. A ``MeterProvider`` takes
    a timeout; a ``TracerProvider`` does not (its batch processors would wait 30 s each), so its
    processors are shut down in order, each batch processor within what is left. A collector
    still unanswered then is abandoned on the SDK's daemon thread, as on GenOps' own: False."""
    deadline = time.monotonic() + seconds

    def left_ms() -> float:
        return max(0.0, deadline - time.monotonic()) * 1000

    try:
        processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", None)
        if "timeout_millis" in inspect.signature(provider.shutdown).parameters:  # MeterProvider
            provider.shutdown(timeout_millis=left_ms())
        elif processors is None:  # pragma: no cover - an SDK whose internals moved: its own waits
            provider.shutdown()
        for processor in processors or ():  # in order: GenOps' queued spans end before the exporters flush
            batch = getattr(processor, "_batch_processor", None)
            if batch is not None:
                batch.shutdown(timeout_millis=left_ms())  # joins its worker, which exports what is queued
            else:
                processor.shutdown()
    except Exception as error:  # exporter failures at exit, or a deadline passed
        log.debug("GenOps telemetry shutdown: %r", error)
    return time.monotonic() < deadline  # a wait that ran out took the rest of the time


def _die_by(signum: int) -> None:
    """End the process by ``signum`` under its default disposition, as if GenOps had not been here."""
    signal.signal(signum, signal.SIG_DFL)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    except (AttributeError, OSError):  # pragma: no cover - no pthreads
        pass
    os.kill(os.getpid(), signum)
    time.sleep(1.0)  # pragma: no cover - delivery is immediate on POSIX
    os._exit(128 + signum)  # pragma: no cover
