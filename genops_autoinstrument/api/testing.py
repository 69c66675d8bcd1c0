"""Test support for the core and for plugin authors: record calls into in-memory exporters.

``with capture() as recorded:`` installs a fresh engine whose spans and metrics go to the real
OpenTelemetry SDK's in-memory exporter and reader, for the duration of the block.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

from genops_autoinstrument import config
from genops_autoinstrument.engine.engine import Engine
from genops_autoinstrument.engine.runtime import set_engine
from genops_autoinstrument.governance.governor import Governor


@dataclass
class Recorded:
    """What one ``capture()`` block recorded."""

    span_exporter: Any
    metric_reader: Any
    engine: Engine
    tracer_provider: Any = None

    def spans(self) -> list[Any]:
        """The finished spans, once the calls' deferred span completions have run."""
        self.engine.flush()
        return list(self.span_exporter.get_finished_spans())

    def clear(self) -> None:
        """Forget what was recorded so far (spans of calls already made included)."""
        self.engine.flush()
        self.span_exporter.clear()

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Metric name -> [(attributes, data point)] from the in-memory reader."""
        data = self.metric_reader.get_metrics_data()
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        found.setdefault(metric.name, []).append((dict(point.attributes), point))
        return found


@contextlib.contextmanager
def capture(settings: config.Settings | None = None, governor: Governor | None = None, sampler: Any = None) -> Iterator[Recorded]:
    """Record every GenOps call made inside the block into in-memory telemetry."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from genops_autoinstrument.engine.deferred import add_span_queue_flusher

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    add_span_queue_flusher(tracer_provider)  # as genops-run sets up its provider
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    settings = settings if settings is not None else config.load()
    engine = Engine(settings, governor, tracer_provider=tracer_provider, meter_provider=meter_provider)
    previous = config._current
    config.set_current(settings)
    set_engine(engine)
    try:
        yield Recorded(exporter, reader, engine, tracer_provider)
    finally:
        set_engine(None)
        config.set_current(previous)
        tracer_provider.shutdown()
        meter_provider.shutdown()
