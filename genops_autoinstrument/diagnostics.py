"""GenOps' own diagnostics: the ``genops`` logger and "log each internal failure once".

A leaf every layer may import: an internal failure must never reach the application, and must
not flood its stderr either.
"""

from __future__ import annotations

import logging

log = logging.getLogger("genops")


class _ErrorOnce:
    """Log each distinct internal failure once per process, never raise."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, where: str, error: BaseException) -> None:
        key = f"{where}:{type(error).__name__}"
        if key in self._seen:
            return
        self._seen.add(key)
        log.warning("GenOps internal error in %s (call continues unrecorded): %r", where, error, exc_info=log.isEnabledFor(logging.DEBUG))


internal_error = _ErrorOnce()

