"""The application's own global OpenTelemetry providers, as GenOps sees them at each call.

GenOps never sets the process's global providers (under ``genops-run``): it records a call into
the application's global tracer or meter provider when the application (or a library, or the
``OTEL_PYTHON_*_PROVIDER`` variables) has set a real one, as OpenTelemetry instrumentations do,
and into providers of its own otherwise. The check runs on every call, so it reads the API's two
global slots directly: no lock, no loading, no log line. A provider named by
``OTEL_PYTHON_TRACER_PROVIDER`` / ``OTEL_PYTHON_METER_PROVIDER`` is loaded once, the way
``trace.get_tracer_provider()`` loads it; one that cannot be loaded counts as none.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["GlobalSlots", "application_provider"]

# Placeholders, not providers: the API's proxies before anything was set, and the no-op ones.
_NOT_REAL = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"})
_ENV = {"tracer": "OTEL_PYTHON_TRACER_PROVIDER", "meter": "OTEL_PYTHON_METER_PROVIDER"}
_SLOT = {"tracer": "_TRACER_PROVIDER", "meter": "_METER_PROVIDER"}
_unloadable: set[tuple[str, str]] = set()  # (kind, variable value) that failed: never tried again
_load_lock = threading.Lock()
_MISSING = object()


def _api(kind: str) -> Any:
    if kind == "tracer":
        from opentelemetry import trace

        return trace
    from opentelemetry.metrics import _internal as metrics_api

    return metrics_api


def _getter(kind: str) -> Any:
    if kind == "tracer":
        from opentelemetry import trace

        return trace.get_tracer_provider
    from opentelemetry import metrics

    return metrics.get_meter_provider


def application_provider(kind: str) -> Any | None:
    """The application's real global provider of ``kind`` ("tracer" or "meter"), or None."""
    provider = getattr(_api(kind), _SLOT[kind], _MISSING)
    if provider is _MISSING:
        provider = _get(kind)
    if provider is None:
        provider = _load_named(kind)
    if provider is None or type(provider).__name__ in _NOT_REAL:
        return None
    return provider


def _get(kind: str) -> Any | None:
    """The API's getter, for an API whose slot is not where this module expects it."""
    try:
        return _getter(kind)()
    except Exception:
        return None


def _load_named(kind: str) -> Any | None:
    """The provider ``OTEL_PYTHON_<KIND>_PROVIDER`` names, loaded (and made global) by the API's own
    getter, once; None when the variable is unset or names nothing that loads."""
    value = os.environ.get(_ENV[kind], "").strip()
    if not value or (kind, value) in _unloadable:
        return None
    with _load_lock:
        if (kind, value) in _unloadable:
            return None
        if not _entry_point_exists(f"opentelemetry_{kind}_provider", value):
            _unloadable.add((kind, value))  # the API would log a traceback per call; counts as none
            return None
        provider = _get(kind)
        if provider is None or type(provider).__name__ in _NOT_REAL:
            _unloadable.add((kind, value))
            return None
        return provider


def _entry_point_exists(group: str, name: str) -> bool:
    try:
        from importlib.metadata import entry_points

        return any(True for _ in entry_points(group=group, name=name))
    except Exception:
        return False


class GlobalSlots:
    """Reads the API's two global provider slots, cheaply: what a call compares with the last it saw."""

    __slots__ = ("_trace", "_metrics", "read")

    def __init__(self) -> None:
        self._trace = _api("tracer")
        self._metrics = _api("meter")
        direct = hasattr(self._trace, _SLOT["tracer"]) and hasattr(self._metrics, _SLOT["meter"])
        self.read = self._read_direct if direct else self._read_through_getters

    def _read_direct(self) -> tuple[Any, Any]:
        return self._trace._TRACER_PROVIDER, self._metrics._METER_PROVIDER

    @staticmethod
    def _read_through_getters() -> tuple[Any, Any]:
        return application_provider("tracer"), application_provider("meter")


class PinnedSlots:
    """Stands in for :class:`GlobalSlots` when an engine is given its providers (tests, benchmarks)."""

    __slots__ = ()

    @staticmethod
    def read() -> tuple[Any, Any]:
        return None, None
