"""``flush()``: export what GenOps holds now, for a process that may be frozen or killed next.

GenOps records into the application's providers when it has set up its own, else into providers
of GenOps' own, which the application's ``trace.get_tracer_provider().force_flush()`` does not
reach; and GenOps may queue a call's records briefly before they reach either. A serverless handler
calls ``genops_autoinstrument.flush()`` at its end (beside flushing its own providers): it completes
the queue and exports what GenOps' own providers hold.
"""

from __future__ import annotations

from genops_autoinstrument.diagnostics import internal_error

__all__ = ["flush"]


def flush(timeout: float = 10.0) -> bool:
    """Complete GenOps' queued spans and metrics and export them, within ``timeout`` seconds.

    Returns True when everything was exported in time. A no-op returning True when GenOps has
    recorded nothing in this process (or is disabled). Raises ValueError only for a ``timeout``
    that is not a number of seconds >= 0 (a programming error); never for a failure to export.
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
