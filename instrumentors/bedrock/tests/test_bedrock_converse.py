"""Converse and ConverseStream through a real botocore client against a local server."""

from __future__ import annotations

import gc
import json

import pytest
from botocore.eventstream import EventStream
from botocore.exceptions import ClientError, EventStreamError

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"

CONVERSE_RESPONSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Paris is the capital of France."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 21, "outputTokens": 9, "totalTokens": 1130, "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 100},
    "metrics": {"latencyMs": 412},
}


def converse(client, **extra):
    return client.converse(
        modelId=MODEL,
        system=[{"text": "Answer briefly."}],
        messages=[{"role": "user", "content": [{"text": "What is the capital of France?"}]}],
        inferenceConfig={"maxTokens": 256, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\n"]},
        **extra,
    )


def test_converse_records_exact_tokens_and_attributes(bedrock, server, settings):
    server.reply_json(CONVERSE_RESPONSE)
    with capture(settings) as rec:
        response = converse(bedrock, additionalModelRequestFields={"top_k": 40})
    assert response["output"] == CONVERSE_RESPONSE["output"]
    assert response["usage"] == CONVERSE_RESPONSE["usage"]
    assert server.received[0].path == "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    (span,) = rec.spans()
    attrs = dict(span.attributes)
    assert span.name == f"chat {MODEL}"
    assert span.kind.name == "CLIENT"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1121  # 21 + 1000 cache read + 100 cache write
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[semconv.GEN_AI_REQUEST_TOP_K] == 40
    assert attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n\n",)
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.SERVER_PORT] == server.port
    assert semconv.GEN_AI_INPUT_MESSAGES not in attrs  # content is opt-in
    tokens = rec.metrics()[semconv.METRIC_TOKEN_USAGE]
    assert sorted((dims[semconv.GEN_AI_TOKEN_TYPE], point.sum) for dims, point in tokens) == [("input", 1121), ("output", 9)]


def test_converse_content_capture_is_opt_in(bedrock, server):
    from genops_autoinstrument import config

    server.reply_json(CONVERSE_RESPONSE)
    with capture(config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})) as rec:
        converse(bedrock)
    attrs = rec.spans()[0].attributes
    assert json.loads(attrs[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Answer briefly."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]},
    ]
    assert json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris is the capital of France."}], "finish_reason": "end_turn"}
    ]


def test_converse_error_is_unchanged_and_recorded(bedrock, server, settings):
    server.reply_json({"message": "Malformed input request"}, status=400, headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"})
    with capture(settings) as rec:
        with pytest.raises(bedrock.exceptions.ValidationException) as raised:
            converse(bedrock)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    (span,) = rec.spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE].endswith("ValidationException")
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def _stream_frames(frames, text_parts=("Par", "is"), usage=None):
    event = frames.event
    out = [event("messageStart", {"role": "assistant"})]
    for part in text_parts:
        out.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": part}}))
    out.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    out.append(event("messageStop", {"stopReason": "end_turn"}))
    out.append(event("metadata", {"usage": usage or {"inputTokens": 14, "outputTokens": 3, "totalTokens": 17}, "metrics": {"latencyMs": 230}}))
    return out


def test_converse_stream_full(bedrock, server, settings, frames):
    server.reply_stream(_stream_frames(frames, usage={"inputTokens": 14, "outputTokens": 3, "totalTokens": 517, "cacheReadInputTokens": 500}))
    with capture(settings) as rec:
        response = bedrock.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Capital?"}]}])
        stream = response["stream"]
        assert isinstance(stream, EventStream)
        assert rec.spans() == []  # the call lasts as long as the stream
        events = list(stream)
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == "Paris"
    assert events[-1]["metadata"]["usage"]["totalTokens"] == 517
    assert len(events) == 6
    (span,) = rec.spans()
    attrs = span.attributes
    assert span.name == f"chat {MODEL}"
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 514
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 500
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert server.received[0].path.endswith("/converse-stream")


def test_converse_stream_early_exit_ends_call_once(bedrock, server, settings, frames):
    server.reply_stream(_stream_frames(frames))
    with capture(settings) as rec:
        response = bedrock.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Capital?"}]}])
        for item in response["stream"]:
            if "contentBlockDelta" in item:
                break
        response["stream"].close()
        (span,) = rec.spans()
        assert span.status.status_code.name != "ERROR"
        assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # the metadata event never arrived
        del response, item
        gc.collect()
    assert len(rec.spans()) == 1


def test_converse_stream_abandoned_is_ended_when_collected(bedrock, server, settings, frames):
    server.reply_stream(_stream_frames(frames))
    with capture(settings) as rec:
        response = bedrock.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
        next(iter(response["stream"]))
        del response
        gc.collect()
        assert len(rec.spans()) == 1


def test_converse_stream_error_mid_stream(bedrock, server, settings, frames):
    server.reply_stream(_stream_frames(frames)[:2] + [frames.exception("modelStreamErrorException", "Model stream failed")])
    seen = []
    with capture(settings) as rec:
        response = bedrock.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
        with pytest.raises(EventStreamError) as raised:
            for item in response["stream"]:
                seen.append(item)
    assert isinstance(raised.value, ClientError)
    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert len(seen) == 2
    (span,) = rec.spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == "botocore.exceptions.EventStreamError"
