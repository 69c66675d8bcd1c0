"""Built-in hooks: servers whose way of stopping skips Python's exit handlers, and the W3C
baggage propagator of servers that take attribution from baggage.

uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal it caught, so
``atexit`` never runs in its workers and buffered spans, metrics and the summary would be lost.
GenOps flushes (bounded by ``GENOPS_EXIT_FLUSH_SECONDS``) right after uvicorn's own shutdown.
The bootstrap registers these hooks with the finder (its ``_SERVER_HOOKS``), like plugins; they
cost nothing until uvicorn is imported.

With ``GENOPS_BAGGAGE_KEYS`` set, the propagator's ``extract`` also remembers the first entry of
each attribution key (the one a gateway prepends) from the moment OpenTelemetry's baggage
propagation is imported, before any request is extracted (see ``engine/baggage.py``).
"""

from __future__ import annotations

import os
from typing import Any

def flush_before_signal_exit() -> None:
    """What atexit would have done: run GenOps' exit handlers (queued spans, summary, telemetry)."""
    from genops_autoinstrument import lifecycle

    lifecycle.run_exit_handlers()


def hook_uvicorn(module: Any) -> None:
    import wrapt

    server = getattr(module, "Server", None)
    original = getattr(server, "shutdown", None) if server is not None else None
    if original is None or getattr(original, "_self_genops_flush", False):
        return

    def shutdown(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        async def run() -> Any:
            try:
                return await wrapped(*args, **kwargs)
            finally:
                try:
                    flush_before_signal_exit()
                except Exception:  # pragma: no cover - never in the way of a server stopping
                    pass

        return run()

    wrapper = wrapt.FunctionWrapper(original, shutdown)
    wrapper._self_genops_flush = True
    server.shutdown = wrapper


def hook_baggage_propagator(module: Any) -> None:
    if not os.environ.get("GENOPS_BAGGAGE_KEYS", "").strip():
        return  # no key is taken from baggage: the propagator stays untouched
    from genops_autoinstrument.engine.baggage import wrap_propagator

    wrap_propagator(module)
