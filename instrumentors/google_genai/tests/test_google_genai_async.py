"""client.aio: generate_content, generate_content_stream, embed_content, chats and blocks."""

from __future__ import annotations

import asyncio
import gc

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api import PolicyViolation
from genops_autoinstrument.api.testing import capture


def run(coroutine):
    return asyncio.run(coroutine)


def test_async_generate_content(client, server, settings, gemini):
    from google.genai import types

    async def main():
        return await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Say hello")

    with capture(settings) as recorded:
        response = run(main())
    assert type(response) is types.GenerateContentResponse
    assert response.text == "Hello from Gemini."
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gen_ai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 42
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == gemini.RESPONSE_ID


def test_async_stream_full(client, server, settings, gemini):
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 3, "thoughtsTokenCount": 4, "totalTokenCount": 16}
    server.script(gemini.Reply(events=gemini.stream_bodies(["A", "B", "C"], usage)))

    async def main():
        stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="abc")
        assert hasattr(stream, "__anext__")
        return [chunk.text async for chunk in stream]

    with capture(settings) as recorded:
        assert run(main()) == ["A", "B", "C"]
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 7)
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 4
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_async_stream_early_exit(client, server, settings, gemini):
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}
    server.script(gemini.Reply(events=gemini.stream_bodies(["A", "B", "C"], usage)))

    async def main():
        stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="abc")
        async for chunk in stream:
            assert chunk.text == "A"
            break
        await stream.aclose()

    with capture(settings) as recorded:
        run(main())
        gc.collect()
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 9
    assert semconv.ERROR_TYPE not in attrs


def test_async_stream_error_mid_stream(client, server, settings, gemini):
    from google.genai import errors

    events = gemini.stream_bodies(["A", "B"], {"promptTokenCount": 2, "totalTokenCount": 2})[:1]
    events.append({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
    server.script(gemini.Reply(events=events))

    async def main():
        received = []
        stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="x")
        with pytest.raises(errors.ServerError) as raised:
            async for chunk in stream:
                received.append(chunk.text)
        return received, raised.value

    with capture(settings) as recorded:
        received, error = run(main())
    assert received == ["A"] and error.code == 503
    assert gemini.one_span(recorded).attributes[semconv.ERROR_TYPE] == "google.genai.errors.ServerError"


def test_async_embed_content(client, server, settings, gemini, embedding_usage_reported):
    server.script(gemini.Reply(body={"embeddings": [{"values": [0.5, 0.5]}], "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}))

    async def main():
        return await client.aio.models.embed_content(model="gemini-embedding-001", contents="hi")

    with capture(settings) as recorded:
        response = run(main())
    assert response.embeddings[0].values == [0.5, 0.5]
    span = gemini.one_span(recorded)
    assert span.name == "embeddings gemini-embedding-001"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3


def test_async_chat_and_stream(client, server, settings, gemini):
    server.script(
        gemini.Reply(body=gemini.generate_body("Hi!", usage={"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}, response_id="c1")),
        gemini.Reply(events=gemini.stream_bodies(["Go", "od"], {"promptTokenCount": 10, "candidatesTokenCount": 2, "totalTokenCount": 12}, response_id="c2")),
    )

    async def main():
        chat = client.aio.chats.create(model="gemini-2.5-flash")
        first = await chat.send_message("Hello")
        second = "".join([chunk.text async for chunk in await chat.send_message_stream("How are you?")])
        return first.text, second

    with capture(settings) as recorded:
        assert run(main()) == ("Hi!", "Good")
    spans = recorded.spans()
    assert [s.attributes[semconv.GEN_AI_RESPONSE_ID] for s in spans] == ["c1", "c2"]
    assert [s.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for s in spans] == [4, 10]


def test_async_vertex_mode(vertex_client, server, settings, gemini):
    async def main():
        return await vertex_client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")

    with capture(settings) as recorded:
        run(main())
    assert gemini.one_span(recorded).attributes[semconv.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"


def test_async_blocks_raise_client_error_and_send_nothing(client, server, settings, gemini, budget_block, rule_block):
    from google.genai import errors

    async def generate():
        return await client.aio.models.generate_content(model="gemini-2.5-flash", contents="x")

    async def stream():
        return await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="x")

    async def embed():
        return await client.aio.models.embed_content(model="gemini-embedding-001", contents="x")

    for governor, code in ((budget_block, 429), (rule_block, 403)):
        for call in (generate, stream, embed):
            with capture(settings, governor=governor):
                with pytest.raises(errors.ClientError) as raised:
                    run(call())
            assert isinstance(raised.value, PolicyViolation)
            assert raised.value.code == code
    assert server.requests == []
