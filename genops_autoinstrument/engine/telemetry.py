"""GenOps' own OpenTelemetry providers, built from the standard ``OTEL_*`` variables on first need.

GenOps never registers its providers as the process's global ones (``genops-run`` and
``instrument()``): the application, or any library, may set up OpenTelemetry before or after its
first model call and keep it. A call is recorded into the application's global providers when it
has real ones (see :mod:`~genops_autoinstrument.engine.global_providers`), otherwise into GenOps'
private providers, which carry GenOps' spans and those of the contrib instrumentors ``genops-run``
activated, nothing else. Only under ``opentelemetry-instrument`` does GenOps' configurator set the
global providers, as that launcher's users expect (:func:`configure_global`).

Nothing here runs at startup: a provider is built on the first call that needs it, so a program
that never calls a model (or records only into its own providers) pays nothing for it. Exporting
never blocks the application: spans and metrics are batched in the background.

Exit is bounded as a whole by ``GENOPS_EXIT_FLUSH_SECONDS``, from the application's last line to
the end of the process: GenOps' exit handlers (queued records, summary, traces and metrics exported
side by side) share one deadline, and end up to a second early (at most half the budget), which is
left to the interpreter's own teardown (0.2-1 s for a process that loaded a provider SDK). An
exporter still waiting on the collector then is abandoned on its daemon thread. SIGTERM and SIGINT
flush too (:mod:`~genops_autoinstrument.engine.signals`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from genops_autoinstrument import __version__, semconv
from genops_autoinstrument import lifecycle
from genops_autoinstrument.engine import signals

log = logging.getLogger("genops")

_lock = threading.Lock()
_configured = False


def _after_fork_in_child() -> None:
    """A fork while another thread held ``_lock`` would leave it held forever in the child."""
    global _lock, _configured
    if _lock.locked():  # the parent was building a provider: the child starts over
        _configured = False
        _owned.clear()
        _providers.clear()
    _lock = threading.Lock()


lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_TELEMETRY)

_owned: list[Any] = []  # providers GenOps created (and therefore flushes and shuts down)

EXIT_FLUSH_SECONDS_DEFAULT = 2.0
TEARDOWN_SECONDS = 1.0  # the most of the exit budget left to the interpreter's teardown (half at most)
# Exporters log every retry against an unreachable collector; GenOps says it once instead.
_EXPORTER_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal", "opentelemetry.sdk.trace.export", "opentelemetry.sdk.metrics._internal.export")


def _exporter_names(signal: str) -> list[str]:
    raw = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def _protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip().lower()


def _span_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        if _protocol("traces") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
        return OTLPSpanExporter()
    return _entry_point_exporter("opentelemetry_traces_exporter", name)


def _metric_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name == "otlp":
        if _protocol("metrics") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
        return OTLPMetricExporter()
    return _entry_point_exporter("opentelemetry_metrics_exporter", name)


def _entry_point_exporter(group: str, name: str) -> Any:
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=group, name=name):
        return entry_point.load()()
    raise ValueError(f"no exporter named {name!r} is installed (entry-point group {group})")


def resource() -> Any:
    """The SDK resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES plus GenOps' own.

    Each process gets its own ``service.instance.id`` (unless the user set one), so that the
    cumulative metrics of several workers of one service never collide in the backend.
    """
    import uuid

    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = {semconv.RESOURCE_GENOPS_VERSION: __version__}
    if "service.instance.id" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.instance.id"] = str(uuid.uuid4())
    return Resource.create(attributes)


class _ForkSafeMetricExporter:
    """Exports only from the process that created it.

    A forked child inherits the parent's accumulated metric state and the SDK restarts the
    reader's thread in the child, which would export the parent's totals a second time. The
    child gets providers of its own instead (see :func:`_child_providers`).
    """

    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter
        self._pid = os.getpid()
        self._preferred_temporality = exporter._preferred_temporality
        self._preferred_aggregation = exporter._preferred_aggregation

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        if os.getpid() != self._pid:
            return MetricExportResult.SUCCESS
        return self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True if os.getpid() != self._pid else self._exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if os.getpid() == self._pid:
            self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


def ensure_configured() -> None:
    """Get GenOps' exit and signal handling ready; the providers themselves are built on first need."""
    global _configured
    if _configured:
        return
    with _lock:
        if _configured:
            return
        _configured = True
        lifecycle.at_exit(signals.interrupt_streams, lifecycle.EXIT_IN_FLIGHT)


def _private(kind: str) -> Any:
    """GenOps' own provider of ``kind`` ("tracer" or "meter"), built on first use, never global."""
    ensure_configured()
    _child_providers()
    provider = _providers.get(kind)
    if provider is not None:
        return provider
    with _lock:
        provider = _providers.get(kind)
        if provider is None:
            provider = _providers[kind] = _build(kind)
    return provider


