"""Pipelines and the tracer hook: one span per run, the model call's CLIENT span under it once,
metadata trusted like baggage, content never recorded, and the application's own tracer kept."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

if sys.version_info < (3, 11):  # before the imports below, which need the SDK
    pytest.skip("haystack-ai 3.4+, the Haystack plugin's range, requires Python 3.11", allow_module_level=True)

from haystack import Pipeline, tracing
from haystack.components.agents import Agent
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage
from haystack.tools import tool
from opentelemetry.trace import SpanKind

from genops_autoinstrument import config, track
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope
from genops_instrumentation_haystack import HaystackInstrumentor


def _pipeline(endpoint, metadata=None):
    pipeline = Pipeline(metadata=metadata)
    pipeline.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user("Tell me about {{topic}}")], required_variables="*"))
    pipeline.add_component("llm", endpoint.generator())
    pipeline.connect("prompt_builder.prompt", "llm.messages")
    return pipeline


def _run(pipeline, topic="tracing"):
    return pipeline.run({"prompt_builder": {"topic": topic}})["llm"]["replies"][0].text


def _client_spans(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def test_a_generator_component_is_its_model_calls_one_span(rec, endpoint, h):
    assert _run(_pipeline(endpoint)) == "Echo: Tell me about tracing"
    spans = rec.spans()
    assert h.tree(spans) == ["pipeline", "  prompt_builder", "  chat gpt-4o-mini"]  # no second span for the llm step
    (client,) = _client_spans(spans)
    (pipeline,) = h.by_name(spans, "pipeline")
    assert client.parent.span_id == pipeline.context.span_id
    assert client.attributes["gen_ai.usage.input_tokens"] == 24 and client.attributes["gen_ai.usage.output_tokens"] == 9
    assert pipeline.attributes["genops.unit.calls"] == 1
    assert pipeline.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)
    assert pipeline.attributes["haystack.pipeline.execution_mode"] == "sync"
    assert tracing.tracer.current_span() is None and current_scope() is None


def test_content_is_never_recorded_even_with_haystacks_content_tracing(rec, endpoint, h, monkeypatch):
    @tool
    def lookup(topic: str) -> str:
        """Look a topic up."""
        return f"the secret plan about {topic}"  # a plain-text output: Haystack's content tag would be a string

    monkeypatch.setattr(tracing.tracer, "is_content_tracing_enabled", True)
    _run(_pipeline(endpoint), "a secret plan")
    endpoint.tool_arguments = {"topic": "secret plan"}
    Agent(chat_generator=endpoint.generator(), tools=[lookup]).run(messages=[ChatMessage.from_user("Find the secret plan")])
    assert h.by_name(rec.spans(), "execute_tool lookup")
    for span in rec.spans():
        for key, value in span.attributes.items():
            assert "secret" not in str(value), (span.name, key)


def test_a_pipeline_inside_track_rolls_up_into_the_applications_unit(rec, endpoint, h):
    with track("answer-question") as unit:
        _run(_pipeline(endpoint), "units")
        _run(_pipeline(endpoint), "more units")
    spans = rec.spans()
    (outer,) = h.by_name(spans, "answer-question")
    pipelines = h.by_name(spans, "pipeline")
    assert [pipeline.parent.span_id for pipeline in pipelines] == [outer.context.span_id] * 2
    assert outer.attributes["genops.unit.calls"] == 2
    assert unit.cost == pytest.approx(2 * h.cost(h.TEXT_USAGE), rel=1e-9)
    assert outer.attributes["genops.cost.total"] == pytest.approx(sum(p.attributes["genops.cost.total"] for p in pipelines), rel=1e-12)


def test_the_applications_current_span_is_the_parent_of_a_pipeline_run(rec, endpoint, h):
    with rec.tracer_provider.get_tracer("app").start_as_current_span("handle-request") as request:
        _run(_pipeline(endpoint))
    (pipeline,) = h.by_name(rec.spans(), "pipeline")
    assert pipeline.parent.span_id == request.get_span_context().span_id


def test_pipeline_metadata_names_the_run_and_attributes_only_through_trusted_keys(instrumented, endpoint, h):
    metadata = {"name": "qa", "genops.customer_id": "acme", "genops.team": "not-trusted"}
    with capture(config.load({"GENOPS_BAGGAGE_KEYS": "customer_id"})) as recorded:
        _run(_pipeline(endpoint, metadata))
        spans = recorded.spans()
        (client,) = _client_spans(spans)
        (pipeline,) = h.by_name(spans, "qa")
        for span in (client, pipeline):
            assert span.attributes["genops.customer_id"] == "acme"
            assert "genops.team" not in span.attributes
        assert [dims.get("genops.customer_id") for dims, _ in recorded.metrics()["genops.cost"]] == ["acme"]
    with capture(config.load({})) as recorded:  # nothing trusted: metadata attributes nothing
        _run(_pipeline(endpoint, metadata))
        assert all("genops.customer_id" not in span.attributes for span in recorded.spans())


class _AppTracer(tracing.Tracer):
    """A tracer of the application's own (as Langfuse's or an OpenTelemetry tracer would be)."""

    def __init__(self):
        self.operations = []

    @contextlib.contextmanager
    def trace(self, operation_name, tags=None, parent_span=None):
        self.operations.append(operation_name)
        yield _AppSpan()

    def current_span(self):
        return None


class _AppSpan(tracing.Span):
    def set_tag(self, key, value):
        pass


def test_a_tracer_the_application_enabled_is_never_replaced(instrumented, endpoint, h):
    app_tracer = _AppTracer()
    HaystackInstrumentor().uninstrument()
    tracing.enable_tracing(app_tracer)
    try:
        HaystackInstrumentor().instrument()  # haystack is imported: the plugin's hook runs now
        assert tracing.tracer.actual_tracer is app_tracer
        with capture(config.load({})) as recorded:
            _run(_pipeline(endpoint))
            spans = recorded.spans()
        assert app_tracer.operations == ["haystack.pipeline.run", "haystack.component.run", "haystack.component.run"]
        assert [span.name for span in spans] == ["chat gpt-4o-mini"]  # the provider plugin still records the call
        HaystackInstrumentor().uninstrument()
        assert tracing.tracer.actual_tracer is app_tracer  # not GenOps' to disable either
    finally:
        tracing.disable_tracing()
        HaystackInstrumentor().instrument()
    assert type(tracing.tracer.actual_tracer).__name__ == "GenOpsTracer"


def test_uninstrumented_runs_record_no_units(instrumented, endpoint, h):
    HaystackInstrumentor().uninstrument()
    assert not tracing.is_tracing_enabled()
    with capture(config.load({})) as recorded:
        _run(_pipeline(endpoint))
        spans = recorded.spans()
    assert [span.name for span in spans] == ["chat gpt-4o-mini"]
    HaystackInstrumentor().instrument()
    assert tracing.is_tracing_enabled()


def test_importing_the_plugin_imports_no_haystack():
    code = "import sys, genops_instrumentation_haystack; print(sorted(m for m in sys.modules if m.startswith('haystack')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
