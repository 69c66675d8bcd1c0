"""anthropic 2.x emits its own OTel span per API call; GenOps replaces it for the calls it records.

The SDK's span goes to the tracer provider given in ``open_telemetry={"tracer_provider": …}`` (or the
global one); here it shares the capture's exporter so that every span either side makes is seen.
"""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

pytest.importorskip("anthropic._tracing", reason="the SDK has its own OTel spans from anthropic 1.14")

MODEL = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Say hello"}]


def _sdk_tracing(recorded):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded.span_exporter))
    return {"tracer_provider": provider}


def _genai_spans(recorded):
    return [span for span in recorded.spans() if semconv.GEN_AI_OPERATION_NAME in span.attributes]


def test_baseline_sdk_tracing_is_on_without_genops(instrumented, make_client, json_server, settings):
    """Proves the premise: unpatched, the SDK emits `anthropic.messages.create` with token usage."""
    instrumented.uninstrument()
    try:
        server = json_server(input_tokens=10, output_tokens=3, cache_read=4, cache_write=0)
        with capture(settings) as recorded:
            client = make_client(server, open_telemetry=_sdk_tracing(recorded))
            client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
        (span,) = recorded.spans()
        assert span.name == "anthropic.messages.create"
        assert span.attributes["gen_ai.usage.input_tokens"] == 14
        assert "traceparent" in server.requests[0].headers
    finally:
        instrumented.instrument()


def test_sdk_tracing_on_one_span_and_context_propagated(make_client, json_server, settings):
    server = json_server(input_tokens=10, output_tokens=3, cache_read=4, cache_write=0)
    with capture(settings) as recorded:
        client = make_client(server, open_telemetry=_sdk_tracing(recorded))
        client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    spans = recorded.spans()
    assert [span.name for span in spans] == [f"chat {MODEL}"]  # no anthropic.messages.create
    (span,) = spans
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 14  # counted once, by GenOps
    context = span.get_span_context()
    traceparent = server.requests[0].headers["traceparent"]
    assert traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    # the metric is recorded once too
    points = recorded.metrics()[semconv.METRIC_TOKEN_USAGE]
    assert sorted(point.sum for _, point in points) == [3, 14]


@pytest.mark.parametrize("option", [False, {"traces": False}], ids=["False", "traces-off"])
def test_sdk_tracing_off_one_span(option, make_client, json_server, settings):
    server = json_server(input_tokens=10, output_tokens=3)
    with capture(settings) as recorded:
        make_client(server, open_telemetry=option).messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    assert [span.name for span in recorded.spans()] == [f"chat {MODEL}"]
    assert "traceparent" not in server.requests[0].headers  # as without GenOps


def test_sdk_tracing_off_by_environment(monkeypatch, make_client, json_server, settings):
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    server = json_server()
    with capture(settings) as recorded:
        make_client(server).messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    assert len(_genai_spans(recorded)) == 1


def test_streams_with_sdk_tracing_on(make_client, sse_server, settings):
    server = sse_server(input_tokens=20, output_tokens=5)
    with capture(settings) as recorded:
        client = make_client(server, open_telemetry=_sdk_tracing(recorded))
        list(client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT, stream=True))
        with client.messages.stream(model=MODEL, max_tokens=8, messages=PROMPT) as stream:
            stream.get_final_message()
        with client.beta.messages.stream(model=MODEL, max_tokens=8, messages=PROMPT) as stream:
            stream.get_final_message()
    spans = recorded.spans()
    assert [span.name for span in spans] == [f"chat {MODEL}"] * 3
    assert [span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] for span in spans] == [5, 5, 5]


def test_async_with_sdk_tracing_on(make_client, sse_server, settings):
    server = sse_server(input_tokens=20, output_tokens=5)

    async def main(client):
        async with client.messages.stream(model=MODEL, max_tokens=8, messages=PROMPT) as stream:
            await stream.get_final_message()

    with capture(settings) as recorded:
        client = make_client(server, anthropic.AsyncAnthropic, open_telemetry=_sdk_tracing(recorded))
        asyncio.run(main(client))
    assert [span.name for span in recorded.spans()] == [f"chat {MODEL}"]


def test_other_sdk_calls_keep_their_sdk_span(make_client, json_server, settings):
    with capture(settings) as recorded:
        client = make_client(json_server(), open_telemetry=_sdk_tracing(recorded))
        client.messages.count_tokens(model=MODEL, messages=PROMPT)
    assert [span.name for span in recorded.spans()] == ["anthropic.messages.count_tokens"]


def test_outer_application_span_is_the_parent(make_client, json_server, settings):
    """Another tracer is present (the app's own span): GenOps' span nests under it, still one GenAI span."""
    server = json_server()
    with capture(settings) as recorded:
        app_provider = TracerProvider()
        app_provider.add_span_processor(SimpleSpanProcessor(recorded.span_exporter))
        client = make_client(server, open_telemetry={"tracer_provider": app_provider})
        with app_provider.get_tracer("app").start_as_current_span("handle request") as outer:
            client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    genai = _genai_spans(recorded)
    assert len(genai) == 1
    assert genai[0].parent.span_id == outer.get_span_context().span_id
    assert genai[0].context.trace_id == outer.get_span_context().trace_id
    # GenOps completes its span off the application's thread, with the call's end time: it may be
    # exported after its parent, but it ended first.
    assert [span.name for span in sorted(recorded.spans(), key=lambda span: span.end_time)] == [f"chat {MODEL}", "handle request"]


def test_failed_call_with_sdk_tracing_on(make_client, settings):
    import httpx2

    def handler(request):
        return httpx2.Response(529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    with capture(settings) as recorded:
        client = anthropic.Anthropic(api_key="k", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(handler)), open_telemetry=_sdk_tracing(recorded))
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    (span,) = recorded.spans()
    assert span.name == f"chat {MODEL}" and span.status.status_code.name == "ERROR"


def test_nested_in_another_genops_call_is_recorded_once(make_client, json_server, settings):
    """A framework plugin recording the call already (NULL_CALL here): neither GenOps nor the SDK adds a span."""
    from genops_autoinstrument.engine.call import CallRequest
    from genops_autoinstrument.engine.runtime import begin_call

    server = json_server(input_tokens=10, output_tokens=3)
    with capture(settings) as recorded:
        client = make_client(server, open_telemetry=_sdk_tracing(recorded))
        outer = begin_call(CallRequest(provider="anthropic", operation="chat", request_model=MODEL))
        with outer:
            client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
        outer.finish()
    (span,) = recorded.spans()
    assert span.name == f"chat {MODEL}"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # the outer recorder reports usage itself
    context = span.get_span_context()
    assert server.requests[0].headers["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
