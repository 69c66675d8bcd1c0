"""``flush()``: export what GenOps holds now, for a process that may be frozen or killed next.

GenOps exports through providers of its own (never the global ones), so an application's
``trace.get_tracer_provider().force_flush()`` no longer reaches them: a serverless handler calls
``genops_autoinstrument.flush()`` at its end instead (beside flushing its own providers).
"""

from __future__ import annotations

from genops_autoinstrument.diagnostics import internal_error

__all__ = ["flush"]


def flush(timeout: float = 10.0) -> bool:
    """Complete GenOps' queued spans and metrics and export them, within ``timeout`` seconds.

    Returns True when everything was exported in time. A no-op returning True when GenOps has
    recorded nothing in this process (or is disabled); never raises.
    """
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError(f"flush(timeout=...) takes a number of seconds >= 0, not {timeout!r}")
    try:
        import sys

        telemetry = sys.modules.get("genops_autoinstrument.engine.telemetry")
        if telemetry is None:  # nothing was ever recorded: nothing to export
            return True
        return bool(telemetry.force_flush(float(timeout)))
    except Exception as error:
        internal_error("flush", error)
        return False
