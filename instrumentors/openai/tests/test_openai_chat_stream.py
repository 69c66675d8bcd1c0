"""Streamed chat completions: the hidden usage chunk, app-requested usage, early break, gc, helpers."""

from __future__ import annotations

import gc
import json

import openai
import pytest
from openai import Stream
from openai.lib.streaming.chat import ChatCompletionStream
from opentelemetry.trace import StatusCode

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api.testing import capture

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _uninstrumented_chunks(h, **kwargs):
    server = h.FakeOpenAI()
    server.chat_stream()
    return [chunk.to_dict() for chunk in server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs)]


def test_usage_is_requested_and_its_chunk_hidden(rec, server, h):
    expected = _uninstrumented_chunks(h)  # the fixture instrumented already: recorded, but same chunks
    rec.clear()
    server.chat_stream()
    stream = server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, Stream)
    seen = [chunk.to_dict() for chunk in stream]
    assert seen == expected
    assert all(chunk["choices"] for chunk in seen)
    assert server.requests[0]["json"]["stream_options"] == {"include_usage": True}
    span = h.one_span(rec)
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-AxFtB6Z3YhS2dmkqBm6bzXeJwlQ9p"
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


def test_chunks_equal_uninstrumented_run(server, h, settings):
    server.chat_stream()
    plain = [c.to_dict() for c in server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)]
    from genops_instrumentation_openai import OpenAIInstrumentor

    instance = OpenAIInstrumentor()
    instance.instrument()
    try:
        with capture(settings) as recorded:
            instrumented = [c.to_dict() for c in server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)]
    finally:
        instance.uninstrument()
    assert instrumented == plain
    assert "stream_options" not in server.requests[0]["json"]
    assert server.requests[1]["json"]["stream_options"] == {"include_usage": True}
    assert h.one_span(recorded).attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_app_requested_usage_chunk_is_not_hidden(rec, server, h):
    server.chat_stream()
    chunks = list(server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 21
    assert server.requests[0]["json"]["stream_options"] == {"include_usage": True}
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21 and attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_env_switch_turns_usage_request_off(rec, server, h, monkeypatch):
    monkeypatch.setenv("GENOPS_OPENAI_STREAM_USAGE", "false")
    server.chat_stream()
    chunks = list(server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(chunks) == 6
    assert "stream_options" not in server.requests[0]["json"]
    attrs = h.one_span(rec).attributes
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
    assert attrs[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_USAGE


def test_other_stream_options_are_kept(rec, server, h):
    server.chat_stream()
    list(server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_obfuscation": False}))
    assert server.requests[0]["json"]["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_stream_content_capture(instrumentor, server, h):
    server.chat_stream()
    with capture(config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "1"})) as recorded:
        list(server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    attrs = h.one_span(recorded).attributes
    assert json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES]) == [{"role": "assistant", "parts": [{"type": "text", "content": "Hello there!"}], "finish_reason": "stop"}]


def test_streamed_tool_call(rec, server, h):
    base = h.chat_chunks(())[0]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    server.chat_stream(chunks=chunks)
    seen = list(server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, tools=[{"type": "function", "function": {"name": "get_weather"}}]))
    assert len(seen) == 4
    attrs = h.one_span(rec).attributes
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_context_manager_early_break_ends_once(rec, server, h):
    server.chat_stream()
    with server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        for chunk in stream:
            break
        assert rec.spans() == []
    span = h.one_span(rec)
    assert span.status.status_code != StatusCode.ERROR
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-AxFtB6Z3YhS2dmkqBm6bzXeJwlQ9p"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # the usage chunk never came
    stream.close()
    assert len(rec.spans()) == 1


def test_abandoned_stream_ends_on_gc(rec, server, h):
    server.chat_stream()
    stream = server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert len(rec.spans()) == 1


def test_error_event_mid_stream(rec, server, h):
    chunks = h.chat_chunks()[:2]

    def respond(request):
        import httpx

        body = h.sse(chunks, done=False) + b'data: {"error": {"message": "overloaded", "type": "server_error", "code": null}}\n\n'
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    server.routes["/v1/chat/completions"] = respond
    stream = server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)
    span = h.one_span(rec)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "openai.APIError"


def _helper_events(client):
    resource = client.chat.completions if hasattr(client.chat.completions, "stream") else client.beta.chat.completions
    with resource.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        events = [(event.type, getattr(event, "delta", None)) for event in stream]
        final = stream.get_final_completion()
    return events, final


def test_stream_helper(server, h, settings):
    server.chat_stream()
    plain_events, plain_final = _helper_events(server.client())
    from genops_instrumentation_openai import OpenAIInstrumentor

    instance = OpenAIInstrumentor()
    instance.instrument()
    try:
        with capture(settings) as recorded:
            events, final = _helper_events(server.client())
    finally:
        instance.uninstrument()
    assert events == plain_events
    assert final.model_dump() == plain_final.model_dump()
    assert final.usage is None
    assert server.requests[1]["json"]["stream_options"] == {"include_usage": True}
    assert server.requests[1]["headers"]["x-stainless-helper-method"].endswith("chat.completions.stream")  # beta. before 1.92
    attrs = h.one_span(recorded).attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_stream_helper_early_exit_ends_at_block_exit(rec, server, h):
    server.chat_stream()
    with h.chat_helpers(server.client()).stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        assert isinstance(stream, ChatCompletionStream)
        for _event in stream:
            break
        assert rec.spans() == []
    assert len(rec.spans()) == 1
