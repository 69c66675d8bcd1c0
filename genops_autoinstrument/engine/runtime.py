"""The process's engine: built on the first recorded call, rebuilt in a forked child.

:func:`begin_call` is where a plugin's call enters it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.call import NULL_CALL, Call, CallRequest, in_recorded_call
from genops_autoinstrument.governance.decisions import Decision, PolicyViolation

if TYPE_CHECKING:  # the engine (OpenTelemetry, prices, the governor) loads on the first recorded call
    from genops_autoinstrument.engine.engine import Engine

_engine: Engine | None = None
_engine_lock = threading.Lock()


_retired: list[Engine] = []  # engines inherited through fork: kept alive, never used or closed


def _after_fork_in_child() -> None:
    """A forked child records with an engine of its own: new providers, governor and ledger connections."""
    global _engine, _engine_lock
    _engine_lock = threading.Lock()
    if _engine is not None:
        _retired.append(_engine)
        _engine = None


def get_engine() -> Engine:
    """The process's engine, built on the first recorded call."""
    global _engine
    engine = _engine
    if engine is None:
        with _engine_lock:
            if _engine is None:
                from genops_autoinstrument import lifecycle
                from genops_autoinstrument.engine.engine import Engine

                lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_ENGINE)  # before the build: a fork mid-build renews the lock
                _engine = Engine()
            engine = _engine
    return engine


def set_engine(engine: Engine | None) -> None:
    """Replace the process engine (tests, or a reconfiguration)."""
    global _engine
    _engine = engine


_perf_counter = time.perf_counter


def begin_call(request: CallRequest, *, block: Callable[[Decision], BaseException] | None = None) -> Call:
    """Decide and start recording one call.

    ``block`` turns a blocking decision into the SDK's native error (see
    :func:`genops_autoinstrument.governance.decisions.native_violation`); without it a plain
    :class:`PolicyViolation` is raised. That raise is the only exception this function lets out.
    """
    if in_recorded_call():
        return NULL_CALL
    try:
        engine = _engine or get_engine()
        call, decision = engine.begin(request, _perf_counter())
    except Exception as error:
        internal_error("begin_call", error)
        return NULL_CALL
    if decision is not None and decision.blocks:
        error = None
        if block is not None:
            try:
                error = block(decision)
            except Exception as internal:
                internal_error("block error factory", internal)
        if not isinstance(error, PolicyViolation):
            error = PolicyViolation(decision)
        raise error
    return call
