"""InvokeModel across model families: exact tokens from bodies or headers, the body the app reads is intact."""

from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
HEADERS = {"X-Amzn-Bedrock-Input-Token-Count": "31", "X-Amzn-Bedrock-Output-Token-Count": "12", "X-Amzn-Bedrock-Invocation-Latency": "388"}


def invoke(client, model, body):
    return client.invoke_model(modelId=model, body=json.dumps(body), contentType="application/json", accept="application/json")


def only_span(rec):
    (span,) = rec.spans()
    return span, dict(span.attributes)


def test_anthropic_body_usage_with_cache_and_identical_bytes(bedrock, server, settings):
    reply = {
        "id": "msg_bdrk_01XyZ",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": "Bonjour !"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 1800, "output_tokens": 7},
    }
    raw = json.dumps(reply, indent=1).encode()  # exact bytes, including whitespace
    server.reply_json(reply, headers={"X-Amzn-Bedrock-Input-Token-Count": "11", "X-Amzn-Bedrock-Output-Token-Count": "7"})
    server.replies[-1].body = raw
    request = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 300,
        "temperature": 0.5,
        "top_k": 10,
        "system": "Be French.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }
    with capture(settings) as rec:
        response = invoke(bedrock, CLAUDE, request)
        body = response["body"]
        assert isinstance(body, StreamingBody)
        assert body.read() == raw
        assert body.read() == b""
    assert response["contentType"] == "application/json"
    assert json.loads(server.received[0].body) == request  # the request left unchanged
    span, attrs = only_span(rec)
    assert span.name == f"chat {CLAUDE}"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2011
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1800
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 200
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_bdrk_01XyZ"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "claude-3-5-haiku-20241022"
    assert attrs[semconv.GENOPS_COST_MODEL] == CLAUDE  # priced by the Bedrock id, prefix included
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 300
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert attrs[semconv.GEN_AI_REQUEST_TOP_K] == 10


def test_body_is_readable_in_chunks_and_lines(bedrock, server, settings):
    reply = {"generation": "line one\nline two", "prompt_token_count": 18, "generation_token_count": 6, "stop_reason": "stop"}
    server.reply_json(reply)
    raw = server.replies[-1].body
    with capture(settings) as rec:
        response = invoke(bedrock, "meta.llama3-8b-instruct-v1:0", {"prompt": "Say two lines", "max_gen_len": 64, "temperature": 0.1, "top_p": 0.8})
        assert b"".join(response["body"].iter_chunks(5)) == raw
    span, attrs = only_span(rec)
    assert span.name == "text_completion meta.llama3-8b-instruct-v1:0"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 18
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 6
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.8


@pytest.mark.parametrize(
    "model, request_body, reply, headers, expected",
    [
        (
            "amazon.nova-lite-v1:0",
            {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "inferenceConfig": {"max_new_tokens": 100, "temperature": 0.7}},
            {"output": {"message": {"role": "assistant", "content": [{"text": "Hello!"}]}}, "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8, "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 0}},
            {},
            ("chat", 5, 3, ("end_turn",), 100),
        ),
        (
            "amazon.titan-text-express-v1",
            {"inputText": "Tell me a joke", "textGenerationConfig": {"maxTokenCount": 512, "temperature": 0, "topP": 0.9, "stopSequences": []}},
            {"inputTextTokenCount": 5, "results": [{"tokenCount": 42, "outputText": "Why did...", "completionReason": "FINISH"}]},
            {},
            ("text_completion", 5, 42, ("FINISH",), 512),
        ),
        (
            "mistral.mistral-7b-instruct-v0:2",
            {"prompt": "<s>[INST] Hi [/INST]", "max_tokens": 50, "temperature": 0.5, "top_p": 0.9, "top_k": 50},
            {"outputs": [{"text": " Hello!", "stop_reason": "stop"}]},
            HEADERS,
            ("text_completion", 31, 12, ("stop",), 50),
        ),
        (
            "cohere.command-r-v1:0",
            {"message": "Hi", "chat_history": [], "max_tokens": 80, "p": 0.75, "k": 5},
            {"response_id": "5f0f", "text": "Hello there", "generation_id": "a1", "chat_history": [], "finish_reason": "COMPLETE"},
            HEADERS,
            ("chat", 31, 12, ("COMPLETE",), 80),
        ),
        (
            "cohere.command-text-v14",
            {"prompt": "Hi", "max_tokens": 20},
            {"id": "d0b2", "generations": [{"id": "g1", "text": " Hi!", "finish_reason": "COMPLETE"}], "prompt": "Hi"},
            HEADERS,
            ("text_completion", 31, 12, ("COMPLETE",), 20),
        ),
        (
            "amazon.titan-embed-text-v2:0",
            {"inputText": "embed me", "dimensions": 256},
            {"embedding": [0.1, 0.2], "inputTextTokenCount": 4},
            {"X-Amzn-Bedrock-Input-Token-Count": "4"},
            ("embeddings", 4, None, None, None),
        ),
    ],
)
def test_families(bedrock, server, settings, model, request_body, reply, headers, expected):
    operation, input_tokens, output_tokens, reasons, max_tokens = expected
    server.reply_json(reply, headers=headers)
    with capture(settings) as rec:
        response = invoke(bedrock, model, request_body)
        assert json.loads(response["body"].read()) == reply
    span, attrs = only_span(rec)
    assert span.name == f"{operation} {model}"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert attrs.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == output_tokens
    assert attrs.get(semconv.GEN_AI_RESPONSE_FINISH_REASONS) == reasons
    assert attrs.get(semconv.GEN_AI_REQUEST_MAX_TOKENS) == max_tokens


