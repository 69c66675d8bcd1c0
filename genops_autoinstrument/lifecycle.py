"""One ordered registry for GenOps' fork and exit handlers.

Python runs ``os.register_at_fork`` child handlers in registration order and ``atexit`` handlers in
reverse, so handlers that each module registered on its own ran in an order that depended on
which module happened to be imported or configured first. Here the process registers one fork
handler and one exit handler, and they run GenOps' handlers by rank, whatever the import order.

In a forked child (``after_in_child``), in this order:

* ``FORK_DEFERRED``: the deferred queue starts empty, with fresh locks and no worker (the parent's
  queued jobs are the parent's);
* ``FORK_TELEMETRY``: the telemetry set-up lock is renewed (a fork mid-configuration starts over);
* ``FORK_GOVERNANCE``: every live governor renews its locks and ledger connections;
* ``FORK_ENGINE``: the runtime retires the inherited engine (the child builds its own on its
  first call: new providers, governor and ledger connections);
* ``FORK_SUMMARY``: the child starts a summary table of its own.

Before a fork (and after it, in the parent) only the deferred queue acts: it waits for the batch
in progress, so that no SDK lock is inherited held.

At exit, in this order:

* ``EXIT_IN_FLIGHT``: streams still open end as interrupted (their records join the queue);
* ``EXIT_DEFERRED``: the queued span completions and metric records run (bounded);
* ``EXIT_SUMMARY``: the summary is printed, complete since the queue is drained, and before the
  provider shutdown, which may wait on an unreachable collector;
* ``EXIT_TELEMETRY``: the providers GenOps created flush and shut down (bounded).

All of them share one deadline, set when the exit begins (:func:`exit_seconds_left`): each waits
at most for what is left of it, so the waits never add up. The engine sets the budget
(:func:`set_exit_budget`, from ``GENOPS_EXIT_FLUSH_SECONDS``).

Multiprocessing pool workers leave through ``os._exit`` after multiprocessing's own finalizers,
never ``atexit``: the exit handler is registered as such a finalizer too (in each process that
registers an exit handler while multiprocessing is loaded), so every exit handler must be
idempotent. :func:`run_exit_handlers` runs them on demand (a server that re-raises a signal, or
GenOps' own SIGTERM handler).

Python 3.12.0 and 3.12.1 refuse to start a thread once the interpreter is shutting down, which
is when the exit handlers run: :func:`run_bounded` runs work on a helper thread where it can, and
on the calling thread where it cannot (the work then bounds its own waits, see
:func:`exit_seconds_left`).

A leaf module, like ``diagnostics``: every layer registers here (governance too, which must not
import the engine).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any, Callable

__all__ = [
    "FORK_DEFERRED",
    "FORK_TELEMETRY",
    "FORK_GOVERNANCE",
    "FORK_ENGINE",
    "FORK_SUMMARY",
    "EXIT_IN_FLIGHT",
    "EXIT_DEFERRED",
    "EXIT_SUMMARY",
    "EXIT_TELEMETRY",
    "around_fork",
    "on_fork_child",
    "at_exit",
    "run_exit_handlers",
    "set_exit_budget",
    "exit_seconds_left",
    "start_or_run",
    "run_bounded",
]

FORK_DEFERRED = 10
FORK_TELEMETRY = 20
FORK_GOVERNANCE = 25
FORK_ENGINE = 30
FORK_SUMMARY = 40

EXIT_IN_FLIGHT = 5
EXIT_DEFERRED = 10
EXIT_SUMMARY = 20
EXIT_TELEMETRY = 30

Handler = Callable[[], None]

# (rank, handler), kept sorted by rank; equal ranks run in registration order.
_before_fork: list[tuple[int, Handler]] = []
_after_fork_in_parent: list[tuple[int, Handler]] = []
_after_fork_in_child: list[tuple[int, Handler]] = []
_exit: list[tuple[int, Handler]] = []

_fork_registered = False
_exit_registered = False
_finalizer_pid: int | None = None  # the process whose multiprocessing finalizers hold run_exit_handlers
_exit_budget: Callable[[], float] | None = None  # seconds the exit handlers may take in all
_exit_deadline: float | None = None  # time.monotonic() by which the running exit handlers end


def _add(handlers: list[tuple[int, Handler]], function: Handler, rank: int) -> None:
    """Insert ``function`` at ``rank`` (after the handlers of equal rank); once, however often asked."""
    if any(existing == function for _, existing in handlers):
        return
    position = len(handlers)
    while position and handlers[position - 1][0] > rank:
        position -= 1
    handlers.insert(position, (rank, function))


def _run(handlers: list[tuple[int, Handler]], where: str) -> None:
    """Run every handler in order; a failing one is logged once and never stops the others."""
    for _, function in list(handlers):
        try:
            function()
        except Exception as error:
            from genops_autoinstrument.diagnostics import internal_error

            internal_error(where, error)


def _register_fork() -> None:
    global _fork_registered
    if not _fork_registered and hasattr(os, "register_at_fork"):
        _fork_registered = True
        os.register_at_fork(before=_run_before_fork, after_in_parent=_run_after_fork_in_parent, after_in_child=_run_after_fork_in_child)


def _run_before_fork() -> None:
    _run(_before_fork, "before fork")


def _run_after_fork_in_parent() -> None:
    _run(_after_fork_in_parent, "after fork")


def _run_after_fork_in_child() -> None:
    _run(_after_fork_in_child, "after fork in child")


def on_fork_child(function: Handler, rank: int) -> None:
    """Run ``function`` in every forked child, at ``rank`` (one of the ``FORK_*`` ranks)."""
    _add(_after_fork_in_child, function, rank)
    _register_fork()


def around_fork(before: Handler, after_in_parent: Handler, rank: int) -> None:
    """Run ``before`` just before every fork and ``after_in_parent`` after it, in the parent."""
    _add(_before_fork, before, rank)
    _add(_after_fork_in_parent, after_in_parent, rank)
    _register_fork()


def at_exit(function: Handler, rank: int) -> None:
    """Run ``function`` at normal exit, at ``rank`` (one of the ``EXIT_*`` ranks); it must be
    idempotent. Registering again in a forked child renews the multiprocessing finalizer, which a
    pool worker does not inherit."""
    global _exit_registered, _finalizer_pid
    _add(_exit, function, rank)
    if not _exit_registered:
        _exit_registered = True
        atexit.register(run_exit_handlers)
    if "multiprocessing" in sys.modules and _finalizer_pid != os.getpid():
        try:
            from multiprocessing import util

            util.Finalize(None, run_exit_handlers, exitpriority=10)
            _finalizer_pid = os.getpid()
        except Exception:  # pragma: no cover - multiprocessing without util
            pass


def set_exit_budget(budget: Callable[[], float]) -> None:
    """``budget()`` is how many seconds the exit handlers may take in all; read when an exit begins."""
    global _exit_budget
    _exit_budget = budget


def exit_seconds_left(longest: float) -> float:
    """``longest``, or less when exit handlers are running: what is left before their deadline."""
    deadline = _exit_deadline
    if deadline is None:
        return longest
    return max(0.0, min(longest, deadline - time.monotonic()))


def run_exit_handlers(seconds: float | None = None) -> None:
    """Run the exit handlers now, in order, within ``seconds`` in all (default: the exit budget),
    at exit or for a server or signal whose way of stopping skips Python's exit handlers."""
    global _exit_deadline
    if _exit_deadline is not None:  # already running (a handler that exits again): one deadline
        _run(_exit, "exit handler")
        return
    if seconds is None and _exit_budget is not None:
        try:
            seconds = _exit_budget()
        except Exception:  # pragma: no cover - the budget is read from validated settings
            seconds = None
    _exit_deadline = time.monotonic() + seconds if seconds is not None else None
    try:
        _run(_exit, "exit handler")
    finally:
        _exit_deadline = None