def _build(kind: str) -> Any:
    """A new private provider; one that cannot be built is a no-op one (one warning, never a raise)."""
    from opentelemetry import metrics, trace

    if "resource" not in _providers:
        try:
            _providers["resource"] = resource()  # one service.instance.id for traces and metrics
        except Exception as error:
            log.warning("GenOps could not build the resource (%s)", error)
            _providers["resource"] = None
    try:
        provider = _new_tracer_provider(_providers["resource"]) if kind == "tracer" else _new_meter_provider(_providers["resource"])
    except Exception as error:
        what = "tracing" if kind == "tracer" else "metrics"
        log.warning("GenOps could not set up %s (%s); %s are not exported", what, error, "spans" if kind == "tracer" else "metrics")
        return trace.NoOpTracerProvider() if kind == "tracer" else metrics.NoOpMeterProvider()
    _providers["pid"] = os.getpid()
    _own(provider)
    return provider


def _own(provider: Any) -> None:
    """GenOps flushes and shuts down ``provider`` at exit (and on SIGTERM/SIGINT)."""
    first = not _owned
    _owned.append(provider)
    if first:
        lifecycle.at_exit(shutdown, lifecycle.EXIT_TELEMETRY)
        signals.install(exit_flush_seconds)
        if not log.isEnabledFor(logging.DEBUG):
            _quiet_exporter_retries()


def exit_flush_seconds() -> float:
    """``GENOPS_EXIT_FLUSH_SECONDS``: how long the whole exit may take (and a signal's flush)."""
    try:
        from genops_autoinstrument import config

        return float(config.read("GENOPS_EXIT_FLUSH_SECONDS"))
    except Exception:
        return EXIT_FLUSH_SECONDS_DEFAULT


def exit_handlers_seconds() -> float:
    """What GenOps' exit handlers may take in all: the exit budget less the interpreter's teardown."""
    seconds = exit_flush_seconds()
    return seconds - min(TEARDOWN_SECONDS, seconds / 2)


lifecycle.set_exit_budget(exit_handlers_seconds)


def _quiet_exporter_retries() -> None:
    """Each distinct exporter complaint (collector unreachable, retrying…) is shown once.

    A logging filter applies only to records of the logger it is attached to, so it goes on every
    exporter logger that exists once the exporters are imported.
    """
    once = _OncePerMessage()
    names = [name for name in logging.root.manager.loggerDict if name.startswith(_EXPORTER_LOGGERS)]
    for name in set(names) | set(_EXPORTER_LOGGERS):
        logging.getLogger(name).addFilter(once)


class _OncePerMessage(logging.Filter):
    """Let each distinct exporter complaint through once per process."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg).split(" retrying", 1)[0][:80]
        if key in self._seen:
            return False
        self._seen.add(key)
        return True



def _new_tracer_provider(process_resource: Any) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from genops_autoinstrument.engine.deferred import add_span_queue_flusher

    provider = TracerProvider(resource=process_resource, shutdown_on_exit=False, **_no_global_meter(TracerProvider))
    add_span_queue_flusher(provider)  # first: GenOps' queued spans end before the exporters flush
    provider.add_span_processor(signals.InFlightSpans())  # what a SIGTERM finds open ends as interrupted
    for name in _exporter_names("traces"):
        if name == "none":
            continue
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(name), **_no_global_meter(BatchSpanProcessor)))
    return provider


def _no_global_meter(sdk_class: Any) -> dict[str, Any]:
    """The SDK's own self-metrics (opentelemetry-sdk 1.40+) of GenOps' private providers go nowhere,
    instead of to the global meter provider: GenOps never loads or uses the application's global
    providers for its own, and one named by an unloadable OTEL_PYTHON_METER_PROVIDER would raise."""
    import inspect

    if "meter_provider" not in inspect.signature(sdk_class.__init__).parameters:
        return {}
    from opentelemetry.metrics import NoOpMeterProvider

    return {"meter_provider": NoOpMeterProvider()}


def _new_meter_provider(process_resource: Any) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    from opentelemetry.sdk.metrics.export import MetricReader

    readers = []
    for name in _exporter_names("metrics"):
        if name == "none":
            continue
        exporter = _metric_exporter(name)
        # Pull exporters (prometheus) are registered as MetricReaders, as the SDK's own setup expects.
        readers.append(exporter if isinstance(exporter, MetricReader) else PeriodicExportingMetricReader(_ForkSafeMetricExporter(exporter)))
    return MeterProvider(resource=process_resource, metric_readers=readers, shutdown_on_exit=False)


# GenOps' private providers of this process ("tracer", "meter"), the resource they share and the
# pid they were built in: a forked child builds its own (see _child_providers).
_providers: dict[str, Any] = {}


def _child_providers() -> None:
    """In a forked child: new providers of its own, so nothing of the parent's is exported twice."""
    if _providers.get("pid") in (None, os.getpid()):
        return
    with _lock:
        if _providers.get("pid") in (None, os.getpid()):
            return
        _providers["pid"] = os.getpid()
        _owned.clear()  # the parent's providers are the parent's to flush
        _providers["resource"] = process_resource = resource()
        if "tracer" in _providers:
            _providers["tracer"] = _new_tracer_provider(process_resource)
            _owned.append(_providers["tracer"])
        if "meter" in _providers:
            _providers["meter"] = _new_meter_provider(process_resource)
            _owned.append(_providers["meter"])
        lifecycle.at_exit(shutdown, lifecycle.EXIT_TELEMETRY)  # renews the multiprocessing finalizer


