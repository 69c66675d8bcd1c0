"""An inference span of a layer GenOps does not know (the application's own, a framework's without
metrics) around an SDK call GenOps records: GenOps enriches that span (one span, not two) and,
since nothing says that layer records gen_ai.client.* metrics, records the token and duration
metrics itself, once. A known instrumentation's span (test_contrib_openai_v2) records its own.
"""

from __future__ import annotations

from typing import Any

import pytest


def _app_span(telemetry: Any, scope: str) -> Any:
    from opentelemetry.trace import SpanKind

    tracer = telemetry.tracer_provider.get_tracer(scope)
    return tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"})


def test_an_unknown_layers_client_span_is_enriched_and_genops_counts_the_tokens_once(genops_openai: None, telemetry: Any, h: Any) -> None:
    client = telemetry.endpoint.client()
    with _app_span(telemetry, "acme.assistant"):
        client.chat.completions.create(model=h.MODEL, messages=[{"role": "user", "content": "hello"}])
    (span,) = telemetry.genai_spans()
    assert span.instrumentation_scope.name == "acme.assistant"  # the application's span, enriched
    assert span.attributes["genops.cost.total"] == pytest.approx(h.COST)
    assert span.attributes["genops.team"] == "search"
    assert telemetry.token_sums() == {"genops": sorted(h.USAGE)}
    durations = [point for scope, _, point in telemetry.points("gen_ai.client.operation.duration") if scope.startswith("genops")]
    assert [point.count for point in durations] == [1]
    assert telemetry.cost_total() == pytest.approx(h.COST)


def test_a_failed_call_in_an_unknown_layers_span_is_counted_by_genops(genops_openai: None, telemetry: Any, h: Any) -> None:
    import httpx
    import openai

    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}}))))
    with pytest.raises(openai.InternalServerError), _app_span(telemetry, "acme.assistant"):
        client.chat.completions.create(model=h.MODEL, messages=[{"role": "user", "content": "hello"}])
    (span,) = telemetry.genai_spans()
    assert span.instrumentation_scope.name == "acme.assistant"
    durations = [(attributes, point) for scope, attributes, point in telemetry.points("gen_ai.client.operation.duration") if scope.startswith("genops")]
    assert [(attributes.get("error.type"), point.count) for attributes, point in durations] == [("openai.InternalServerError", 1)]


def test_a_known_instrumentations_client_span_keeps_its_own_metrics(genops_openai: None, telemetry: Any, h: Any) -> None:
    """pydantic-ai's scope records gen_ai.client.token.usage itself: GenOps adds only the cost."""
    client = telemetry.endpoint.client()
    with _app_span(telemetry, "pydantic-ai"):
        client.chat.completions.create(model=h.MODEL, messages=[{"role": "user", "content": "hello"}])
    (span,) = telemetry.genai_spans()
    assert span.instrumentation_scope.name == "pydantic-ai"
    assert "genops" not in telemetry.token_sums()
    assert telemetry.cost_total() == pytest.approx(h.COST)
