"""Configuration from environment variables, validated once, up front.

Every variable the core reads is declared here with its parser, so that the launcher, ``--check``
and the README table agree. An invalid value raises :class:`ConfigError`, which names the variable,
the value and what is accepted; the launcher turns it into exit status 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from genops_autoinstrument.config.errors import ConfigError
from genops_autoinstrument.config.parsers import (
    parse_bool,
    parse_choice,
    parse_existing_file,
    parse_fraction,
    parse_int_range,
    parse_list,
    parse_positive_int,
    parse_seconds,
    parse_text,
)
from genops_autoinstrument.config.rules import (
    BudgetRule,
    RateLimitRule,
    parse_baggage_keys,
    parse_budgets,
    parse_model_patterns,
    parse_rate_limits,
)

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
POLICY_MODES = ("enforced", "warn", "audit")
CONTENT_POLICY_MODES = ("off", "warn", "block")
FAIL_MODES = ("open", "closed")
UNPRICED_POLICIES = ("warn", "block", "allow")
LEDGER_TIMEOUT_MS = (1, 60_000)


def _parse_pricing_file(variable: str, raw: str) -> str | None:
    """Existence, format and every entry: a bad pricing file is a start-up error naming line and key."""
    path = parse_existing_file(variable, raw)
    if path is None:
        return None
    from genops_autoinstrument.config.pricing_file import parse_pricing_file

    parse_pricing_file(variable, raw)
    return path


def parse_ledger_url(variable: str, raw: str) -> str | None:
    url = raw.strip()
    if not url:
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("memory", "sqlite", "redis", "rediss", "redis+cluster"):
        # Never echo a URL back: it may carry a password.
        shown = scheme + "://…" if scheme else "<value without a scheme>"
        raise ConfigError(
            variable,
            shown,
            "memory://, sqlite:///path/to/ledger.db, redis://host:port/db or rediss://…",
        )
    from genops_autoinstrument.config.ledger_url import validate_ledger_url

    validate_ledger_url(variable, url)
    return url


def parse_otel_sdk_disabled(variable: str, raw: str) -> bool:
    """Read exactly as the OpenTelemetry SDK reads it (only ``true`` disables); never an error."""
    return raw.strip().lower() == "true"


_SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio")


def _entry_point_names(group: str) -> set[str]:
    from importlib.metadata import entry_points

    return {entry_point.name for entry_point in entry_points(group=group)}


def parse_exporters(signal: str) -> Callable[[str, str], tuple[str, ...]]:
    """``OTEL_{TRACES,METRICS}_EXPORTER``: built-in names or installed exporter entry points."""

    def parse(variable: str, raw: str) -> tuple[str, ...]:
        names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
        known = {"otlp", "console", "none"}
        unknown = [name for name in names if name not in known]
        if unknown:
            known |= _entry_point_names(f"opentelemetry_{signal}_exporter")
        for name in names:
            if name not in known:
                raise ConfigError(variable, raw, "a comma-separated list of " + ", ".join(sorted(known)))
        return names

    return parse


def parse_otlp_protocol(variable: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("grpc", "http/protobuf"):
        raise ConfigError(variable, raw, "grpc or http/protobuf")
    if value == "grpc":
        from importlib.util import find_spec

        if find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
            raise ConfigError(variable, raw, "http/protobuf, or grpc after `pip install 'genops-autoinstrument[grpc]'`")
    return value


def parse_sampler(variable: str, raw: str) -> str:
    value = raw.strip()
    if value not in _SAMPLERS and value not in _entry_point_names("opentelemetry_traces_sampler"):
        raise ConfigError(variable, raw, "one of " + ", ".join(_SAMPLERS) + " or an installed sampler")
    return value


@dataclass(frozen=True)
class Variable:
    """One environment variable: its parser, default and the line of documentation it gets."""

    name: str
    parse: Callable[[str, str], Any]
    default: Any
    doc: str
    issue: str = "core"


VARIABLES: tuple[Variable, ...] = (
    Variable("GENOPS_ENABLED", parse_bool, True, "`false` turns everything off; the program runs as if started without the launcher."),
    Variable("GENOPS_DISABLED_INSTRUMENTATIONS", parse_list, (), "Comma-separated entry-point names of plugins to skip (e.g. `openai,anthropic`)."),
    Variable("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", parse_list, (), "The OpenTelemetry name for the same list; both are honoured."),
    Variable("GENOPS_LOG_LEVEL", parse_choice(LOG_LEVELS), "warning", "How chatty the `genops` logger is: " + ", ".join(LOG_LEVELS) + "."),
    Variable("GENOPS_TEAM", parse_text, None, "Attribution: team (`genops.team`)."),
    Variable("GENOPS_PROJECT", parse_text, None, "Attribution: project (`genops.project`)."),
    Variable("GENOPS_ENVIRONMENT", parse_text, None, "Attribution: environment (`genops.environment`)."),
    Variable("GENOPS_CUSTOMER_ID", parse_text, None, "Attribution: customer (`genops.customer_id`)."),
    Variable("GENOPS_COST_CENTER", parse_text, None, "Attribution: cost center (`genops.cost_center`)."),
    Variable("GENOPS_FEATURE", parse_text, None, "Attribution: feature (`genops.feature`)."),
    Variable("GENOPS_PRICING_FILE", lambda n, r: _parse_pricing_file(n, r), None, "A TOML or JSON file (regular, UTF-8, at most 64 MiB) of extra or overriding prices (USD per million tokens); a large file is validated once and remembered until it changes."),
    Variable("GENOPS_METRICS_CUSTOMER_DIMENSION", parse_bool, True, "`false` drops `genops.customer_id` from metric dimensions (cardinality)."),
    Variable("GENOPS_SUMMARY", parse_bool, False, "`1` prints a table of calls, tokens and cost to stderr at exit."),
    Variable("GENOPS_BUDGETS", lambda n, r: parse_budgets(n, r), (), "Budget rules, e.g. `team=50/day;customer_id=2/day:warn;global=2000/month`."),
    Variable("GENOPS_BUDGET_ALERT_THRESHOLD", parse_fraction, 0.8, "Fraction of a budget at which `genops.budget.alert` is emitted, once per period."),
    Variable("GENOPS_RATE_LIMITS", lambda n, r: parse_rate_limits(n, r), (), "Rate limits, e.g. `team=600/min;customer_id=30/min`."),
    Variable("GENOPS_LEDGER_URL", parse_ledger_url, None, "Where budget and rate state lives: a SQLite file at `$XDG_STATE_HOME/genops/ledger.db` (default; `~/.local/state/…`), `sqlite:////abs/path.db` (a regular file), `memory://` (one process), `redis://host:6379/0` (database 0–15; only 0 with `redis+cluster://`) / `rediss://…` (a fleet); only the Redis query parameters redis-py understands, and no timeouts (see `GENOPS_LEDGER_TIMEOUT_MS`)."),
    Variable("GENOPS_LEDGER_TIMEOUT_MS", parse_int_range(*LEDGER_TIMEOUT_MS, " (milliseconds)"), 50, "Longest wait for the ledger per call, in milliseconds (1 to 60000), before `GENOPS_FAIL_MODE` decides."),
    Variable("GENOPS_FAIL_MODE", parse_choice(FAIL_MODES), "open", "What a ledger failure means: `open` allows the call, `closed` blocks it."),
    Variable("GENOPS_ALLOWED_MODELS", parse_model_patterns, (), "Comma-separated globs (`*`, `?`, `[abc]`) of requested models that may be used (all when empty); `;`, spaces, quotes and brackets around a name are refused."),
    Variable("GENOPS_BLOCKED_MODELS", parse_model_patterns, (), "Comma-separated globs of requested models that may not be used (same format)."),
    Variable("GENOPS_MODEL_POLICY", parse_choice(POLICY_MODES), "enforced", "Mode of the model rules: enforced, warn or audit."),
    Variable("GENOPS_CONTENT_POLICY", parse_choice(CONTENT_POLICY_MODES), "off", "Outgoing-prompt checks for PII and secrets: off, warn or block."),
    Variable("GENOPS_UNPRICED_POLICY", parse_choice(UNPRICED_POLICIES), "warn", "A call that cannot be priced under a budget: `warn` runs it and says which budget it escapes, `block` refuses it, `allow` charges it $0 silently."),
    Variable("GENOPS_BAGGAGE_KEYS", parse_baggage_keys, frozenset(), "Comma-separated attribution keys that may be taken from W3C baggage (`team`, `project`, `environment`, `customer_id`, `cost_center`, `feature`); none by default. An edge gateway must strip or overwrite each listed key; of duplicates, the first wins."),
    Variable("GENOPS_OTEL_INSTRUMENTORS", parse_bool, True, "`false` stops `genops-run` from activating installed OpenTelemetry contrib instrumentors."),
    Variable("GENOPS_EXIT_FLUSH_SECONDS", parse_seconds, 2.0, "Longest time spent flushing telemetry at exit; an unreachable collector never holds the process longer."),
    Variable("OTEL_TRACES_EXPORTER", parse_exporters("traces"), ("otlp",), "Standard: span exporters (`otlp`, `console`, `none`, or an installed one).", "otel"),
    Variable("OTEL_METRICS_EXPORTER", parse_exporters("metrics"), ("otlp",), "Standard: metric exporters (`otlp`, `console`, `none`, or an installed one).", "otel"),
    Variable("OTEL_EXPORTER_OTLP_PROTOCOL", parse_otlp_protocol, "http/protobuf", "Standard: `http/protobuf` or `grpc` (with the `[grpc]` extra); also the `_TRACES_`/`_METRICS_` forms.", "otel"),
    Variable("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", parse_otlp_protocol, None, "Standard: the OTLP protocol for spans only.", "otel"),
    Variable("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", parse_otlp_protocol, None, "Standard: the OTLP protocol for metrics only.", "otel"),
    Variable("OTEL_TRACES_SAMPLER", parse_sampler, "parentbased_always_on", "Standard: the sampler (metrics are recorded whatever it decides).", "otel"),
    Variable("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", parse_bool, False, "Standard switch: record prompt and completion content on spans."),
    Variable("OTEL_SDK_DISABLED", parse_otel_sdk_disabled, False, "Standard: `true` turns the OpenTelemetry SDK off, and with it every GenOps span and metric (budgets and rules still hold); each process says so on stderr.", "otel"),
)
_BY_NAME = {variable.name: variable for variable in VARIABLES}


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process."""

    enabled: bool = True
    disabled_instrumentations: frozenset[str] = frozenset()
    log_level: str = "warning"
    attribution: Mapping[str, str] = field(default_factory=dict)
    pricing_file: str | None = None
    metrics_customer_dimension: bool = True
    summary: bool = False
    budgets: tuple[BudgetRule, ...] = ()
    budget_alert_threshold: float = 0.8
    rate_limits: tuple[RateLimitRule, ...] = ()
    ledger_url: str | None = None
    ledger_timeout_ms: int = 50
    fail_mode: str = "open"
    allowed_models: tuple[str, ...] = ()
    blocked_models: tuple[str, ...] = ()
    model_policy: str = "enforced"
    content_policy: str = "off"
    otel_instrumentors: bool = True
    capture_content: bool = False
    unpriced_policy: str = "warn"
    baggage_keys: frozenset[str] = frozenset()  # full keys (genops.customer_id) trusted from baggage
    otel_sdk_disabled: bool = False


