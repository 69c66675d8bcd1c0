"""In process: each call is recorded into the application's global provider when it has a real one,
else into GenOps' own, and the choice is cached per provider (no new tracer or instruments per call).

The global slots are set with ``monkeypatch`` (restored after each test), as
``trace.set_tracer_provider`` would set them, which the API allows only once per process.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genops_autoinstrument import config
from genops_autoinstrument.engine import telemetry
from genops_autoinstrument.engine.engine import Engine
from genops_autoinstrument.engine.runtime import begin_call, set_engine
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.pricing.usage import Usage


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine with no providers given: GenOps' own are built on first need (exporting nowhere)."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(metrics_api, "_METER_PROVIDER", None)
    telemetry.reset_for_tests()
    engine = Engine(config.Settings(), defer=False)
    set_engine(engine)
    try:
        yield engine
    finally:
        set_engine(None)
        telemetry.shutdown(5.0)
        telemetry.reset_for_tests()


def _call() -> None:
    call = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini"))
    with call:
        pass
    call.finish(usage=Usage(input_tokens=3, output_tokens=2))


def test_the_sink_follows_the_global_provider_and_is_cached(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    private = engine._sink()
    assert engine._sink() is private  # nothing changed: the same tracer and instruments
    assert private.tracer.tracer.span_processor is telemetry.private_tracer_provider()._active_span_processor
    exporter = InMemorySpanExporter()
    application = TracerProvider()
    application.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", application)  # the application sets its provider
    _call()
    ours = engine._sink()
    assert ours is not private and ours.instruments is private.instruments  # its meter: still GenOps' own
    assert [span.name for span in exporter.get_finished_spans()] == ["chat gpt-4o-mini"]
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", trace.NoOpTracerProvider())  # a no-op one counts as none
    assert engine._sink() is private


def test_genops_never_sets_the_global_providers(engine: Engine) -> None:
    _call()
    assert trace._TRACER_PROVIDER is None and metrics_api._METER_PROVIDER is None
    assert telemetry.tracer_provider() is telemetry.private_tracer_provider()
