"""The OpenAI and Anthropic SDKs over the wire layer: the low-level ``client.post`` (LiteLLM's
OpenAI route) recorded by the wire layer alone; resource methods with both layers active
recorded once, by the SDK plugin, with every HTTP attempt on its span."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from genops_autoinstrument import policy_decision, semconv
from genops_instrumentation_anthropic import AnthropicInstrumentor
from genops_instrumentation_openai import OpenAIInstrumentor

KEY = "sk-test-DO-NOT-RECORD-1234567890"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}


def _client(providers, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=providers.url + "/v1", **kwargs)


def test_low_level_post_is_recorded_by_the_wire_layer(providers, rec, h):
    completion = _client(providers).post("/chat/completions", body=BODY, cast_to=ChatCompletion)
    assert isinstance(completion, ChatCompletion) and completion.usage.prompt_tokens == 1234
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 56
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED


def test_low_level_post_stream_is_priced_and_the_usage_chunk_hidden(providers, rec, h):
    stream = _client(providers).post("/chat/completions", body={**BODY, "stream": True}, cast_to=ChatCompletionChunk, stream=True, stream_cls=openai.Stream[ChatCompletionChunk])
    chunks = list(stream)
    assert len(chunks) == 6 and all(chunk.choices for chunk in chunks)
    assert all("usage" not in chunk.model_fields_set for chunk in chunks)
    assert h.one_span(rec).attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_low_level_post_blocked_model_raises_the_sdks_error_without_retrying(providers, governed, h):
    with governed({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"}) as recorded:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            _client(providers, max_retries=3).post("/chat/completions", body=BODY, cast_to=ChatCompletion)
    assert caught.value.status_code == 403
    assert providers.requests == []
    assert h.one_span(recorded).attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    decision = policy_decision(caught.value)  # the SDK's own error is recognisable as GenOps' refusal
    assert decision is not None and decision.reason_code == semconv.REASON_POLICY_DENY_MODEL


def test_low_level_post_exhausted_budget_raises_rate_limit_without_retrying(providers, governed, h):
    with governed({"GENOPS_BUDGETS": "team=0.000001/day"}) as recorded:
        with pytest.raises(openai.RateLimitError) as caught:
            _client(providers, max_retries=3).post("/chat/completions", body=BODY, cast_to=ChatCompletion)
    assert caught.value.code == "insufficient_quota"
    assert providers.requests == []
    assert policy_decision(caught.value).is_budget
    assert len(recorded.spans()) == 1, "one decision: the SDK did not retry the 429"


@pytest.fixture
def sdk_plugins(wire):
    plugins = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for plugin in plugins:
        plugin.instrument()
    yield
    for plugin in plugins:
        plugin.uninstrument()


def test_openai_resource_methods_with_both_layers_make_one_span(providers, rec, sdk_plugins, h):
    client = _client(providers)
    client.chat.completions.create(**BODY)
    for _ in client.chat.completions.create(**BODY, stream=True):
        pass
    spans = rec.spans()
    assert len(spans) == 2, [span.name for span in spans]
    assert [span.attributes["genops.attempts"] for span in spans] == [1, 1]
    assert spans[1].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_anthropic_resource_method_with_both_layers_makes_one_span(providers, rec, sdk_plugins, h):
    providers.json("/v1/messages", h.ANTHROPIC_MESSAGE)
    client = anthropic.Anthropic(api_key=KEY, base_url=providers.url)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}])
    assert message.usage.output_tokens == 6
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert span.attributes["genops.attempts"] == 1


def test_retries_inside_an_sdk_call_are_attempts_on_its_one_span(providers, rec, sdk_plugins, h):
    answers = iter([(500, {"content-type": "application/json", "retry-after-ms": "5"}, b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}')])
    fallback = providers.routes["/v1/chat/completions"]
    providers.routes["/v1/chat/completions"] = lambda request: next(answers, None) or fallback(request)
    _client(providers, max_retries=2).chat.completions.create(**BODY)
    assert len(providers.requests) == 2
    span = h.one_span(rec)
    assert span.attributes["genops.attempts"] == 2
    events = [event for event in span.events if event.name == "genops.attempt"]
    assert [dict(event.attributes) for event in events] == [{"genops.attempt.number": 1, "http.response.status_code": 500}]
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234


def test_a_wire_recorded_retry_says_which_attempt_it_is(providers, rec, h):
    answers = iter([(503, {"content-type": "application/json", "retry-after-ms": "5"}, json.dumps({"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}).encode())])
    fallback = providers.routes["/v1/chat/completions"]
    providers.routes["/v1/chat/completions"] = lambda request: next(answers, None) or fallback(request)
    _client(providers, max_retries=2).post("/chat/completions", body=BODY, cast_to=ChatCompletion)
    failed, succeeded = rec.spans()
    assert failed.attributes[semconv.ERROR_TYPE] == "503"
    assert "genops.attempt.number" not in failed.attributes
    assert succeeded.attributes["genops.attempt.number"] == 2