_ATTRIBUTION_VARIABLES = {
    "GENOPS_TEAM": "genops.team",
    "GENOPS_PROJECT": "genops.project",
    "GENOPS_ENVIRONMENT": "genops.environment",
    "GENOPS_CUSTOMER_ID": "genops.customer_id",
    "GENOPS_COST_CENTER": "genops.cost_center",
    "GENOPS_FEATURE": "genops.feature",
}


def read(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """Parse one declared variable (its default when unset or empty)."""
    environ = os.environ if environ is None else environ
    variable = _BY_NAME[name]
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return variable.default
    return guarded(variable.parse, name, raw)


# Values never echoed when a parser fails unexpectedly (they may carry credentials).
_SECRET_VARIABLES = frozenset({"GENOPS_LEDGER_URL"})


def guarded(parse: Callable[[str, str], Any], name: str, raw: str) -> Any:
    """Run a parser; anything it raises besides ConfigError (RecursionError, MemoryError, OSError,
    a bug) is still a configuration error naming the variable, never a crash that the bootstrap
    would have to swallow (and then run the program ungoverned)."""
    try:
        return parse(name, raw)
    except ConfigError:
        raise
    except Exception as error:
        shown = "<not shown>" if name in _SECRET_VARIABLES else raw
        detail = " ".join(str(error).split())[:200]  # one line, whatever the exception says
        raise ConfigError(name, shown, f"a value GenOps can read (reading it raised {type(error).__name__}: {detail})") from None


def is_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Cheap check used first by the bootstrap, before anything else is parsed."""
    return bool(read("GENOPS_ENABLED", environ))


def _read_or_default(name: str, environ: Mapping[str, str]) -> Any:
    try:
        return read(name, environ)
    except ConfigError as error:
        import logging

        logging.getLogger("genops").error("%s; GenOps uses the default for %s", error, name)
        return _BY_NAME[name].default


def load(environ: Mapping[str, str] | None = None, lenient: bool = False) -> Settings:
    """Validate every declared variable and return the settings; raise ConfigError on the first bad
    one (``lenient``: log it and use that variable's default, keeping every valid rule)."""
    environ = os.environ if environ is None else environ
    reader = _read_or_default if lenient else read
    values = {variable.name: reader(variable.name, environ) for variable in VARIABLES}
    attribution = {key: values[name] for name, key in _ATTRIBUTION_VARIABLES.items() if values[name]}
    return Settings(
        enabled=values["GENOPS_ENABLED"],
        disabled_instrumentations=frozenset(
            values["GENOPS_DISABLED_INSTRUMENTATIONS"] + values["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"]
        ),
        log_level=values["GENOPS_LOG_LEVEL"],
        attribution=attribution,
        pricing_file=values["GENOPS_PRICING_FILE"],
        metrics_customer_dimension=values["GENOPS_METRICS_CUSTOMER_DIMENSION"],
        summary=values["GENOPS_SUMMARY"],
        budgets=values["GENOPS_BUDGETS"],
        budget_alert_threshold=values["GENOPS_BUDGET_ALERT_THRESHOLD"],
        rate_limits=values["GENOPS_RATE_LIMITS"],
        ledger_url=values["GENOPS_LEDGER_URL"],
        ledger_timeout_ms=values["GENOPS_LEDGER_TIMEOUT_MS"],
        fail_mode=values["GENOPS_FAIL_MODE"],
        allowed_models=values["GENOPS_ALLOWED_MODELS"],
        blocked_models=values["GENOPS_BLOCKED_MODELS"],
        model_policy=values["GENOPS_MODEL_POLICY"],
        content_policy=values["GENOPS_CONTENT_POLICY"],
        otel_instrumentors=values["GENOPS_OTEL_INSTRUMENTORS"],
        capture_content=values["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"],
        unpriced_policy=values["GENOPS_UNPRICED_POLICY"],
        baggage_keys=values["GENOPS_BAGGAGE_KEYS"],
        otel_sdk_disabled=values["OTEL_SDK_DISABLED"],
    )


# Read by the bootstrap itself, before validation, and by the test setup.
_INTERNAL_VARIABLES = frozenset({"GENOPS_BOOT_CACHE"})
_KINDS = {"bool": parse_bool, "text": parse_text, "int": parse_positive_int, "seconds": parse_seconds}


def plugin_variable(name: str, kind: str, default: Any, doc: str) -> tuple[str, str, Any, str]:
    """Declare a plugin's own variable (``kind``: bool, text, int, seconds, or ``choice:a|b``).

    Plugins list these in ``GenOpsInstrumentor.environment_variables``; discovery records them so
    that the launcher validates them with the core's and ``--check`` and the docs show them.
    """
    parser_for(kind)
    return (name, kind, default, doc)


def parser_for(kind: str) -> Callable[[str, str], Any]:
    if kind.startswith("choice:"):
        return parse_choice(tuple(kind[len("choice:") :].split("|")))
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown variable kind {kind!r}") from None


def read_plugin_variable(spec: tuple[str, str, Any, str], environ: Mapping[str, str] | None = None) -> Any:
    """A plugin variable's value (its default when unset); raises ConfigError when invalid."""
    environ = os.environ if environ is None else environ
    name, kind, default, _ = spec
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return guarded(parser_for(kind), name, raw)


def validate(
    environ: Mapping[str, str] | None = None,
    plugin_variables: tuple[tuple[str, str, Any, str], ...] = (),
    plugin_names: tuple[str, ...] = (),
) -> tuple[Settings, list[str]]:
    """Start-up validation: every core and plugin variable, plus unknown ``GENOPS_*`` names.

    A name that looks like a misspelt known variable (``GENOPS_BUDGET`` for ``GENOPS_BUDGETS``)
    is an error, since a budget that was meant to block must never quietly stop blocking; other
    unknown names come back as warnings.
    """
    environ = os.environ if environ is None else environ
    settings = load(environ)
    known = {variable.name for variable in VARIABLES} | _INTERNAL_VARIABLES
    for spec in plugin_variables:
        read_plugin_variable(spec, environ)
        known.add(spec[0])
    prefixes = tuple(f"GENOPS_{name.upper()}_" for name in plugin_names)
    warnings = []
    for name in sorted(environ):
        if not name.startswith("GENOPS_") or name in known:
            continue
        import difflib

        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85)
        if close:
            # The value is not shown: a misspelt GENOPS_LEDGER_URL carries its password.
            raise ConfigError(name, "<not shown>", f"a known variable (did you mean {close[0]}?)")
        if prefixes and name.startswith(prefixes):
            continue
        warnings.append(f"unknown variable {name} is ignored (the README lists every variable)")
    return settings, warnings


_current: Settings | None = None


def current() -> Settings:
    """The process's settings, loaded on first use (plugins used outside the launcher get them too)."""
    global _current
    if _current is None:
        # Outside the launcher there is nobody to exit 2: each invalid variable is logged and falls
        # back to its default, and every valid rule still holds (one bad variable used to drop them all).
        _current = load(lenient=True)
    return _current


def set_current(settings: Settings | None) -> None:
    """Replace the process's settings (the bootstrap after validation; tests)."""
    global _current
    _current = settings
