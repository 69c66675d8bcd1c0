"""Non-streaming Messages calls through the real SDK: create, parse, raw responses, beta, errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import anthropic
import pydantic
import pytest
from anthropic.types import Message
from anthropic.types.beta import BetaMessage

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

# ``messages.parse`` (structured outputs) is newer than the plugin's oldest anthropic (0.69).
needs_parse = pytest.mark.skipif(not hasattr(anthropic.resources.messages.Messages, "parse"), reason="no messages.parse in this anthropic")

MODEL = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Say hello"}]


def test_create_records_one_chat_span_with_exact_usage_and_cost(make_client, json_server, settings, one_span):
    server = json_server(input_tokens=100, output_tokens=40, cache_read=2000, cache_write=300)
    client = make_client(server)
    with capture(settings) as recorded:
        message = client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=PROMPT, stop_sequences=["\n\nHuman:"])
    assert type(message) is Message and message.content[0].text == "Hello there!"
    assert len(server.requests) == 1
    span = one_span(recorded)
    attrs = dict(span.attributes)
    assert span.name == "chat claude-sonnet-4-6"
    assert span.kind.name == "CLIENT"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "claude-sonnet-4-6"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == MODEL
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n\nHuman:",)
    assert attrs[semconv.SERVER_ADDRESS] == "api.anthropic.com"
    assert attrs[semconv.SERVER_PORT] == 443
    # input = 100 fresh + 2000 cache read + 300 cache creation
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2400
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 40
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 300
    assert semconv.GEN_AI_INPUT_MESSAGES not in attrs  # content is opt-in
    expected = price_call("anthropic", MODEL, Usage(input_tokens=2400, output_tokens=40, cache_read_tokens=2000, cache_write_tokens=300))
    assert expected.priced  # 100*3 + 2000*0.30 + 300*3.75 + 40*15 USD per million tokens
    assert expected.total == pytest.approx(0.002625)
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
    assert attrs[semconv.GENOPS_COST_TOTAL] == pytest.approx(0.002625)
    assert attrs[semconv.GENOPS_COST_PROVIDER] == "anthropic"
    metrics = recorded.metrics()
    tokens = {point_attrs[semconv.GEN_AI_TOKEN_TYPE]: point.sum for point_attrs, point in metrics[semconv.METRIC_TOKEN_USAGE]}
    assert tokens == {"input": 2400, "output": 40}
    assert [point.value for _, point in metrics[semconv.METRIC_COST]] == [pytest.approx(0.002625)]


def test_cache_fields_absent_are_not_invented(make_client, json_server, settings, one_span):
    client = make_client(json_server(input_tokens=12, output_tokens=3, cache_read=None, cache_write=None))
    with capture(settings) as recorded:
        client.messages.create(model=MODEL, max_tokens=10, messages=PROMPT)
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in attrs
    assert semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs


class Answer(pydantic.BaseModel):
    city: str


@needs_parse
def test_parse_returns_parsed_message(make_client, json_server, settings, one_span):
    server = json_server(text='{"city": "Paris"}', input_tokens=50, output_tokens=7)
    client = make_client(server)
    with capture(settings) as recorded:
        parsed = client.messages.parse(model=MODEL, max_tokens=100, messages=PROMPT, output_format=Answer)
    assert isinstance(parsed, anthropic.types.ParsedMessage)
    assert parsed.parsed_output == Answer(city="Paris")
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[semconv.GEN_AI_OUTPUT_TYPE] == "json"
    assert server.sent[0]["output_config"]["format"]["type"] == "json_schema"


def test_with_raw_response_returns_api_response_and_records(make_client, json_server, settings, one_span, raw_response_class):
    client = make_client(json_server(input_tokens=30, output_tokens=11, cache_read=5, cache_write=0))
    with capture(settings) as recorded:
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=PROMPT)
        assert isinstance(raw, raw_response_class)
        assert raw.headers["request-id"] == "req_0001"
        message = raw.parse()
    assert type(message) is Message
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 35
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 11
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"


def test_with_streaming_response_records_when_parsed(make_client, json_server, settings, one_span):
    client = make_client(json_server(input_tokens=8, output_tokens=2))
    with capture(settings) as recorded:
        with client.messages.with_streaming_response.create(model=MODEL, max_tokens=64, messages=PROMPT) as response:
            assert isinstance(response, anthropic.APIResponse)
            assert recorded.spans() == []  # body not read yet: the call is still running
            message = response.parse()
        assert type(message) is Message
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 8
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_with_streaming_response_closed_unread_ends_the_call(make_client, json_server, settings, one_span):
    client = make_client(json_server())
    with capture(settings) as recorded:
        with client.messages.with_streaming_response.create(model=MODEL, max_tokens=64, messages=PROMPT) as response:
            assert response.status_code == 200
    span = one_span(recorded)
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED


def test_count_tokens_is_left_alone(make_client, json_server, settings):
    server = json_server()
    client = make_client(server)
    with capture(settings) as recorded:
        counted = client.messages.count_tokens(model=MODEL, messages=PROMPT)
    assert counted.input_tokens == 14
    assert recorded.spans() == []
    assert len(server.requests) == 1


def test_beta_messages_create_records(make_client, json_server, settings, one_span):
    client = make_client(json_server(input_tokens=40, output_tokens=4, cache_read=10, cache_write=20))
    with capture(settings) as recorded:
        message = client.beta.messages.create(model=MODEL, max_tokens=32, messages=PROMPT, betas=["context-management-2025-06-27"])
    assert isinstance(message, BetaMessage)
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 70
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 10
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 20


def test_provider_error_is_unchanged_and_recorded(make_client, settings, one_span):
    from anthropic import BadRequestError

    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: field required"}}
    server = _status_server(400, body)
    client = make_client(server)
    with capture(settings) as recorded:
        with pytest.raises(BadRequestError) as caught:
            client.messages.create(model=MODEL, max_tokens=1, messages=PROMPT)
    assert not isinstance(caught.value, PolicyViolation)
    assert caught.value.status_code == 400
    span = one_span(recorded)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == "anthropic.BadRequestError"


def _status_server(status, body):
    import anthropic._base_client

    http = getattr(anthropic._base_client, "httpx2", None) or anthropic._base_client.httpx

    class Failing:
        requests: list = []

        def __call__(self, request):
            self.requests.append(request)
            return http.Response(status, json=body)

    return Failing()


def test_content_is_recorded_only_on_opt_in(make_client, json_server, settings, one_span):
    client = make_client(json_server(text="Bonjour"))
    opted_in = dataclasses.replace(settings, capture_content=True)
    with capture(opted_in) as recorded:
        client.messages.create(model=MODEL, max_tokens=16, system="Be brief.", messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello in French"}]}])
    attrs = dict(one_span(recorded).attributes)
    assert '"Say hello in French"' in attrs[semconv.GEN_AI_INPUT_MESSAGES]
    assert '"Be brief."' in attrs[semconv.GEN_AI_INPUT_MESSAGES]
    assert '"Bonjour"' in attrs[semconv.GEN_AI_OUTPUT_MESSAGES]
    assert '"finish_reason": "stop"' in attrs[semconv.GEN_AI_OUTPUT_MESSAGES]


def test_plugin_import_does_not_import_anthropic():
    code = "import sys, genops_instrumentation_anthropic as p; p.AnthropicInstrumentor().instrumentation_dependencies(); print('anthropic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_dependencies_match_installed_sdk(instrumented):
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    assert list(instrumented.instrumentation_dependencies()) == ["anthropic >= 0.69, < 3"]
    assert get_dependency_conflicts(instrumented.instrumentation_dependencies()) is None


def test_uninstrument_restores_the_sdk(instrumented, make_client, json_server, settings):
    from genops_autoinstrument.api.instrumentor import is_genops_wrapped

    assert is_genops_wrapped(anthropic.resources.messages.Messages.__dict__["create"])
    instrumented.uninstrument()
    try:
        assert not is_genops_wrapped(anthropic.resources.messages.Messages.__dict__["create"])
        client = make_client(json_server())
        with capture(settings) as recorded:
            client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
        assert recorded.spans() == []
    finally:
        instrumented.instrument()
    assert is_genops_wrapped(anthropic.resources.messages.Messages.__dict__["create"])


def test_thinking_tokens_are_reasoning_tokens(make_client, json_server, settings, one_span):
    server = json_server(input_tokens=12, output_tokens=120, stop_reason="max_tokens")
    server.body["usage"]["output_tokens_details"] = {"thinking_tokens": 100}
    server.body["content"].insert(0, {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAhIM"})
    client = make_client(server)
    with capture(settings) as recorded:
        message = client.messages.create(model=MODEL, max_tokens=120, messages=PROMPT, thinking={"type": "adaptive"})
    assert message.content[0].type == "thinking"
    attrs = dict(one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 120
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)