def shutdown(timeout_seconds: float | None = None) -> None:
    """Flush and shut down GenOps' providers, all within ``timeout_seconds`` (default: what is left
    of the exit deadline); traces and metrics side by side, each on a daemon thread that is
    abandoned at the deadline, so an unreachable collector never holds the process longer."""
    if timeout_seconds is None:
        timeout_seconds = lifecycle.exit_seconds_left(exit_flush_seconds())
    deadline = time.monotonic() + timeout_seconds
    from genops_autoinstrument.engine.deferred import deferred_queue

    deferred_queue.flush(timeout_seconds)  # queued spans end before the providers flush, however this is reached
    providers = list(_owned)
    _owned.clear()
    workers = [_shut_down_in_background(provider) for provider in providers]
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    if any(worker.is_alive() for worker in workers):
        log.warning("GenOps gave up flushing telemetry after %.1fs (collector unreachable?)", timeout_seconds)


def _shut_down_in_background(provider: Any) -> threading.Thread:
    def run() -> None:
        try:
            provider.shutdown()
        except Exception as error:  # pragma: no cover - exporter failures at exit
            log.debug("GenOps telemetry shutdown: %r", error)

    def here() -> bool:  # where no thread can start (3.12.0-3.12.1 at exit): every wait bounded
        return signals.shut_down_here(provider, lifecycle.exit_seconds_left(exit_flush_seconds()))

    return lifecycle.start_or_run(run, "genops-telemetry-shutdown", here)


SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"


def private_tracer_provider() -> Any:
    """GenOps' own tracer provider (built on first use, never global): the contrib instrumentors
    ``genops-run`` activates record into it, and so do calls made while the application has none."""
    return _private("tracer")


def private_meter_provider() -> Any:
    """GenOps' own meter provider (built on first use, never global)."""
    return _private("meter")


def tracer_provider() -> Any:
    """The tracer provider a call made now is recorded into: the application's global one if it
    has a real one, else GenOps' own."""
    from genops_autoinstrument.engine.global_providers import application_provider

    return application_provider("tracer") or private_tracer_provider()


def meter_provider() -> Any:
    """The meter provider a call made now is recorded into (see :func:`tracer_provider`)."""
    from genops_autoinstrument.engine.global_providers import application_provider

    return application_provider("meter") or private_meter_provider()


def tracer(provider: Any = None) -> Any:
    """GenOps' tracer, from ``provider`` or :func:`tracer_provider`."""
    provider = provider if provider is not None else tracer_provider()
    return provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL)


def meter(provider: Any = None) -> Any:
    """GenOps' meter, from ``provider`` or :func:`meter_provider`."""
    provider = provider if provider is not None else meter_provider()
    return provider.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL)


def configure_global() -> None:
    """Under ``opentelemetry-instrument`` only: set up the SDK's global providers from ``OTEL_*``,
    as that launcher's configurator does, unless something set them already. GenOps then records
    into them as into any application's providers, and flushes them at exit."""
    from opentelemetry import metrics, trace

    from genops_autoinstrument.engine.global_providers import application_provider

    ensure_configured()
    with _lock:
        if "resource" not in _providers:
            _providers["resource"] = resource()
        if application_provider("tracer") is None:
            provider = _new_tracer_provider(_providers["resource"])
            trace.set_tracer_provider(provider)
            _own(provider)
        if application_provider("meter") is None:
            provider = _new_meter_provider(_providers["resource"])
            metrics.set_meter_provider(provider)
            _own(provider)


def force_flush(timeout_seconds: float = 30.0) -> bool:
    """Export what GenOps' own providers hold now (a serverless handler's last step); True if done.
    One deadline for the whole flush: each step (the deferred queue, then each provider) gets the
    time left, so the flush takes about ``timeout_seconds`` at worst, not that per step."""
    import time

    from genops_autoinstrument.engine.deferred import FLUSH_SECONDS, deferred_queue

    deadline = time.monotonic() + timeout_seconds
    done = deferred_queue.flush(min(timeout_seconds, FLUSH_SECONDS))
    for provider in list(_owned):
        left_millis = max(1, int((deadline - time.monotonic()) * 1000))  # 1 ms: a provider reads 0 as "no limit"
        try:
            done = bool(provider.force_flush(left_millis)) and done
        except Exception as error:
            log.debug("GenOps telemetry flush: %r", error)
            done = False
    return done


def reset_for_tests() -> None:
    """Forget the configuration so a test can install in-memory providers."""
    global _configured
    _configured = False
    _owned.clear()
    _providers.clear()
