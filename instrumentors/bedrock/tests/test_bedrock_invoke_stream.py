"""InvokeModelWithResponseStream: family chunks, Bedrock's invocation metrics, early exit, errors."""

from __future__ import annotations

import gc
import json

import pytest
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

CLAUDE = "global.anthropic.claude-haiku-4-5-20251001-v1:0"
CLAUDE_REQUEST = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200, "messages": [{"role": "user", "content": "Hi"}]}


def claude_chunks(frames, with_metrics=True):
    metrics = {"inputTokenCount": 25, "outputTokenCount": 6, "invocationLatency": 512, "firstByteLatency": 301}
    bodies = [
        {"type": "message_start", "message": {"id": "msg_bdrk_stream1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001", "content": [], "stop_reason": None, "usage": {"input_tokens": 25, "cache_read_input_tokens": 300, "cache_creation_input_tokens": 0, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 6}},
        {"type": "message_stop", **({"amazon-bedrock-invocationMetrics": metrics} if with_metrics else {})},
    ]
    return bodies, [frames.chunk(body) for body in bodies]


def stream(client, model=CLAUDE, body=CLAUDE_REQUEST):
    return client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))


def decode(events):
    return [json.loads(item["chunk"]["bytes"]) for item in events]


def test_anthropic_stream_full(bedrock, server, settings, frames):
    bodies, framed = claude_chunks(frames)
    server.reply_stream(framed)
    with capture(settings) as rec:
        response = stream(bedrock)
        assert isinstance(response["body"], EventStream)
        assert rec.spans() == []
        received = decode(response["body"])
    assert received == bodies
    assert server.received[0].path.endswith("/invoke-with-response-stream")
    (span,) = rec.spans()
    attrs = span.attributes
    assert span.name == f"chat {CLAUDE}"
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 325
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 300
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 6
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_bdrk_stream1"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 200


