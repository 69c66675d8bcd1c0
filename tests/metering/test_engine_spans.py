"""The span the engine records for one call: name, kind, GenAI and GenOps attributes, errors, content."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import semconv
from genops_autoinstrument.config import Settings
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

ATTRIBUTION = {semconv.GENOPS_TEAM: "search", semconv.GENOPS_CUSTOMER_ID: "acme", semconv.GENOPS_ENVIRONMENT: "prod"}


def test_successful_call_span(make_request: Callable, run_call: Callable) -> None:
    request = make_request(
        parameters={semconv.GEN_AI_REQUEST_TEMPERATURE: 0.2, semconv.GEN_AI_REQUEST_MAX_TOKENS: 256, semconv.GEN_AI_REQUEST_TOP_P: None},
        streaming=True,
    )
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=400, reasoning_tokens=50)
    with capture(Settings(attribution=ATTRIBUTION)) as recorded:
        run_call(request, usage=usage, response_model="gpt-4o-2024-08-06", response_id="chatcmpl-123", finish_reasons=["stop"])
    [span] = recorded.spans()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope.name == semconv.INSTRUMENTATION_SCOPE
    # 600 plain input × $2.50 + 400 cached × $1.25 + 200 output × $10 per million.
    cost = (600 * 2.5 + 400 * 1.25 + 200 * 10) / 1_000_000
    assert dict(span.attributes) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
        semconv.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        semconv.GEN_AI_REQUEST_MAX_TOKENS: 256,
        semconv.GEN_AI_REQUEST_STREAM: True,
        semconv.SERVER_ADDRESS: "api.openai.com",
        semconv.SERVER_PORT: 443,
        semconv.GENOPS_SPEC_VERSION_ATTR: semconv.GENOPS_SPEC_VERSION,
        semconv.GENOPS_TEAM: "search",
        semconv.GENOPS_CUSTOMER_ID: "acme",
        semconv.GENOPS_ENVIRONMENT: "prod",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-123",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 200,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 400,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 50,
        semconv.GENOPS_COST_TOTAL: pytest.approx(cost, abs=1e-15),
        semconv.GENOPS_COST_CURRENCY: "USD",
        semconv.GENOPS_COST_STATUS: semconv.COST_STATUS_PRICED,
        semconv.GENOPS_COST_SOURCE: "genai-prices",
        semconv.GENOPS_COST_PROVIDER: "openai",
        semconv.GENOPS_COST_MODEL: "gpt-4o-2024-08-06",
    }
    assert span.attributes[semconv.GENOPS_COST_TOTAL] == price_call("openai", "gpt-4o-2024-08-06", usage).total
    assert span.events == ()  # no governor configured: no policy events


def test_cost_uses_the_response_model(make_request: Callable, run_call: Callable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    with capture(Settings()) as recorded:
        run_call(make_request(request_model="gpt-4o"), usage=usage, response_model="gpt-4o-mini-2024-07-18")
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_COST_MODEL] == "gpt-4o-mini-2024-07-18"
    assert span.attributes[semconv.GENOPS_COST_TOTAL] == price_call("openai", "gpt-4o-mini", usage).total
    assert span.attributes[semconv.GENOPS_COST_TOTAL] != price_call("openai", "gpt-4o", usage).total


def test_cache_write_tokens_attribute(make_request: Callable, run_call: Callable) -> None:
    request = make_request(provider="anthropic", request_model="claude-sonnet-4-5", server_address="api.anthropic.com", api_base_url=None)
    usage = Usage(input_tokens=5000, output_tokens=100, cache_read_tokens=1000, cache_write_tokens=2000)
    with capture(Settings()) as recorded:
        run_call(request, usage=usage, response_model="claude-sonnet-4-5-20250929")
    [span] = recorded.spans()
    assert span.name == "chat claude-sonnet-4-5"
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 2000
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    # 2000 plain × $3 + 1000 read × $0.30 + 2000 write × $3.75 + 100 out × $15 per million.
    assert span.attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(0.006 + 0.0003 + 0.0075 + 0.0015, abs=1e-15)


def test_span_name_without_a_model_is_the_operation(make_request: Callable, run_call: Callable) -> None:
    with capture(Settings()) as recorded:
        run_call(make_request(request_model=None, operation="embeddings"), usage=Usage(input_tokens=3))
    [span] = recorded.spans()
    assert span.name == "embeddings"
    assert semconv.GEN_AI_REQUEST_MODEL not in span.attributes
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
    assert span.attributes[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_MODEL


def test_the_call_span_is_never_the_current_span_inside_the_call(make_request: Callable) -> None:
    """The SDK runs in the application's context as it does bare (no trace header, no new parent
    for its spans); the call is recorded in GenOps' own context, under the application's span."""
    from genops_autoinstrument.engine.call import in_recorded_call

    with capture(Settings()) as recorded:
        application = recorded.tracer_provider.get_tracer("application")
        with application.start_as_current_span("handle request") as outer:
            call = begin_call(make_request())
            with call:
                inner = trace.get_current_span()
                recording = in_recorded_call()
            call.finish(usage=Usage(input_tokens=1, output_tokens=1))
            assert not in_recorded_call()
    spans = {span.name: span for span in recorded.spans()}
    assert inner is outer and recording
    assert spans["chat gpt-4o"].parent.span_id == outer.get_span_context().span_id
    with capture(Settings()):
        call = begin_call(make_request())
        with call:
            assert trace.get_current_span() is trace.INVALID_SPAN  # as bare: nothing current
        call.finish(usage=Usage(input_tokens=1, output_tokens=1))


class ProviderTimeout(Exception):
    pass


def test_error_path(make_request: Callable) -> None:
    with capture(Settings(attribution=ATTRIBUTION)) as recorded:
        call = begin_call(make_request())
        with pytest.raises(ProviderTimeout, match="upstream timed out"):
            with call:
                raise ProviderTimeout("upstream timed out")
        call.finish(usage=Usage(input_tokens=10, output_tokens=10))  # a late finish is ignored
    [span] = recorded.spans()
    error_type = f"{__name__}.ProviderTimeout"
    assert span.attributes[semconv.ERROR_TYPE] == error_type
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "upstream timed out"
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == error_type
    for absent in (semconv.GENOPS_COST_TOTAL, semconv.GENOPS_COST_STATUS, semconv.GEN_AI_USAGE_INPUT_TOKENS):
        assert absent not in span.attributes
    assert span.attributes[semconv.GENOPS_TEAM] == "search"


def test_builtin_error_type_is_the_bare_class_name(make_request: Callable) -> None:
    with capture(Settings()) as recorded:
        call = begin_call(make_request())
        call.fail(TimeoutError("read timeout"))
    [span] = recorded.spans()
    assert span.attributes[semconv.ERROR_TYPE] == "TimeoutError"
    assert span.status.status_code is StatusCode.ERROR


def test_baggage_overrides_environment_attribution(make_request: Callable, run_call: Callable) -> None:
    ctx = baggage.set_baggage(semconv.GENOPS_TEAM, "ads")
    ctx = baggage.set_baggage(semconv.GENOPS_FEATURE, "summarize", context=ctx)
    ctx = baggage.set_baggage("genops.password", "hunter2", context=ctx)  # not an attribution key
    ctx = baggage.set_baggage("user.id", "u-42", context=ctx)
    ctx = baggage.set_baggage(semconv.GENOPS_PROJECT, "", context=ctx)  # empty values do not override
    trusted = frozenset(semconv.ATTRIBUTION_KEYS)  # GENOPS_BAGGAGE_KEYS listing every attribution key
    with capture(Settings(attribution={**ATTRIBUTION, semconv.GENOPS_PROJECT: "atlas"}, baggage_keys=trusted)) as recorded:
        token = context.attach(ctx)
        try:
            run_call(make_request(), usage=Usage(input_tokens=1, output_tokens=1))
        finally:
            context.detach(token)
        run_call(make_request(), usage=Usage(input_tokens=1, output_tokens=1))  # baggage gone again
    with_baggage, without = recorded.spans()
    genops = {k: v for k, v in with_baggage.attributes.items() if k in semconv.ATTRIBUTION_KEYS}
    assert genops == {
        semconv.GENOPS_TEAM: "ads",
        semconv.GENOPS_FEATURE: "summarize",
        semconv.GENOPS_CUSTOMER_ID: "acme",
        semconv.GENOPS_ENVIRONMENT: "prod",
        semconv.GENOPS_PROJECT: "atlas",
    }
    assert "genops.password" not in with_baggage.attributes and "user.id" not in with_baggage.attributes
    assert without.attributes[semconv.GENOPS_TEAM] == "search"
    assert semconv.GENOPS_FEATURE not in without.attributes


@pytest.mark.parametrize("opted_in", [False, True])
def test_content_recorded_only_on_opt_in(make_request: Callable, opted_in: bool) -> None:
    asked: list[str] = []
    messages_in = [{"role": "user", "parts": [{"type": "text", "content": "Größe?"}]}]
    messages_out = [{"role": "assistant", "parts": [{"type": "text", "content": "42"}], "finish_reason": "stop"}]

    def inputs() -> Any:
        asked.append("input")
        return messages_in

    def outputs() -> Any:
        asked.append("output")
        return messages_out

    with capture(Settings(capture_content=opted_in)) as recorded:
        call = begin_call(make_request(input_messages=inputs))
        with call:
            pass
        call.finish(usage=Usage(input_tokens=5, output_tokens=1), output_messages=outputs)
    [span] = recorded.spans()
    if opted_in:
        assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == messages_in
        assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == messages_out
        assert "Größe" in span.attributes[semconv.GEN_AI_INPUT_MESSAGES]  # not ASCII-escaped
        assert asked == ["input", "output"]
    else:
        assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes
        assert semconv.GEN_AI_OUTPUT_MESSAGES not in span.attributes
        assert asked == []  # never even serialised


@pytest.mark.parametrize(
    ("model", "usage", "reason"),
    [
        ("not-a-real-model", Usage(input_tokens=10, output_tokens=10), semconv.UNPRICED_UNKNOWN_MODEL),
        ("gpt-4o", None, semconv.UNPRICED_UNKNOWN_USAGE),
        ("gpt-4o", Usage(output_tokens=10), semconv.UNPRICED_UNKNOWN_USAGE),
    ],
)
def test_unpriced_call(make_request: Callable, run_call: Callable, model: str, usage: Usage | None, reason: str) -> None:
    with capture(Settings()) as recorded:
        run_call(make_request(request_model=model), usage=usage, response_model=model)
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
    assert span.attributes[semconv.GENOPS_COST_UNPRICED_REASON] == reason
    assert semconv.GENOPS_COST_TOTAL not in span.attributes
    assert semconv.GENOPS_COST_CURRENCY not in span.attributes
    assert span.attributes[semconv.GENOPS_COST_MODEL] == model
    assert span.status.status_code is StatusCode.UNSET


def test_pricing_file_source_on_the_span(make_request: Callable, run_call: Callable, pricing_file: Callable) -> None:
    path = pricing_file('[[price]]\nprovider = "openai"\nmodel = "gpt-4o*"\ninput_per_mtok = 2\noutput_per_mtok = 8\n')
    with capture(Settings(pricing_file=path)) as recorded:
        run_call(make_request(), usage=Usage(input_tokens=1000, output_tokens=500), response_model="gpt-4o-2024-08-06")
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_COST_SOURCE] == "pricing-file"
    assert span.attributes[semconv.GENOPS_COST_TOTAL] == 0.006  # 1000 × $2 + 500 × $8 per million
