"""Chat completions without streaming: attributes, usage, tool calls, refusals, parse, errors."""

from __future__ import annotations

import inspect
import json

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletion
from openai.types.chat.parsed_chat_completion import ParsedChatCompletion
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api.testing import capture

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "Say hello"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
]


# openai 1.40 predates max_completion_tokens (1.45): the older max_tokens gives the same attribute there.
MAX_TOKENS_ARGUMENT = "max_completion_tokens" if "max_completion_tokens" in inspect.signature(openai.resources.chat.Completions.create).parameters else "max_tokens"


def test_create_records_request_response_and_usage(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        **{MAX_TOKENS_ARGUMENT: 200},
        temperature=0.2,
        top_p=0.9,
        frequency_penalty=0.1,
        presence_penalty=0.3,
        seed=42,
        stop=["END"],
        n=2,
        response_format={"type": "json_object"},
    )
    assert type(response) is ChatCompletion
    assert response.choices[0].message.content == "Hello! How can I help you today?"
    span = h.one_span(rec)
    attrs = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 200
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY] == 0.1
    assert attrs[semconv.GEN_AI_REQUEST_PRESENCE_PENALTY] == 0.3
    assert attrs[semconv.GEN_AI_REQUEST_SEED] == 42
    assert tuple(attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES]) == ("END",)
    assert attrs[semconv.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert attrs[semconv.GEN_AI_OUTPUT_TYPE] == "json"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 56
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
    assert attrs[semconv.SERVER_ADDRESS] == "api.openai.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert semconv.GEN_AI_REQUEST_STREAM not in attrs
    # content is not recorded by default, and credentials never are
    assert semconv.GEN_AI_INPUT_MESSAGES not in attrs and semconv.GEN_AI_OUTPUT_MESSAGES not in attrs
    text = h.all_attribute_text(span)
    assert h.API_KEY not in text and "Bearer" not in text and "Say hello" not in text
    # the request the server got is what the app asked for
    sent = server.requests[0]["json"]
    assert "stream_options" not in sent and sent["n"] == 2


def test_token_metrics_recorded(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    points = rec.metrics()[semconv.METRIC_TOKEN_USAGE]
    by_type = {attrs[semconv.GEN_AI_TOKEN_TYPE]: point.sum for attrs, point in points}
    assert by_type == {"input": 1234, "output": 56}


def test_max_tokens_fallback_and_n1_not_recorded(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=17, n=1, stop="\n")
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 17
    assert semconv.GEN_AI_REQUEST_CHOICE_COUNT not in attrs
    assert tuple(attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES]) == ("\n",)


def test_tool_calls(rec, server, h):
    tool_call = {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    body = h.chat_completion(None)
    body["choices"][0]["message"]["tool_calls"] = [tool_call]
    body["choices"][0]["finish_reason"] = "tool_calls"
    server.json("/v1/chat/completions", body)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    response = server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
    attrs = h.one_span(rec).attributes
    assert tuple(attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 56


def test_refusal_with_content_capture(instrumentor, server, h):
    body = h.chat_completion(None)
    body["choices"][0]["message"]["refusal"] = "I'm sorry, I can't help with that."
    server.json("/v1/chat/completions", body)
    with capture(config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})) as recorded:
        response = server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert response.choices[0].message.refusal == "I'm sorry, I can't help with that."
    attrs = h.one_span(recorded).attributes
    assert json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "I'm sorry, I can't help with that."}], "finish_reason": "stop"}
    ]
    assert json.loads(attrs[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
    ]


class Answer(pydantic.BaseModel):
    city: str
    temperature_c: int


def test_parse(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion('{"city":"Paris","temperature_c":21}'))
    completion = h.chat_helpers(server.client()).parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer, **{MAX_TOKENS_ARGUMENT: 64})
    assert isinstance(completion, ParsedChatCompletion)
    assert completion.choices[0].message.parsed == Answer(city="Paris", temperature_c=21)
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_OUTPUT_TYPE] == "json"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


def test_parse_error_from_post_parser_is_recorded(rec, server, h):
    body = h.chat_completion('{"city":"Par')
    body["choices"][0]["finish_reason"] = "length"
    server.json("/v1/chat/completions", body)
    with pytest.raises(openai.LengthFinishReasonError):
        h.chat_helpers(server.client()).parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
    span = h.one_span(rec)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "openai.LengthFinishReasonError"


@pytest.mark.parametrize(
    ("status", "error", "exc_type"),
    [
        (400, {"message": "Invalid 'messages': empty array.", "type": "invalid_request_error", "param": "messages", "code": "empty_array"}, openai.BadRequestError),
        (429, {"message": "Rate limit reached for gpt-4o-mini.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}, openai.RateLimitError),
        (500, {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}, openai.InternalServerError),
    ],
)
def test_http_errors(rec, server, h, status, error, exc_type):
    server.error("/v1/chat/completions", status, error)
    with pytest.raises(exc_type) as caught:
        server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(caught.value) is exc_type
    assert caught.value.status_code == status
    span = h.one_span(rec)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == f"openai.{exc_type.__name__}"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_sdk_retries_are_one_call(rec, server, h, monkeypatch):
    monkeypatch.setattr(openai._base_client.SyncAPIClient, "_calculate_retry_timeout", lambda *a, **k: 0.0)
    server.error("/v1/chat/completions", 500, {"message": "boom", "type": "server_error", "param": None, "code": None})
    with pytest.raises(openai.InternalServerError):
        server.client(max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(server.requests) == 3
    assert h.one_span(rec).attributes[semconv.ERROR_TYPE] == "openai.InternalServerError"


def test_uninstrument_restores(server, h, settings):
    from genops_instrumentation_openai import OpenAIInstrumentor

    original = openai.resources.chat.Completions.create
    instance = OpenAIInstrumentor()
    instance.instrument()
    assert openai.resources.chat.Completions.create is not original
    instance.uninstrument()
    assert openai.resources.chat.Completions.create is original
    server.json("/v1/chat/completions", h.chat_completion())
    with capture(settings) as recorded:
        server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert recorded.spans() == []


def test_generator_messages_are_sent_intact(instrumentor, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    with capture(config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})) as recorded:
        server.client().chat.completions.create(model="gpt-4o-mini", messages=(m for m in MESSAGES))
    assert server.requests[0]["json"]["messages"] == MESSAGES
    assert json.loads(h.one_span(recorded).attributes[semconv.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "You are terse."


def test_internal_failure_lets_the_call_through_unrecorded(rec, server, h, monkeypatch):
    from genops_instrumentation_openai import _wrappers

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the plugin")

    monkeypatch.setattr(_wrappers._request, "server_of", broken)
    server.json("/v1/chat/completions", h.chat_completion())
    response = server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(response, ChatCompletion)
    assert rec.spans() == []