def test_stream_content_capture(bedrock, server, frames):
    from genops_autoinstrument import config

    server.reply_stream(claude_chunks(frames)[1])
    with capture(config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "1"})) as rec:
        list(stream(bedrock)["body"])
    output = json.loads(rec.spans()[0].attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert output == [{"role": "assistant", "parts": [{"type": "text", "content": "Hello there"}], "finish_reason": "end_turn"}]


@pytest.mark.parametrize(
    "model, bodies, expected",
    [
        (
            "meta.llama3-1-70b-instruct-v1:0",
            [
                {"generation": "Hi", "prompt_token_count": 17, "generation_token_count": 1, "stop_reason": None},
                {"generation": " you", "prompt_token_count": None, "generation_token_count": 2, "stop_reason": None},
                {"generation": "", "prompt_token_count": None, "generation_token_count": 3, "stop_reason": "stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 17, "outputTokenCount": 3, "invocationLatency": 200, "firstByteLatency": 90}},
            ],
            (17, 3, ("stop",)),
        ),
        (
            "amazon.titan-text-premier-v1:0",
            [
                {"outputText": "Hello", "index": 0, "totalOutputTextTokenCount": 2, "completionReason": None, "inputTextTokenCount": 8},
                {"outputText": " world", "index": 0, "totalOutputTextTokenCount": 4, "completionReason": "FINISH", "inputTextTokenCount": None, "amazon-bedrock-invocationMetrics": {"inputTokenCount": 8, "outputTokenCount": 4, "invocationLatency": 100, "firstByteLatency": 50}},
            ],
            (8, 4, ("FINISH",)),
        ),
        (
            "us.amazon.nova-pro-v1:0",
            [
                {"messageStart": {"role": "assistant"}},
                {"contentBlockDelta": {"delta": {"text": "Hey"}, "contentBlockIndex": 0}},
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"messageStop": {"stopReason": "end_turn"}},
                {"metadata": {"usage": {"inputTokens": 9, "outputTokens": 2}}, "amazon-bedrock-invocationMetrics": {"inputTokenCount": 9, "outputTokenCount": 2, "invocationLatency": 80, "firstByteLatency": 40}},
            ],
            (9, 2, ("end_turn",)),
        ),
        (
            "mistral.mistral-large-2402-v1:0",
            [
                {"outputs": [{"text": "Bon", "stop_reason": None}]},
                {"outputs": [{"text": "jour", "stop_reason": "stop"}], "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 2, "invocationLatency": 70, "firstByteLatency": 30}},
            ],
            (12, 2, ("stop",)),
        ),
        (
            "cohere.command-r-plus-v1:0",
            [
                {"is_finished": False, "event_type": "stream-start", "generation_id": "g-1"},
                {"is_finished": False, "event_type": "text-generation", "text": "Hi"},
                {"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 30, "outputTokenCount": 1, "invocationLatency": 60, "firstByteLatency": 20}},
            ],
            (30, 1, ("COMPLETE",)),
        ),
    ],
)
def test_family_streams(bedrock, server, settings, frames, model, bodies, expected):
    server.reply_stream([frames.chunk(body) for body in bodies])
    with capture(settings) as rec:
        assert decode(stream(bedrock, model, {"prompt": "hi"})["body"]) == bodies
    attrs = rec.spans()[0].attributes
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS], attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == expected


def test_metrics_fill_what_the_body_lacks(bedrock, server, settings, frames):
    server.reply_stream([frames.chunk({"outputs": [{"text": "x", "stop_reason": "stop"}], "amazon-bedrock-invocationMetrics": {"inputTokenCount": 40, "outputTokenCount": 1, "cacheReadInputTokenCount": 10}})])
    with capture(settings) as rec:
        list(stream(bedrock, "mistral.mixtral-8x7b-instruct-v0:1", {"prompt": "x"})["body"])
    attrs = rec.spans()[0].attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 10


def test_stream_early_exit_with_close(bedrock, server, settings, frames):
    server.reply_stream(claude_chunks(frames)[1])
    with capture(settings) as rec:
        body = stream(bedrock)["body"]
        first = next(iter(body))
        assert json.loads(first["chunk"]["bytes"])["type"] == "message_start"
        body.close()
        (span,) = rec.spans()
        assert span.status.status_code.name != "ERROR"
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 325  # message_start already counted the prompt
        del body
        gc.collect()
        assert len(rec.spans()) == 1


def test_stream_error_mid_stream(bedrock, server, settings, frames):
    framed = claude_chunks(frames)[1][:3] + [frames.exception("throttlingException", "Too many tokens, please wait before trying again.")]
    server.reply_stream(framed)
    seen = []
    with capture(settings) as rec:
        with pytest.raises(EventStreamError) as raised:
            for item in stream(bedrock)["body"]:
                seen.append(item)
    assert raised.value.response["Error"]["Code"] == "throttlingException"
    assert len(seen) == 3
    (span,) = rec.spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == "botocore.exceptions.EventStreamError"


def test_stream_dropped_connection_ends_the_call_once(bedrock, server, settings, frames):
    """botocore ends an EventStream quietly when the connection drops mid-frame (older botocore
    raises urllib3's ProtocolError instead); the proxy does the same, and the call ends once."""
    from urllib3.exceptions import ProtocolError

    bodies, framed = claude_chunks(frames)
    server.reply_stream(framed, truncate=True)
    received: list = []
    raised = None
    with capture(settings) as rec:
        body = stream(bedrock)["body"]
        try:
            for event in body:
                received.append(json.loads(event["chunk"]["bytes"]))
        except ProtocolError as error:
            raised = error
        (span,) = rec.spans()
    assert 0 < len(received) < len(bodies) and received == bodies[: len(received)]
    if raised is not None and semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes:
        # Known gap (older botocore raises here): a stream that fails records the error, not the
        # usage already received. Kept visible rather than passing.
        pytest.xfail("usage received before a stream error is not recorded yet")
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 325
    assert semconv.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes
    if raised is not None:
        assert span.attributes[semconv.ERROR_TYPE].endswith("ProtocolError")
