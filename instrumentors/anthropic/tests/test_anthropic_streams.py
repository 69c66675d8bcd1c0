"""Streaming Messages calls (sync): create(stream=True), messages.stream(), raw streams, beta."""

from __future__ import annotations

import dataclasses
import gc

import anthropic
import pytest
from anthropic.lib.streaming import MessageStream, MessageStreamManager
from anthropic.types import Message

from genops_autoinstrument import semconv

MODEL = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Say hello"}]


def _attrs(span):
    return dict(span.attributes)


def test_create_stream_true_full_read(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(input_tokens=25, cache_read=1000, cache_write=50, output_tokens=15))
    with capture(settings) as recorded:
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True)
        assert isinstance(stream, anthropic.Stream)
        assert recorded.spans() == []  # not read yet
        kinds = [event.type for event in stream]
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    span = one_span(recorded)
    attrs = _attrs(span)
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1075  # 25 + 1000 + 50
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 15  # final message_delta, not message_start's 1
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_014p7gG3wDgGV9EUtLvnow3U"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == MODEL
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
    assert span.status.status_code.name != "ERROR"


def test_create_stream_as_context_manager(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(output_tokens=4))
    with capture(settings) as recorded:
        with client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True) as stream:
            assert isinstance(stream, anthropic.Stream)
            first = next(iter(stream))
            assert first.type == "message_start"
        # exited early: the SDK closed the response and the call ended with what was seen
    attrs = _attrs(one_span(recorded))
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1  # only message_start was read


def test_message_stream_helper_text_stream_and_final_message(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    server = sse_server(input_tokens=30, output_tokens=12)
    client = make_client(server)
    with capture(settings) as recorded:
        manager = client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT)
        assert isinstance(manager, MessageStreamManager)
        assert server.requests == []  # the SDK sends on __enter__, and so does GenOps decide
        with manager as stream:
            assert isinstance(stream, MessageStream)
            assert "".join(stream.text_stream) == "Hello world!"
            final = stream.get_final_message()
            assert stream.request_id == "req_0001"
    assert type(final) is not None and isinstance(final, Message)
    assert final.usage.output_tokens == 12
    assert server.sent[0]["stream"] is True
    attrs = _attrs(one_span(recorded))
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 30
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_message_stream_get_final_text_only(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(output_tokens=7, stop_reason="max_tokens"))
    with capture(settings) as recorded:
        with client.messages.stream(model=MODEL, max_tokens=7, messages=PROMPT) as stream:
            assert stream.get_final_text() == "Hello world!"
    attrs = _attrs(one_span(recorded))
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)


def test_message_stream_early_exit_ends_the_call_once(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server())
    with capture(settings) as recorded:
        with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
            for text in stream.text_stream:
                assert text == "Hello"
                break
        gc.collect()
    span = one_span(recorded)
    attrs = _attrs(span)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert semconv.GEN_AI_RESPONSE_FINISH_REASONS not in attrs
    assert span.status.status_code.name != "ERROR"


def test_error_event_mid_stream_fails_the_call_and_reaches_the_app(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(error_after=4))
    seen = []
    with capture(settings) as recorded:
        with pytest.raises(anthropic.APIStatusError) as caught:
            for event in client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True):
                seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]  # the SDK drops ping
    assert caught.value.body["error"]["type"] == "overloaded_error"
    span = one_span(recorded)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == f"{type(caught.value).__module__}.{type(caught.value).__qualname__}"
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes


def test_error_mid_stream_in_stream_helper(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(error_after=5))
    with capture(settings) as recorded:
        with pytest.raises(anthropic.APIStatusError):
            with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
                stream.get_final_message()
    assert one_span(recorded).status.status_code.name == "ERROR"


def test_raw_response_of_a_stream(make_client, sse_server, settings, one_span, raw_response_class):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(input_tokens=9, output_tokens=3))
    with capture(settings) as recorded:
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True)
        assert isinstance(raw, raw_response_class)
        stream = raw.parse()
        assert isinstance(stream, anthropic.Stream)
        assert raw.parse() is stream  # the SDK caches parse(); so does the proxy
        del raw
        gc.collect()
        assert recorded.spans() == []  # the stream, not the dropped response, ends the call
        assert [event.type for event in stream][-1] == "message_stop"
    attrs = _attrs(one_span(recorded))
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 9
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3


def test_beta_messages_stream(make_client, sse_server, settings, one_span):
    from anthropic.lib.streaming import BetaMessageStream
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(input_tokens=11, output_tokens=6))
    with capture(settings) as recorded:
        with client.beta.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
            assert isinstance(stream, BetaMessageStream)
            assert stream.get_final_text() == "Hello world!"
    attrs = _attrs(one_span(recorded))
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 6


def test_beta_create_stream_true(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server(input_tokens=3, output_tokens=2))
    with capture(settings) as recorded:
        events = list(client.beta.messages.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True))
    assert events[-1].type == "message_stop"
    assert _attrs(one_span(recorded))[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_streamed_content_only_on_opt_in(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server())
    with capture(dataclasses.replace(settings, capture_content=True)) as recorded:
        with client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
            stream.until_done()
    assert '"Hello world!"' in _attrs(one_span(recorded))[semconv.GEN_AI_OUTPUT_MESSAGES]


def test_dropped_stream_is_ended_by_gc(make_client, sse_server, settings, one_span):
    from genops_autoinstrument.api.testing import capture

    client = make_client(sse_server())
    with capture(settings) as recorded:
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT, stream=True)
        next(iter(stream))
        del stream
        gc.collect()
        span = one_span(recorded)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
