"""Responses API: create, stream (create(stream=True) and the stream() helper), parse, async."""

from __future__ import annotations

import asyncio
import json

import pydantic
import pytest
from openai import AsyncStream, Stream
pytest.importorskip("openai.types.responses", reason="the Responses API arrived in openai 1.66")
from openai.types.responses import ParsedResponse, Response  # noqa: E402

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api.testing import capture

RESP_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
MSG_ID = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
USAGE = {"input_tokens": 2036, "input_tokens_details": {"cached_tokens": 1920}, "output_tokens": 387, "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 2423}


def response_body(text: str = "In a quiet grove, a unicorn slept.", status: str = "completed", usage=USAGE, **extra):
    body = {
        "id": RESP_ID,
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "o4-mini-2025-04-16",
        "output": [
            {"id": "rs_1", "type": "reasoning", "summary": []},
            {"type": "message", "id": MSG_ID, "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]},
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }
    body.update(extra)
    return body


def stream_events(text_parts=("In a quiet", " grove."), final_type="response.completed"):
    text = "".join(text_parts)
    start = response_body(status="in_progress", usage=None, output=[])
    item = {"type": "message", "id": MSG_ID, "status": "in_progress", "role": "assistant", "content": []}
    events = [
        {"type": "response.created", "sequence_number": 0, "response": start},
        {"type": "response.in_progress", "sequence_number": 1, "response": start},
        {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": item},
        {"type": "response.content_part.added", "sequence_number": 3, "item_id": MSG_ID, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}},
    ]
    for part in text_parts:
        events.append({"type": "response.output_text.delta", "sequence_number": len(events), "item_id": MSG_ID, "output_index": 0, "content_index": 0, "delta": part, "logprobs": []})
    done_part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    events += [
        {"type": "response.output_text.done", "sequence_number": len(events), "item_id": MSG_ID, "output_index": 0, "content_index": 0, "text": text, "logprobs": []},
        {"type": "response.content_part.done", "sequence_number": len(events) + 1, "item_id": MSG_ID, "output_index": 0, "content_index": 0, "part": done_part},
        {"type": "response.output_item.done", "sequence_number": len(events) + 2, "output_index": 0, "item": {**item, "status": "completed", "content": [done_part]}},
    ]
    final = response_body(text, output=[{**item, "status": "completed", "content": [done_part]}])
    if final_type == "response.incomplete":
        final.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    events.append({"type": final_type, "sequence_number": len(events), "response": final})
    return events


def _assert_usage(attrs):
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2036
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 387
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1920
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 256
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "o4-mini-2025-04-16"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == RESP_ID


def test_create(rec, server, h):
    server.json("/v1/responses", response_body())
    response = server.client().responses.create(model="o4-mini", input="Tell me a story", instructions="Be brief", max_output_tokens=500, temperature=1.0, top_p=0.5)
    assert type(response) is Response
    assert response.output_text == "In a quiet grove, a unicorn slept."
    span = h.one_span(rec)
    attrs = span.attributes
    assert span.name == "chat o4-mini"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 500
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.5
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("completed",)
    _assert_usage(attrs)


def test_create_content_capture(instrumentor, server, h):
    server.json("/v1/responses", response_body())
    with capture(config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})) as recorded:
        server.client().responses.create(model="o4-mini", instructions="Be brief", input=[{"role": "user", "content": [{"type": "input_text", "text": "Tell me a story"}]}])
    attrs = h.one_span(recorded).attributes
    assert json.loads(attrs[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Tell me a story"}]},
    ]
    assert json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "In a quiet grove, a unicorn slept."}], "finish_reason": "completed"}
    ]


def test_create_stream(rec, server, h):
    server.events("/v1/responses", stream_events())
    stream = server.client().responses.create(model="o4-mini", input="Tell me a story", stream=True)
    assert isinstance(stream, Stream)
    types = [event.type for event in stream]
    assert types[0] == "response.created" and types[-1] == "response.completed" and len(types) == 10
    assert "stream_options" not in server.requests[0]["json"]
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    _assert_usage(attrs)


def test_incomplete_stream_finish_reason(rec, server, h):
    server.events("/v1/responses", stream_events(final_type="response.incomplete"))
    list(server.client().responses.create(model="o4-mini", input="Tell me a story", stream=True, max_output_tokens=16))
    attrs = h.one_span(rec).attributes
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("max_output_tokens",)


def test_stream_helper(rec, server, h):
    server.events("/v1/responses", stream_events())
    with server.client().responses.stream(model="o4-mini", input="Tell me a story") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["In a quiet", " grove."]
    assert final.output_text == "In a quiet grove."
    _assert_usage(h.one_span(rec).attributes)


def test_stream_helper_early_exit(rec, server, h):
    server.events("/v1/responses", stream_events())
    with server.client().responses.stream(model="o4-mini", input="Tell me a story") as stream:
        for _event in stream:
            break
        assert rec.spans() == []
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == RESP_ID
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


class Story(pydantic.BaseModel):
    title: str


def test_parse(rec, server, h):
    server.json("/v1/responses", response_body('{"title":"The Unicorn"}'))
    parsed = server.client().responses.parse(model="o4-mini", input="Title a story", text_format=Story)
    assert isinstance(parsed, ParsedResponse)
    assert parsed.output_parsed == Story(title="The Unicorn")
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_OUTPUT_TYPE] == "json"
    _assert_usage(attrs)


def test_async_create_and_stream(rec, server, h):
    async def main():
        client = server.async_client()
        server.json("/v1/responses", response_body())
        first = await client.responses.create(model="o4-mini", input="Tell me a story")
        server.events("/v1/responses", stream_events())
        stream = await client.responses.create(model="o4-mini", input="Tell me a story", stream=True)
        assert isinstance(stream, AsyncStream)
        types = [event.type async for event in stream]
        async with client.responses.stream(model="o4-mini", input="Tell me a story") as helper:
            final = await helper.get_final_response()
        return first, types, final

    first, types, final = asyncio.run(main())
    assert isinstance(first, Response) and len(types) == 10 and final.output_text == "In a quiet grove."
    spans = rec.spans()
    assert len(spans) == 3
    for span in spans:
        _assert_usage(span.attributes)