@pytest.mark.parametrize(
    "model_id, recorded",
    [
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0", "eu.anthropic.claude-3-haiku-20240307-v1:0"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5"),
    ],
)
def test_model_id_forms(bedrock, server, settings, model_id, recorded):
    server.reply_json({"type": "message", "content": [], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}})
    with capture(settings) as rec:
        invoke(bedrock, model_id, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})["body"].read()
    _, attrs = only_span(rec)
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == recorded
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3


def test_non_json_body_falls_back_to_headers(bedrock, server, settings):
    server.reply_json({}, headers=HEADERS)
    server.replies[-1].body = b"\x89PNG not json"
    server.replies[-1].content_type = "image/png"
    with capture(settings) as rec:
        response = bedrock.invoke_model(modelId="stability.sd3-5-large-v1:0", body=b'{"prompt": "a cat"}', accept="image/png")
        assert response["body"].read() == b"\x89PNG not json"
    _, attrs = only_span(rec)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 31
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_file_like_request_body_is_not_consumed(bedrock, server, settings):
    server.reply_json({"generation": "ok", "prompt_token_count": 2, "generation_token_count": 1, "stop_reason": "stop"})
    payload = b'{"prompt": "hi", "max_gen_len": 9}'
    with capture(settings) as rec:
        bedrock.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=io.BytesIO(payload))["body"].read()
    assert server.received[0].body == payload
    _, attrs = only_span(rec)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2
    assert semconv.GEN_AI_REQUEST_MAX_TOKENS not in attrs


def test_dropped_body_raises_for_the_app_when_it_reads(bedrock, server, settings):
    from botocore.exceptions import ResponseStreamingError

    server.reply_json({"generation": "x" * 400, "prompt_token_count": 2, "generation_token_count": 100})
    server.replies[-1].truncate = True
    with capture(settings) as rec:
        response = invoke(bedrock, "meta.llama3-8b-instruct-v1:0", {"prompt": "hi"})
        (span,) = rec.spans()
        assert span.status.status_code.name == "ERROR"
        with pytest.raises(ResponseStreamingError):
            response["body"].read()


def test_invoke_http_error_is_recorded_and_unchanged(bedrock, server, settings):
    server.reply_json({"message": "Too many requests, please wait before trying again."}, status=429, headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"})
    with capture(settings) as rec:
        with pytest.raises(bedrock.exceptions.ThrottlingException):
            invoke(bedrock, CLAUDE, {"messages": []})
    span, attrs = only_span(rec)
    assert attrs[semconv.ERROR_TYPE].endswith("ThrottlingException")


def test_botocore_stubber_bodies(aws_env, instrumented, settings):
    """Apps testing with botocore's Stubber: a StreamingBody is replaced by an equal one; other objects are left alone."""
    import botocore.session
    from botocore.stub import Stubber

    client = botocore.session.get_session().create_client("bedrock-runtime", region_name="us-east-1")
    reply = json.dumps({"generation": "hi", "prompt_token_count": 3, "generation_token_count": 1, "stop_reason": "stop"}).encode()
    foreign = io.BytesIO(reply)
    with Stubber(client) as stubber, capture(settings) as rec:
        stubber.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(reply), len(reply)), "contentType": "application/json"})
        stubber.add_response("invoke_model", {"body": foreign, "contentType": "application/json"})
        first = client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=b"{}")
        assert type(first["body"]) is StreamingBody and first["body"].read() == reply
        second = client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=b"{}")
        assert second["body"] is foreign and foreign.tell() == 0
    spans = rec.spans()
    assert spans[0].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in spans[1].attributes
    assert spans[1].attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
