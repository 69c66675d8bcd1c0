"""The async client: create, stream=True, `async with messages.stream()`, parse, raw responses, beta."""

from __future__ import annotations

import asyncio
import gc

import anthropic
import pytest
from anthropic.lib.streaming import AsyncMessageStream, AsyncMessageStreamManager
from anthropic.types import Message

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

# ``messages.parse`` (structured outputs) is newer than the plugin's oldest anthropic (0.69).
needs_parse = pytest.mark.skipif(not hasattr(anthropic.resources.messages.Messages, "parse"), reason="no messages.parse in this anthropic")

MODEL = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Say hello"}]


def test_async_create(make_client, json_server, settings, one_span):
    client = make_client(json_server(input_tokens=70, output_tokens=20, cache_read=30, cache_write=0), anthropic.AsyncAnthropic)

    async def main():
        return await client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT)

    with capture(settings) as recorded:
        message = asyncio.run(main())
    assert type(message) is Message
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 30
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED


def test_async_create_stream_true(make_client, sse_server, settings, one_span):
    client = make_client(sse_server(input_tokens=25, output_tokens=15), anthropic.AsyncAnthropic)

    async def main():
        stream = await client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True)
        assert isinstance(stream, anthropic.AsyncStream)
        return [event.type async for event in stream]

    with capture(settings) as recorded:
        kinds = asyncio.run(main())
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 15


def test_async_message_stream_helper(make_client, sse_server, settings, one_span):
    server = sse_server(input_tokens=40, output_tokens=9)
    client = make_client(server, anthropic.AsyncAnthropic)

    async def main():
        manager = client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT)
        assert isinstance(manager, AsyncMessageStreamManager)
        assert server.requests == []
        async with manager as stream:
            assert isinstance(stream, AsyncMessageStream)
            texts = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        return texts, final

    with capture(settings) as recorded:
        texts, final = asyncio.run(main())
    assert "".join(texts) == "Hello world!"
    assert final.usage.output_tokens == 9
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9


def test_async_message_stream_early_exit(make_client, sse_server, settings, one_span):
    client = make_client(sse_server(), anthropic.AsyncAnthropic)

    async def main():
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
            async for text in stream.text_stream:
                return text

    with capture(settings) as recorded:
        assert asyncio.run(main()) == "Hello"
        gc.collect()
    span = one_span(recorded)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert span.status.status_code.name != "ERROR"


def test_async_error_mid_stream(make_client, sse_server, settings, one_span):
    client = make_client(sse_server(error_after=4), anthropic.AsyncAnthropic)

    async def main():
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
            await stream.get_final_message()

    with capture(settings) as recorded:
        with pytest.raises(anthropic.APIStatusError):
            asyncio.run(main())
    assert one_span(recorded).status.status_code.name == "ERROR"


@needs_parse
def test_async_parse_and_raw_response(make_client, json_server, settings, raw_response_class):
    client = make_client(json_server(input_tokens=5, output_tokens=1), anthropic.AsyncAnthropic)
    legacy = raw_response_class is not anthropic.APIResponse  # 0.x: one LegacyAPIResponse, parse() not awaited

    async def main():
        parsed = await client.messages.parse(model=MODEL, max_tokens=8, messages=PROMPT)
        raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=PROMPT)
        assert isinstance(raw, raw_response_class if legacy else anthropic.AsyncAPIResponse)
        return parsed, raw.parse() if legacy else await raw.parse()

    with capture(settings) as recorded:
        parsed, message = asyncio.run(main())
    assert isinstance(parsed, anthropic.types.ParsedMessage) and type(message) is Message
    spans = recorded.spans()
    assert [span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for span in spans] == [5, 5]


def test_async_streaming_response_and_beta(make_client, sse_server, settings):
    client = make_client(sse_server(input_tokens=6, output_tokens=2), anthropic.AsyncAnthropic)

    async def main():
        async with client.messages.with_streaming_response.create(model=MODEL, max_tokens=8, messages=PROMPT, stream=True) as response:
            assert isinstance(response, anthropic.AsyncAPIResponse)
            stream = await response.parse()
            kinds = [event.type async for event in stream]
        beta = await client.beta.messages.create(model=MODEL, max_tokens=8, messages=PROMPT, stream=True)
        kinds += [event.type async for event in beta]
        return kinds

    with capture(settings) as recorded:
        kinds = asyncio.run(main())
    assert kinds.count("message_stop") == 2
    spans = recorded.spans()
    assert [span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] for span in spans] == [2, 2]
