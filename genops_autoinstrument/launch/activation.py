"""Activating a plugin when the finder reports that its target module has executed.

This is the first GenOps code that imports anything heavy (the plugin, OpenTelemetry's
instrumentation package), and it runs only in processes that import a watched library. Every
failure here is one warning line; the application's import always succeeds.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

from genops_autoinstrument.launch.discovery import PLUGIN_GROUP, PluginInfo, unsatisfied

log = logging.getLogger("genops")

_SKIPPED = object()
_instances: dict[str, Any] = {}
_warned: set[str] = set()


def configure_logging(level: str = "warning") -> None:
    """Give the ``genops`` logger its own stderr handler, once (the app's logging is left alone)."""
    if getattr(log, "_genops_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("genops: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False
    log._genops_configured = True  # type: ignore[attr-defined]


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key in _warned:
        return
    _warned.add(key)
    log.warning(message, *args)


def _load(value: str) -> Any:
    module_name, _, attribute = value.partition(":")
    target: Any = importlib.import_module(module_name.strip())
    for part in attribute.strip().split("."):
        if part:
            target = getattr(target, part)
    return target


def activate(info: PluginInfo, module: Any) -> None:
    """Instrument with the plugin (first execution) or patch again (re-execution of the module)."""
    state = _instances.get(info.value)
    if state is _SKIPPED:
        return
    if state is not None:
        try:
            state.reinstrument() if hasattr(state, "reinstrument") else None
        except Exception as error:
            _warn_once(f"reinstrument:{info.value}", "plugin %r failed to patch %s again and is skipped: %r", info.name, module.__name__, error)
        return
    label = f"{info.name} ({info.dist} {info.dist_version})" if info.dist else info.name
    if info.error:
        _instances[info.value] = _SKIPPED
        _warn_once(f"broken:{info.value}", "plugin %s is broken and skipped: %s", label, info.error)
        return
    try:
        problem = unsatisfied(info.requirements) if info.requirements else None
    except Exception as error:  # pragma: no cover - malformed requirement strings
        problem = f"cannot check requirements: {error}"
    if problem:
        _instances[info.value] = _SKIPPED
        _warn_once(f"version:{info.value}", "plugin %s skipped: %s", label, problem)
        return
    try:
        plugin_class = _load(info.value)
        instance = plugin_class()
        if not instance.is_instrumented_by_opentelemetry:
            instance.instrument(skip_dep_check=True, **_providers_of(info))
        _instances[info.value] = instance
        log.debug("plugin %s instrumented %s", label, module.__name__)
    except Exception as error:
        _instances[info.value] = _SKIPPED
        undo = getattr(locals().get("instance"), "_uninstrument", None)
        if undo is not None:  # roll back whatever the plugin patched before it raised
            try:
                undo()
            except Exception:
                pass
        _warn_once(f"failed:{info.value}", "plugin %s failed while patching %s and is skipped: %r", label, module.__name__, error)


def _providers_of(info: PluginInfo) -> dict[str, Any]:
    """A contrib instrumentor records into GenOps' own providers, never into the global ones (the
    application's, or nothing when it set none up): ``BaseInstrumentor``'s provider arguments."""
    if info.group == PLUGIN_GROUP:
        return {}
    from genops_autoinstrument.engine import telemetry

    return {"tracer_provider": telemetry.private_tracer_provider(), "meter_provider": telemetry.private_meter_provider()}


def report_hook_error(hook: Any, name: str, error: BaseException) -> None:
    _warn_once(f"hook:{name}:{id(hook)}", "a plugin hook for %s failed: %r", name, error)


def instances() -> dict[str, Any]:
    """Active plugin instances by entry-point value (diagnostics and tests)."""
    return {key: value for key, value in _instances.items() if value is not _SKIPPED}
