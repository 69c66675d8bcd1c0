"""Embeddings, legacy completions, async chat, with_raw_response and with_streaming_response."""

from __future__ import annotations

import asyncio
import gc

from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse, AsyncAPIResponse
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from genops_autoinstrument import semconv

MESSAGES = [{"role": "user", "content": "Say hello"}]

EMBEDDING = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, 0.015797347]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}
COMPLETION = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
    "object": "text_completion",
    "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}


def test_embeddings(rec, server, h):
    server.json("/v1/embeddings", EMBEDDING)
    result = server.client().embeddings.create(model="text-embedding-3-small", input=["The food was delicious"], encoding_format="float")
    assert isinstance(result, CreateEmbeddingResponse) and result.data[0].embedding[0] == 0.0023064255
    span = h.one_span(rec)
    assert span.name == "embeddings text-embedding-3-small"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 8
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs
    assert tuple(attrs[semconv.GEN_AI_REQUEST_ENCODING_FORMATS]) == ("float",)
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "text-embedding-3-small"


def test_legacy_completion(rec, server, h):
    server.json("/v1/completions", COMPLETION)
    result = server.client().completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7, temperature=0)
    assert isinstance(result, Completion)
    span = h.one_span(rec)
    attrs = span.attributes
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "text_completion"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 7
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (5, 7)
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("length",)
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7"


def test_legacy_completion_stream_hides_usage_chunk(rec, server, h):
    base = {k: COMPLETION[k] for k in ("id", "object", "created", "model", "system_fingerprint")}
    chunks = [
        {**base, "choices": [{"text": "This", "index": 0, "logprobs": None, "finish_reason": None}]},
        {**base, "choices": [{"text": " is a test", "index": 0, "logprobs": None, "finish_reason": "stop"}]},
    ]
    server.chat_stream("/v1/completions", chunks=chunks, usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    seen = list(server.client().completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test", stream=True))
    assert [c.choices[0].text for c in seen] == ["This", " is a test"]
    assert all("usage" not in c.to_dict() for c in seen)
    assert server.requests[0]["json"]["stream_options"] == {"include_usage": True}
    attrs = h.one_span(rec).attributes
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (5, 4)
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


def test_async_chat_create_and_stream(rec, server, h):
    async def main():
        client = server.async_client()
        server.json("/v1/chat/completions", h.chat_completion())
        response = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        server.chat_stream()
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        assert isinstance(stream, AsyncStream)
        chunks = [chunk async for chunk in stream]
        async with h.chat_helpers(client).stream(model="gpt-4o-mini", messages=MESSAGES) as helper:
            final = await helper.get_final_completion()
        return response, chunks, final

    response, chunks, final = asyncio.run(main())
    assert isinstance(response, ChatCompletion)
    assert len(chunks) == 6 and all(c.choices for c in chunks)
    assert final.choices[0].message.content == "Hello there!"
    spans = rec.spans()
    assert len(spans) == 3
    assert spans[0].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert spans[1].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert spans[2].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_async_early_break_and_close(rec, server, h):
    server.chat_stream()

    async def main():
        stream = await server.async_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for _chunk in stream:
            break
        assert rec.spans() == []
        await stream.close()

    asyncio.run(main())
    assert len(rec.spans()) == 1


def test_with_raw_response(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    raw = server.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(raw) is LegacyAPIResponse
    assert raw.headers["x-request-id"] == "req_123"
    completion = raw.parse()
    assert type(completion) is ChatCompletion and completion.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


def test_with_raw_response_stream(rec, server, h):
    server.chat_stream()
    raw = server.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert type(raw) is LegacyAPIResponse
    assert "stream_options" not in server.requests[0]["json"]  # raw bytes stay exactly as the app asked
    stream = raw.parse()
    assert isinstance(stream, Stream) and raw.parse() is stream
    chunks = list(stream)
    assert len(chunks) == 6 and isinstance(chunks[0], ChatCompletionChunk)
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-AxFtB6Z3YhS2dmkqBm6bzXeJwlQ9p"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_with_raw_response_stream_app_usage(rec, server, h):
    server.chat_stream()
    raw = server.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(raw.parse())
    assert chunks[-1].usage.completion_tokens == 4
    assert h.one_span(rec).attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_with_streaming_response(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    with server.client().chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
        assert type(response) is APIResponse
        assert rec.spans() == []
        completion = response.parse()
        assert type(completion) is ChatCompletion
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 56


def test_with_streaming_response_unread_body(rec, server, h):
    import json

    import httpx

    body = json.dumps(h.chat_completion()).encode()  # an iterated body is not read until the app reads it
    server.routes["/v1/chat/completions"] = lambda request: httpx.Response(200, content=iter([body]), headers={"content-type": "application/json"})
    with server.client().chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
        assert response.status_code == 200
    span = h.one_span(rec)
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_with_streaming_response_stream(rec, server, h):
    server.chat_stream()
    with server.client().chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as response:
        stream = response.parse()
        assert isinstance(stream, Stream)
        chunks = list(stream)
    assert len(chunks) == 7
    assert h.one_span(rec).attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_with_streaming_response_stream_early_exit(rec, server, h):
    server.chat_stream()
    with server.client().chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as response:
        for _chunk in response.parse():
            break
        assert rec.spans() == []
    assert len(rec.spans()) == 1


def test_raw_stream_abandoned(rec, server, h):
    server.chat_stream()
    raw = server.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    del raw
    gc.collect()
    assert len(rec.spans()) == 1


def test_async_raw_variants(rec, server, h):
    async def main():
        client = server.async_client()
        server.json("/v1/chat/completions", h.chat_completion())
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert type(raw) is LegacyAPIResponse
        async with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
            assert type(response) is AsyncAPIResponse
            completion = await response.parse()
        server.chat_stream()
        async with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as response:
            stream = await response.parse()
            assert isinstance(stream, AsyncStream)
            chunks = [c async for c in stream]
        return raw.parse(), completion, chunks

    first, second, chunks = asyncio.run(main())
    assert isinstance(first, ChatCompletion) and isinstance(second, ChatCompletion) and len(chunks) == 7
    spans = rec.spans()
    assert [s.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for s in spans] == [1234, 1234, 21]
