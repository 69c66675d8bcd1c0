"""Carry the code API's scope into threads and executor jobs started inside it.

asyncio tasks copy the context when they are created, so they inherit a scope natively; a new
thread starts with an empty context, and an executor job runs in whichever pool thread is free.
From the first use of the code API on (:func:`ensure_propagation`), a thread started inside a
scope and a job submitted to a ``ThreadPoolExecutor`` inside one see that scope.

Only GenOps' own context variable (:func:`~genops_autoinstrument.engine.units.scope_variable`)
travels: the application's other context variables and the OpenTelemetry context stay exactly
as Python hands them over, so the application behaves as it did. Applications that never use
the code API are never patched.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Callable

from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.units import Scope, scope_variable

__all__ = ["ensure_propagation"]

_installed = False
_install_lock = threading.Lock()
_variable = scope_variable()
_get_scope = _variable.get

# Thread id() -> the scope of the thread that started it, from start() until the new thread
# runs. Keyed by id() (a Thread subclass may be unhashable); the Thread object is alive (and
# its id unique) all that time, and the entry is removed on both paths.
_inherited: dict[int, Scope] = {}
# Set while ThreadPoolExecutor.submit runs: the pool threads it starts must not inherit the
# submitter's scope (they outlive it and run later jobs); each job gets its own instead.
_submitting = threading.local()


def ensure_propagation() -> None:
    """Patch ``threading.Thread`` and ``ThreadPoolExecutor.submit`` once (thread-safe; after
    the first call this is one global read)."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        try:
            _install()
        except Exception as error:  # never break the application's block for this
            internal_error("scope propagation", error)
        _installed = True


def _install() -> None:
    import concurrent.futures.thread as pool_module

    import wrapt

    # _bootstrap_inner runs in the new thread before run(), whatever run() a subclass defines.
    entry = "_bootstrap_inner" if hasattr(threading.Thread, "_bootstrap_inner") else "run"
    wrapt.wrap_function_wrapper(threading, f"Thread.{entry}", _thread_entry)
    wrapt.wrap_function_wrapper(threading, "Thread.start", _thread_start)
    wrapt.wrap_function_wrapper(pool_module, "ThreadPoolExecutor.submit", _executor_submit)


def _thread_start(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """Remember the starter's scope for the new thread (nothing to remember: nothing done)."""
    scope = _get_scope()
    if scope is None or getattr(_submitting, "active", False):
        return wrapped(*args, **kwargs)
    key = id(instance)
    _inherited[key] = scope
    try:
        return wrapped(*args, **kwargs)
    except BaseException:
        _inherited.pop(key, None)  # never started: the thread will not collect it
        raise


def _thread_entry(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """In the new thread: make the starter's scope current, then run the thread as usual."""
    scope = _inherited.pop(id(instance), None)
    if scope is not None:
        # Python >= 3.14 runs the thread inside its own Context object: set the scope there.
        context = getattr(instance, "_context", None)
        if isinstance(context, contextvars.Context):
            if context.get(_variable) is None:
                context.run(_variable.set, scope)
        else:
            _variable.set(scope)  # the thread's own fresh context: nothing to reset
    return wrapped(*args, **kwargs)


def _executor_submit(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """Submit the job so that it runs with the submitter's scope (None included: a pool thread
    is reused, and a job submitted outside every scope must see none)."""
    if not args:  # submit(fn=...) on Python 3.10 or a misuse: let the executor answer as usual
        return wrapped(*args, **kwargs)
    job = _ScopedJob(args[0], _get_scope())
    outer = getattr(_submitting, "active", False)
    _submitting.active = True
    try:
        return wrapped(job, *args[1:], **kwargs)
    finally:
        _submitting.active = outer


class _ScopedJob:
    """A submitted callable run with a given scope, set and reset around the call."""

    __slots__ = ("function", "scope")

    def __init__(self, function: Callable[..., Any], scope: Scope | None) -> None:
        self.function = function
        self.scope = scope

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = _variable.set(self.scope)
        try:
            return self.function(*args, **kwargs)
        finally:
            _variable.reset(token)
