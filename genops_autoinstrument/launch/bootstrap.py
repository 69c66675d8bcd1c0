"""What the ``sitecustomize`` of ``genops-run`` calls in every Python process it starts.

The common path must cost a few hundred microseconds: it reads the start-up cache, registers the
watched module names with the finder and returns. Nothing heavy (OpenTelemetry, importlib.metadata,
plugins, ``typing``, ``logging``) is imported unless a watched library is imported, or the cache is
missing or stale (then the environment is validated and the entry points are scanned once).

A failure never passes silently. An invalid setting (including a parser that crashed on it, such
as a pricing file nested too deeply) is exit status 2 with one line. Any other set-up failure is
exit status 2 under ``GENOPS_FAIL_MODE=closed``; under ``open`` the program starts uninstrumented
with one line that names the governance rules it escapes.
"""

from __future__ import annotations

import os
import sys

from genops_autoinstrument import __version__

_done = False
_reported: set = set()

# Length of a discovery.PluginInfo tuple (checked by the tests; discovery is not imported here).
RECORD_LENGTH = 10
_CONFLICTS = 9  # PluginInfo.conflicts: targets installed outside the plugin's range


class UnsupportedSDKError(RuntimeError):
    """``instrument()`` under ``GENOPS_FAIL_MODE=closed`` with an SDK outside its plugin's range."""

_FALSE = ("0", "false", "no", "off")
PLUGIN_GROUP = "genops_instrumentor"
OTEL_GROUP = "opentelemetry_instrumentor"


