"""Test support for the core and for plugin authors: record calls into in-memory exporters.

``with capture() as recorded:`` installs a fresh engine whose spans and metrics go to the real
OpenTelemetry SDK's in-memory exporter and reader, for the duration of the block.
``content_policy()`` and ``refused_then_sent()`` check a plugin's content-policy refusals the same
way for every SDK; ``instrumenting(*plugins)`` turns plugins on for a block.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sized

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


@contextlib.contextmanager
def instrumenting(*plugins: Any) -> Iterator[None]:
    """The plugins instrumented in order, as genops-run activates them; undone in reverse order."""
    for plugin in plugins:
        plugin.instrument()
    try:
        yield
    finally:
        for plugin in reversed(plugins):
            plugin.uninstrument()


@contextlib.contextmanager
def content_policy(**env: str) -> Iterator[Recorded]:
    """``GENOPS_CONTENT_POLICY=block`` (and ``env``) through the real governor, in-memory telemetry."""
    from opentelemetry.sdk.metrics import MeterProvider

    from genops_autoinstrument.governance.enforcing import EnforcingGovernor
    from genops_autoinstrument.governance.ledger.memory import MemoryLedger

    settings = config.load({"GENOPS_CONTENT_POLICY": "block", **env})
    governor = EnforcingGovernor(settings, ledger=MemoryLedger(), meter=MeterProvider().get_meter("test"))
    try:
        with capture(settings, governor=governor) as recorded:
            yield recorded
    finally:
        governor.close()


@dataclass
class Refusal:
    """What ``refused_then_sent`` saw: the SDK's error, the blocked and allowed calls' spans, and a
    copy of the clean request taken before it was sent."""

    error: BaseException
    blocked: Any
    allowed: Any
    given: Any


def refused_then_sent(send: Callable[[Any], Any], build: Callable[[str], Any], value: str, clean: str, native: type[BaseException], received: Sized, send_clean: Callable[[Any], Any] | None = None) -> Refusal:
    """Under ``content_policy()``: ``send(build(value))`` raises the SDK's ``native`` error, a policy
    denial naming neither the value in its message nor in its span, with nothing ``received`` by
    the endpoint; then ``build(clean)`` is sent (by ``send_clean``, else ``send``), allowed and not
    changed. The caller checks what the endpoint received."""
    import copy
    import json

    from genops_autoinstrument import semconv
    from genops_autoinstrument.governance.decisions import PolicyViolation

    with content_policy() as recorded:
        try:
            send(build(value))
        except native as caught:
            error: BaseException = caught
        else:
            raise AssertionError(f"not refused: the request was sent ({native.__name__} expected)")
        assert len(received) == 0, "nothing reaches the endpoint"
        request = build(clean)
        given = copy.deepcopy(request)
        (send_clean or send)(request)
        blocked, allowed = recorded.spans()
    assert isinstance(error, PolicyViolation) and error.reason_code == semconv.REASON_POLICY_DENY_CONTENT, error
    assert value not in str(error) and value not in json.dumps(dict(blocked.attributes), default=str), "the value is not repeated"
    assert blocked.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert allowed.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert request == given, "the request the application passed is not changed"
    return Refusal(error, blocked, allowed, given)
