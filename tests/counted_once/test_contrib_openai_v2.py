"""GenOps inside the official OpenAI instrumentation (opentelemetry-instrumentation-openai-v2).

The contrib instrumentation starts its inference span (current, through opentelemetry-util-genai)
around the SDK call GenOps records: GenOps finds it and enriches it (cost, policy, attribution)
instead of a span of its own, and records only what the contrib layer does not (genops.cost):
one CLIENT span with usage, tokens counted once, cost counted once. A refused call is that span's
error, with GenOps' decision on it; nothing reaches the endpoint.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")


@pytest.fixture
def contrib(genops_openai: None, telemetry: Any) -> Iterator[None]:
    """The contrib instrumentation wraps the SDK after GenOps' plugin did: it is the outer layer,
    as under `opentelemetry-instrument`."""
    from openai.resources import embeddings
    from openai.resources.chat.completions import completions

    classes = [completions.Completions, completions.AsyncCompletions, embeddings.Embeddings, embeddings.AsyncEmbeddings]
    saved = [(cls, dict(cls.__dict__)) for cls in classes]
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield
    instrumentor.uninstrument()
    # OpenTelemetry's unwrap puts back the *bound* wrapper it finds under its own, so GenOps' plugin
    # would not recognise its wrapper to take it off: put the classes back as they were.
    for cls, attributes in saved:
        for name, value in attributes.items():
            if cls.__dict__.get(name) is not value and callable(value):
                setattr(cls, name, value)


def _their_scope(span: Any) -> bool:
    return not span.instrumentation_scope.name.startswith("genops")


def test_one_client_span_with_usage_enriched_with_genops_attributes(contrib: None, telemetry: Any, h: Any) -> None:
    from opentelemetry.trace import SpanKind

    client = telemetry.endpoint.client()
    client.chat.completions.create(model=h.MODEL, messages=[{"role": "user", "content": "hello"}])
    (span,) = telemetry.genai_spans()
    assert _their_scope(span) and span.kind is SpanKind.CLIENT
    attributes = span.attributes
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == h.USAGE
    assert attributes["genops.cost.total"] == pytest.approx(h.COST)
    assert attributes["genops.policy.result"] == "ALLOWED"
    assert attributes["genops.team"] == "search"
    assert {event.name for event in span.events} >= {"genops.budget.reservation", "genops.budget.reconciliation"}
    # Tokens once (the contrib layer's histogram), cost once (GenOps', attributed).
    assert telemetry.token_sums() == {next(iter(telemetry.token_sums())): sorted(h.USAGE)}
    assert "genops" not in telemetry.token_sums()
    assert telemetry.cost_total() == pytest.approx(h.COST)
    (cost_point,) = telemetry.points("genops.cost")
    assert cost_point[1]["genops.team"] == "search"
    assert not [point for scope, _, point in telemetry.points("gen_ai.client.operation.duration") if scope.startswith("genops")]


def test_a_stream_is_one_span_counted_once(contrib: None, telemetry: Any, h: Any) -> None:
    client = telemetry.endpoint.client()
    stream = client.chat.completions.create(model=h.MODEL, messages=[{"role": "user", "content": "hello"}], stream=True, stream_options={"include_usage": True})
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Once."
    (span,) = telemetry.genai_spans()
    assert _their_scope(span)
    assert span.attributes["genops.cost.total"] == pytest.approx(h.COST)
    assert "genops" not in telemetry.token_sums()
    assert telemetry.cost_total() == pytest.approx(h.COST)


def test_a_blocked_call_is_the_contrib_span_error_with_genops_decision(contrib: None, telemetry: Any, h: Any) -> None:
    import openai

    client = telemetry.endpoint.client()
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    assert telemetry.endpoint.requests == []
    (span,) = telemetry.genai_spans()
    assert _their_scope(span)
    assert span.attributes["genops.policy.result"] == "BLOCKED"
    assert span.attributes["genops.policy.reason_code"] == "POLICY_DENY_MODEL"
    assert span.status.status_code.name == "ERROR"
    assert type(raised.value).__name__ in span.attributes["error.type"]
    assert telemetry.token_sums() == {}
    assert telemetry.cost_total() == 0


def test_without_the_contrib_layer_genops_records_its_own_span(genops_openai: None, telemetry: Any, h: Any) -> None:
    client = telemetry.endpoint.client()
    client.chat.completions.create(model=h.MODEL, messages=[{"role": "user", "content": "hello"}])
    (span,) = telemetry.genai_spans()
    assert span.instrumentation_scope.name.startswith("genops")
    assert telemetry.token_sums() == {"genops": sorted(h.USAGE)}
