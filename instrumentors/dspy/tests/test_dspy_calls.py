"""dspy.LM against a local OpenAI-compatible server: one span per LM call, exact tokens and cost."""

from __future__ import annotations

import asyncio

import dspy
import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from genops_autoinstrument import semconv
from genops_autoinstrument.api import Usage
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.prices import price_call

from .conftest import API_KEY, RESPONSE_MODEL

EXPECTED_USAGE = Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=1024, reasoning_tokens=0)


def _openai_list_price() -> float:
    usage = GenaiUsage(input_tokens=1234, output_tokens=56, cache_read_tokens=1024)
    return float(calc_price(usage, RESPONSE_MODEL, provider_id="openai").total_price)


def test_a_call_is_one_span_with_provider_model_tokens_and_list_price(instrumentor, settings, make_lm, server):
    lm = make_lm(temperature=0.2, max_tokens=100)
    with capture(settings) as recorded:
        outputs = lm("What is the capital of France?")
    assert outputs == ["[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"]
    assert len(server.requests) == 1
    [span] = recorded.spans()
    attrs = dict(span.attributes)
    assert span.name == "chat gpt-4o-mini"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 100
    assert (attrs["server.address"], attrs["server.port"]) == ("127.0.0.1", server.server_address[1])
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 56
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    # 127.0.0.1 is no known OpenAI host: OpenAI's list price, and the span says so.
    assert attrs[semconv.GENOPS_COST_TOTAL] == _openai_list_price() > 0
    assert attrs[semconv.GENOPS_COST_SOURCE] == "genai-prices:openai list price"
    assert API_KEY not in str(attrs)


def test_a_predict_module_records_each_lm_call_once(instrumentor, settings, make_lm, server):
    lm = make_lm()
    with capture(settings) as recorded, dspy.context(lm=lm):
        prediction = dspy.Predict("question -> answer")(question="What is the capital of France?")
    assert prediction.answer == "Paris"
    assert len(server.requests) == 1
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_COST_TOTAL] == _openai_list_price()


def test_forward_acall_and_aforward_are_recorded_once_each(instrumentor, settings, make_lm, server):
    lm = make_lm()

    async def both() -> None:
        await lm.acall("hi")
        await lm.aforward(prompt="hi")

    with capture(settings) as recorded:
        response = lm.forward(prompt="hi")
        asyncio.run(both())
    assert response.usage["prompt_tokens"] == 1234
    assert len(server.requests) == 3
    spans = recorded.spans()
    assert len(spans) == 3
    assert {s.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] for s in spans} == {56}


def test_a_cache_hit_sends_nothing_and_records_nothing(instrumentor, settings, make_lm, server):
    lm = make_lm(cache=True)
    with capture(settings) as recorded:
        first = lm("a question only this test asks")
        second = lm("a question only this test asks")
    assert first == second
    assert len(server.requests) == 1
    assert len(recorded.spans()) == 1


def test_router_prefix_names_the_provider(instrumentor, settings, make_lm, server):
    lm = make_lm("anthropic/claude-haiku-4-5")
    with capture(settings) as recorded:
        with pytest.raises(dspy.LMError):  # DSPy speaks Anthropic's API to this OpenAI-only server
            lm("hi")
    [span] = recorded.spans()
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "claude-haiku-4-5"


def test_unpatched_when_uninstrumented(settings, make_lm, server):
    instrumentor = __import__("genops_instrumentation_dspy").DSPyInstrumentor()
    instrumentor.instrument()
    instrumentor.uninstrument()
    with capture(settings) as recorded:
        make_lm()("hi")
    assert len(server.requests) == 1
    assert recorded.spans() == []


def test_price_matches_the_pricing_layer(instrumentor, settings, make_lm, server):
    with capture(settings) as recorded:
        make_lm()("hi")
    [span] = recorded.spans()
    expected = price_call("openai", RESPONSE_MODEL, EXPECTED_USAGE, server.url)
    assert span.attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(expected.total, rel=0, abs=0)
