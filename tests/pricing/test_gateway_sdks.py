"""The OpenAI and Anthropic SDKs pointed at a gateway by address (127.0.0.1): provider names
``openai`` / ``anthropic`` (the host stays in ``server.address``), costs equal to genai-prices'
list price for those providers, and budgets enforced on them."""

from __future__ import annotations

from typing import Iterator

import anthropic
import openai
import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from genops_autoinstrument import PolicyViolation, config, semconv
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_anthropic import AnthropicInstrumentor
from genops_instrumentation_openai import OpenAIInstrumentor

KEY = "sk-test-DO-NOT-RECORD-1234567890"
PROMPT = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def instrumented() -> Iterator[None]:
    plugins = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for plugin in plugins:
        plugin.instrument()
    yield
    for plugin in plugins:
        plugin.uninstrument()


def test_openai_sdk_at_an_address_is_openai_at_its_list_price(instrumented, gateway):
    client = openai.OpenAI(api_key=KEY, base_url=f"{gateway.url}/v1", max_retries=0)
    with capture(config.load({})) as recorded:
        client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    [span] = recorded.spans()
    attrs = dict(span.attributes)
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert (attrs["server.address"], attrs["server.port"]) == ("127.0.0.1", gateway.server_address[1])
    usage = GenaiUsage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)
    assert attrs[semconv.GENOPS_COST_TOTAL] == float(calc_price(usage, "gpt-4o-mini", provider_id="openai").total_price) > 0
    assert attrs[semconv.GENOPS_COST_SOURCE] == "genai-prices:openai list price"


def test_anthropic_sdk_at_an_address_is_anthropic_at_its_list_price(instrumented, gateway):
    client = anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0)
    with capture(config.load({})) as recorded:
        client.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=PROMPT)
    [span] = recorded.spans()
    attrs = dict(span.attributes)
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs["server.address"] == "127.0.0.1"
    usage = GenaiUsage(input_tokens=900, output_tokens=250)
    assert attrs[semconv.GENOPS_COST_TOTAL] == float(calc_price(usage, "claude-haiku-4-5", provider_id="anthropic").total_price) > 0
    assert attrs[semconv.GENOPS_COST_SOURCE] == "genai-prices:anthropic list price"


def test_self_hosted_model_behind_the_same_gateway_stays_unpriced(instrumented, gateway):
    client = openai.OpenAI(api_key=KEY, base_url=f"{gateway.url}/v1", max_retries=0)
    with capture(config.load({})) as recorded:
        client.chat.completions.create(model="llama-3.1-8b-instruct", messages=PROMPT)
    [span] = recorded.spans()
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
    assert span.attributes[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_MODEL


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_budget_holds_calls_through_the_gateway(instrumented, gateway, sdk):
    settings = config.load({"GENOPS_TEAM": "search", "GENOPS_BUDGETS": "team=0.002/day", "GENOPS_LEDGER_URL": "memory://"})
    if sdk == "openai":
        client = openai.OpenAI(api_key=KEY, base_url=f"{gateway.url}/v1", max_retries=0)
        call = lambda: client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=300)  # noqa: E731
    else:
        client = anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0)
        call = lambda: client.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=PROMPT)  # noqa: E731
    with capture(settings) as recorded:
        with pytest.raises(PolicyViolation) as raised:
            for _ in range(50):
                call()
    assert raised.value.decision.is_budget
    sent = len(gateway.requests)
    assert 1 <= sent < 50, "the budget saw the gateway's calls and refused one before it was sent"
    spans = recorded.spans()
    assert len(spans) == sent + 1
    assert all(s.attributes[semconv.GENOPS_COST_TOTAL] > 0 for s in spans[:-1])