def _disabled_names(environ: "os._Environ[str]") -> set[str]:
    names: set[str] = set()
    for variable in ("GENOPS_DISABLED_INSTRUMENTATIONS", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"):
        names.update(part.strip() for part in environ.get(variable, "").split(",") if part.strip())
    return names


# Settings that make rules GenOps enforces (a set-up failure then must not pass quietly).
_GOVERNANCE_VARIABLES = ("GENOPS_BUDGETS", "GENOPS_RATE_LIMITS", "GENOPS_ALLOWED_MODELS", "GENOPS_BLOCKED_MODELS")
OTEL_SDK_DISABLED_WARNING = (
    "OTEL_SDK_DISABLED=true turns off every GenOps span and metric "
    "(calls and costs are not reported); budgets and policies are still enforced"
)


def _exit_2(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    finally:
        os._exit(2)


def governance_configured(environ: "os._Environ[str] | dict[str, str]") -> list[str]:
    """The variables that configure enforced rules (read raw: validation may not have run)."""
    names = [name for name in _GOVERNANCE_VARIABLES if environ.get(name, "").strip()]
    if environ.get("GENOPS_CONTENT_POLICY", "").strip().lower() not in ("", "off"):
        names.append("GENOPS_CONTENT_POLICY")
    return names


def setup_failed(error: BaseException) -> None:
    """A set-up failure that is not an invalid setting: refuse to start under fail-closed, else say
    (on one line) that the program runs uninstrumented and which rules it escapes."""
    environ = os.environ
    if environ.get("GENOPS_FAIL_MODE", "").strip().lower() == "closed":
        _exit_2(f"genops-run: GenOps could not start ({error!r}); GENOPS_FAIL_MODE=closed refuses to run the program ungoverned")
    line = f"genops: warning: bootstrap failed ({error!r}); running without instrumentation"
    governed = governance_configured(environ)
    if governed:
        line += f": {', '.join(governed)} NOT enforced in this process (GENOPS_FAIL_MODE=closed would refuse to start)"
    sys.stderr.write(line + "\n")


def validate_or_exit(records: list | None = None) -> list[str]:
    """Validate every variable; on an invalid one print a single line and exit with status 2.
    Returns the warnings it printed (unknown ``GENOPS_*`` names)."""
    from genops_autoinstrument.config import ConfigError

    try:
        return validate_or_raise(records)
    except ConfigError as error:
        _exit_2(f"genops-run: {error}")
    except Exception as error:  # validation itself broke: configured rules cannot be trusted
        if governance_configured(os.environ):
            _exit_2(f"genops-run: the GenOps settings could not be validated ({error!r}); refusing to run the program ungoverned")
        raise
    return []  # pragma: no cover - _exit_2 does not return


def validate_or_raise(records: list | None = None) -> list[str]:
    """Validate every variable, the core's and the plugins'; raise ``ConfigError`` on an invalid
    one (``instrument()``: a notebook kernel must survive it). Prints and returns the warnings."""
    from genops_autoinstrument.config import validate

    records = records or []
    variables = tuple(spec for record in records if len(record) > 8 for spec in record[8])
    names = tuple(record[0] for record in records)
    _, warnings = validate(None, variables, names)
    for warning in warnings:
        sys.stderr.write(f"genops: warning: {warning}\n")
    return warnings


def _plugins(cached: dict | None, env_valid: bool, paths: str | None = None, check: "Callable[[list], list[str]]" = validate_or_exit) -> list[tuple]:
    """Plugin records (PluginInfo tuples), from the cache or from a fresh scan stored for next time."""
    from genops_autoinstrument.launch import startup_cache as bootcache

    if cached is not None and any(len(record) == RECORD_LENGTH - 1 for record in cached.get("plugins", ())):
        cached, env_valid = None, False  # written before PluginInfo.conflicts existed: scan again
    if cached is not None and env_valid:
        return list(cached["plugins"])
    if cached is not None:
        plugins = list(cached["plugins"])
    else:
        from genops_autoinstrument.launch.discovery import scan

        groups = [PLUGIN_GROUP, OTEL_GROUP]
        plugins = [info.to_tuple() for info in scan(groups)]
    warnings = check(plugins)  # exits with status 2 (or raises) when invalid: nothing below is cached then
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
    if os.environ.get("GENOPS_ENABLED", "").strip().lower() in _FALSE:
        return
    try:
        _install(validate_or_exit)
    except Exception as error:  # the sitecustomize would only say "running without instrumentation"
        setup_failed(error)


def started() -> bool:
    """Whether this process was started already, by ``genops-run``'s bootstrap or by :func:`start`."""
    return _done


def start() -> None:
    """``run()`` for an interpreter that is already running (``instrument()``, which holds the lock
    and checks ``GENOPS_ENABLED``): an invalid variable raises ``ConfigError`` and leaves the process
    unstarted, so the caller may fix the environment and call again."""
    global _done
    _install(validate_or_raise)
    _done = True


def _install(check: "Callable[[list], list[str]]") -> None:
    environ = os.environ
    from genops_autoinstrument.launch import startup_cache as bootcache
    from genops_autoinstrument.launch.finder import get_finder

    paths = bootcache.path_fingerprint(__version__)  # before any scan (see bootcache.store)
    cached = bootcache.load(__version__, paths)
    env_valid = cached is not None and bootcache.env_fingerprint() in cached.get("envs", ())
    records = _plugins(cached, env_valid, paths, check)
    disabled = _disabled_names(environ)
    contrib = environ.get("GENOPS_OTEL_INSTRUMENTORS", "").strip().lower() not in _FALSE
    finder = get_finder()
    records = [record for record in records if record[0] not in disabled]
    unsupported = _unsupported(records, check is validate_or_exit)
    # A GenOps plugin owns its library: an OpenTelemetry instrumentor of the same library (the
    # official OpenAI one, say) is not activated beside it, so each call gets one GenAI span.
    owned = {module for record in records if record[2] == PLUGIN_GROUP for module in record[5]}
    for record in records:
        group, watched = record[2], record[5]
        if group == OTEL_GROUP and (not contrib or owned.intersection(watched)):
            continue
        hook = _unsupported_hook(record) if record[1] in unsupported else _hook(record)
        for module_name in watched:
            finder.watch(module_name, hook)
    for module_name, function in _SERVER_HOOKS.items():
        finder.watch(module_name, _server_hook(function))
    finder.install()
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":  # read as the SDK reads it
        sys.stderr.write(f"genops: warning: {OTEL_SDK_DISABLED_WARNING}\n")


def _unsupported(records: list[tuple], exit_on_refusal: bool) -> set[str]:
    """The GenOps plugins whose SDK is installed outside their range (decided from metadata at
    discovery: the application may import the SDK long after start). Their calls would escape every
    rule, so ``GENOPS_FAIL_MODE=closed`` refuses to start, as for any other set-up failure."""
    found = [record for record in records if record[2] == PLUGIN_GROUP and len(record) > _CONFLICTS and record[_CONFLICTS]]
    if not found or os.environ.get("GENOPS_FAIL_MODE", "").strip().lower() != "closed":
        return {record[1] for record in found}
    from genops_autoinstrument.launch.discovery import PluginInfo, unsupported_line

    governed = governance_configured(os.environ)
    lines = [unsupported_line(PluginInfo.from_tuple(record), governed) for record in found]
    names = ",".join(record[0] for record in found)
    line = (
        f"genops-run: {'; '.join(lines)}; GENOPS_FAIL_MODE=closed refuses to run the program with ungoverned calls "
        f"(install a version in the range, or set GENOPS_DISABLED_INSTRUMENTATIONS={names} to accept them ungoverned)"
    )
    if exit_on_refusal:
        _exit_2(line)
    raise UnsupportedSDKError(line.split(": ", 1)[1])


def _unsupported_hook(record: tuple) -> "object":
    """Instead of activation: say once per process, when the application imports the SDK, that its
    calls are not governed and which configured rules they escape."""

    def hook(module: object) -> None:
        if record[1] in _reported:
            return
        _reported.add(record[1])
        from genops_autoinstrument.launch.activation import configure_logging, log
        from genops_autoinstrument.launch.discovery import PluginInfo, unsupported_line

        configure_logging(os.environ.get("GENOPS_LOG_LEVEL", "").strip() or "warning")
        info = PluginInfo.from_tuple(record)
        governed = governance_configured(os.environ)
        line = unsupported_line(info, governed)
        if governed:
            line += " (GENOPS_FAIL_MODE=closed would refuse to start)"
        log.warning("plugin %s (%s %s) skipped: %s", info.name, info.dist, info.dist_version, line)

    return hook


# Built-in hooks (see server_hooks.py): watched names only, nothing imported until they load.
_SERVER_HOOKS = {"uvicorn.server": "hook_uvicorn", "opentelemetry.baggage.propagation": "hook_baggage_propagator"}


def _server_hook(function: str) -> "object":
    def hook(module: object) -> None:
        from genops_autoinstrument.launch import server_hooks

        getattr(server_hooks, function)(module)

    return hook