class _RanHere:
    """What :func:`start_or_run` returns for work that already ran on the calling thread: a
    thread's ``join`` and ``is_alive``, alive when the work gave up waiting (as a thread abandoned
    at its deadline would be)."""

    daemon = True

    def __init__(self, name: str, gave_up: bool) -> None:
        self.name = name
        self._gave_up = gave_up

    def join(self, timeout: float | None = None) -> None:
        """Nothing to wait for: the work ran before this was returned."""

    def is_alive(self) -> bool:
        return self._gave_up


def start_or_run(work: Callable[[], Any], name: str, inline: Callable[[], Any] | None = None) -> Any:
    """Start ``work`` on a daemon thread named ``name`` and return the thread; where no thread can
    start (interpreter shutdown on Python 3.12.0-3.12.1, a sandbox), run ``inline`` (default:
    ``work``) on the calling thread instead and return a stand-in with ``join`` and ``is_alive``.
    ``inline`` bounds the waits a thread would have been abandoned in, and returns False when one
    ran out. Its exceptions are logged, never raised."""
    try:
        worker = threading.Thread(target=work, name=name, daemon=True)
        worker.start()
        return worker
    except RuntimeError:  # "can't create new thread at interpreter shutdown", or no threads left
        pass
    try:
        ended = (inline or work)()
    except Exception as error:
        from genops_autoinstrument.diagnostics import internal_error

        internal_error(name, error)
        ended = True  # it failed, it is not still waiting
    return _RanHere(name, ended is False)


def run_bounded(work: Callable[[], Any], seconds: float, name: str, inline: Callable[[], Any] | None = None) -> bool:
    """Run ``work`` on a helper thread and wait ``seconds`` at most (then abandon it, a daemon);
    where no thread can start, run ``inline`` (default: ``work``) here, as :func:`start_or_run`.
    True if it ended in time."""
    worker = start_or_run(work, name, inline)
    worker.join(max(0.0, seconds))
    return not worker.is_alive()
