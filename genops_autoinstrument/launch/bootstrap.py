"""What the ``sitecustomize`` of ``genops-run`` calls in every Python process it starts.

The common path must cost a few hundred microseconds: it reads the start-up cache, registers the
watched module names with the finder and returns. Nothing heavy (OpenTelemetry, importlib.metadata,
plugins, ``typing``, ``logging``) is imported unless a watched library is imported, or the cache is
missing or stale (then the environment is validated and the entry points are scanned once).
"""

from __future__ import annotations

import os
import sys

from genops_autoinstrument import __version__

_done = False

_FALSE = ("0", "false", "no", "off")
PLUGIN_GROUP = "genops_instrumentor"
OTEL_GROUP = "opentelemetry_instrumentor"


def _disabled_names(environ: "os._Environ[str]") -> set[str]:
    names: set[str] = set()
    for variable in ("GENOPS_DISABLED_INSTRUMENTATIONS", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"):
        names.update(part.strip() for part in environ.get(variable, "").split(",") if part.strip())
    return names


def validate_or_exit(records: list | None = None) -> list[str]:
    """Validate every variable; on an invalid one print a single line and exit with status 2.
    Returns the warnings it printed (unknown ``GENOPS_*`` names)."""
    from genops_autoinstrument.config import ConfigError, validate

    records = records or []
    variables = tuple(spec for record in records if len(record) > 8 for spec in record[8])
    names = tuple(record[0] for record in records)
    try:
        _, warnings = validate(None, variables, names)
    except ConfigError as error:
        try:
            sys.stderr.write(f"genops-run: {error}\n")
            sys.stderr.flush()
        finally:
            os._exit(2)
    for warning in warnings:
        sys.stderr.write(f"genops: warning: {warning}\n")
    return warnings


def _plugins(cached: dict | None, env_valid: bool, paths: str | None = None) -> list[tuple]:
    """Plugin records (PluginInfo tuples), from the cache or from a fresh scan stored for next time."""
    from genops_autoinstrument.launch import startup_cache as bootcache

    if cached is not None and env_valid:
        return list(cached["plugins"])
    if cached is not None:
        plugins = list(cached["plugins"])
    else:
        from genops_autoinstrument.launch.discovery import scan

        groups = [PLUGIN_GROUP, OTEL_GROUP]
        plugins = [info.to_tuple() for info in scan(groups)]
    warnings = validate_or_exit(plugins)  # exits with status 2 when invalid: nothing below is cached then
    # An environment that drew a warning is not remembered as valid: the next start warns again.
    bootcache.store(__version__, plugins, None if warnings else bootcache.env_fingerprint(), cached, paths)
    return plugins


def _hook(record: tuple) -> "object":
    def hook(module: object) -> None:
        from genops_autoinstrument.launch.activation import activate, configure_logging
        from genops_autoinstrument.launch.discovery import PluginInfo

        configure_logging(os.environ.get("GENOPS_LOG_LEVEL", "").strip() or "warning")
        activate(PluginInfo.from_tuple(record), module)

    return hook


def run() -> None:
    """Validate, discover and install the finder, once per process."""
    global _done
    if _done:
        return
    _done = True
    environ = os.environ
    if environ.get("GENOPS_ENABLED", "").strip().lower() in _FALSE:
        return
    from genops_autoinstrument.launch import startup_cache as bootcache
    from genops_autoinstrument.launch.finder import get_finder

    paths = bootcache.path_fingerprint(__version__)  # before any scan (see bootcache.store)
    cached = bootcache.load(__version__, paths)
    env_valid = cached is not None and bootcache.env_fingerprint() in cached.get("envs", ())
    records = _plugins(cached, env_valid, paths)
    disabled = _disabled_names(environ)
    contrib = environ.get("GENOPS_OTEL_INSTRUMENTORS", "").strip().lower() not in _FALSE
    finder = get_finder()
    records = [record for record in records if record[0] not in disabled]
    # A GenOps plugin owns its library: an OpenTelemetry instrumentor of the same library (the
    # official OpenAI one, say) is not activated beside it, so each call gets one GenAI span.
    owned = {module for record in records if record[2] == PLUGIN_GROUP for module in record[5]}
    for record in records:
        group, watched = record[2], record[5]
        if group == OTEL_GROUP and (not contrib or owned.intersection(watched)):
            continue
        hook = _hook(record)
        for module_name in watched:
            finder.watch(module_name, hook)
    for module_name, function in _SERVER_HOOKS.items():
        finder.watch(module_name, _server_hook(function))
    finder.install()


# Built-in hooks (see server_hooks.py): watched names only, nothing imported until they load.
_SERVER_HOOKS = {"uvicorn.server": "hook_uvicorn"}


def _server_hook(function: str) -> "object":
    def hook(module: object) -> None:
        from genops_autoinstrument.launch import server_hooks

        getattr(server_hooks, function)(module)

    return hook
