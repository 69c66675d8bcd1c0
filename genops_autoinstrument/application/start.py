"""``instrument()``: the one-line start, for an interpreter that ``genops-run`` did not start.

Notebooks, serverless handlers and test suites cannot always be launched through ``genops-run``;
one call does in the running interpreter what its bootstrap does at start-up (the same shared
code, :func:`genops_autoinstrument.launch.bootstrap.start`), except that an invalid variable is
raised, never an exit: a notebook kernel must survive a typo.
"""

from __future__ import annotations

import sys
import threading

from genops_autoinstrument import config
from genops_autoinstrument.launch import bootstrap

_lock = threading.Lock()


def _loaded_by_opentelemetry() -> bool:
    # Never imported here: the distro module is loaded only by `opentelemetry-instrument`.
    distro = sys.modules.get("genops_autoinstrument.launch.otel_distro")
    return bool(getattr(distro, "loaded_by_opentelemetry", False))


def instrument() -> bool:
    """Turn GenOps instrumentation on in this already-running interpreter; True if it did.

    Validates the environment (``GENOPS_*``, ``OTEL_*`` and plugin variables; unknown ``GENOPS_*``
    names are one warning each), discovers the installed plugins and installs the import hook:
    SDKs imported later are patched as they load, SDKs already imported are patched at once.
    ``GENOPS_DISABLED_INSTRUMENTATIONS`` / ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` are honoured.

    Returns False, doing nothing, when instrumentation is already on (under ``genops-run``, under
    ``opentelemetry-instrument`` with GenOps installed, or after an earlier ``instrument()``) or
    when ``GENOPS_ENABLED=false``. Idempotent and thread-safe.

    Raises :class:`genops_autoinstrument.config.ConfigError`, naming the variable, when one holds
    an invalid value; nothing is started then, and a later call may succeed.

    Only this process is instrumented: child processes it starts later (``subprocess``,
    ``multiprocessing`` with spawn) are not. Start the program with ``genops-run`` for those.
    """
    with _lock:
        if bootstrap.started() or _loaded_by_opentelemetry():
            return False
        if not config.is_enabled():  # an invalid GENOPS_ENABLED raises ConfigError here
            return False
        bootstrap.start()
        return True
