"""Provider name, server address and pricing base URL for OpenAI, Azure and compatible servers; cost."""

from __future__ import annotations

import httpx
import openai
import pytest
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price

from genops_autoinstrument import semconv
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_azure_client(rec, server, h):
    server.json("/openai/deployments/my-gpt4o-mini/chat/completions", h.chat_completion())
    client = openai.AzureOpenAI(
        api_key=h.API_KEY,
        api_version="2024-10-21",
        azure_endpoint="https://contoso-eastus.openai.azure.com",
        http_client=httpx.Client(transport=httpx.MockTransport(server.handler)),
        max_retries=0,
    )
    client.chat.completions.create(model="my-gpt4o-mini", messages=MESSAGES)
    assert server.requests[0]["host"] == "contoso-eastus.openai.azure.com"
    span = h.one_span(rec)
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert attrs[semconv.SERVER_ADDRESS] == "contoso-eastus.openai.azure.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "my-gpt4o-mini"
    assert "api-key" not in h.all_attribute_text(span) and h.API_KEY not in h.all_attribute_text(span)


def test_azure_v1_base_url_with_plain_client(rec, server, h):
    server.json("/openai/v1/chat/completions", h.chat_completion())
    server.client(base_url="https://contoso.openai.azure.com/openai/v1/").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert h.one_span(rec).attributes[semconv.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"


@pytest.mark.parametrize(
    ("base_url", "provider", "address", "port"),
    [
        ("https://api.groq.com/openai/v1", "groq", "api.groq.com", 443),
        ("https://api.deepseek.com/v1", "deepseek", "api.deepseek.com", 443),
        ("https://api.mistral.ai/v1", "mistral_ai", "api.mistral.ai", 443),
        ("https://api.x.ai/v1", "x_ai", "api.x.ai", 443),
        ("https://openrouter.ai/api/v1", "openrouter", "openrouter.ai", 443),
        ("https://api.together.xyz/v1", "together_ai", "api.together.xyz", 443),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini", "generativelanguage.googleapis.com", 443),
        ("https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi", "gcp.vertex_ai", "us-central1-aiplatform.googleapis.com", 443),
        ("https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1", "aws.bedrock", "bedrock-runtime.us-west-2.amazonaws.com", 443),
        ("https://contoso.services.ai.azure.com/openai/v1", "azure.ai.openai", "contoso.services.ai.azure.com", 443),
        # Gateways, proxies and self-hosted servers: the API's own provider, the host in server.address.
        ("http://localhost:11434/v1", "openai", "localhost", 11434),
        ("https://llm.internal.example:8443/v1", "openai", "llm.internal.example", 8443),
        ("http://llm-gateway.internal/v1", "openai", "llm-gateway.internal", 80),
        ("http://10.1.2.3:4000/v1", "openai", "10.1.2.3", 4000),
        ("http://[::1]:8000/v1", "openai", "::1", 8000),
    ],
)
def test_compatible_servers(rec, server, h, monkeypatch, base_url, provider, address, port):
    seen = []
    from genops_autoinstrument.engine import engine

    monkeypatch.setattr(engine, "price_call", lambda *args, **kwargs: seen.append(args) or price_call(*args, **kwargs))
    path = httpx.URL(base_url).path.rstrip("/") + "/chat/completions"
    server.json(path, h.chat_completion())
    server.client(base_url=base_url).chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attrs[semconv.SERVER_ADDRESS] == address
    assert attrs[semconv.SERVER_PORT] == port
    assert seen[0][0] == provider
    assert seen[0][3] == str(httpx.URL(base_url.rstrip("/") + "/"))


def test_credentials_in_base_url_are_not_recorded(rec, server, h, monkeypatch):
    seen = []
    from genops_autoinstrument.engine import engine

    monkeypatch.setattr(engine, "price_call", lambda *args, **kwargs: seen.append(args) or price_call(*args, **kwargs))
    server.json("/v1/chat/completions", h.chat_completion())
    server.client(base_url="https://user:s3cret@proxy.example/v1").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = h.one_span(rec)  # the call's completion (and pricing) has run
    assert "s3cret" not in seen[0][3] and seen[0][3] == "https://proxy.example/v1/"
    assert "s3cret" not in h.all_attribute_text(span)


def _priced() -> bool:
    return price_call("openai", "gpt-4o-mini", Usage(input_tokens=10, output_tokens=10)).priced


@pytest.mark.skipif(not _priced(), reason="pricing module not implemented yet")
def test_cost_from_genai_prices(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = h.one_span(rec).attributes
    expected = calc_price(PricesUsage(input_tokens=1234, cache_read_tokens=1024, output_tokens=56), model_ref="gpt-4o-mini-2024-07-18", provider_id="openai").total_price
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
    assert attrs[semconv.GENOPS_COST_TOTAL] == pytest.approx(float(expected), rel=1e-12)
    assert attrs[semconv.GENOPS_COST_TOTAL] > 0
    assert attrs[semconv.GENOPS_COST_CURRENCY] == "USD"
    assert attrs[semconv.GENOPS_COST_MODEL] == "gpt-4o-mini-2024-07-18"


@pytest.mark.skipif(not _priced(), reason="pricing module not implemented yet")
def test_streamed_call_is_priced(rec, server, h):
    server.chat_stream()
    list(server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    expected = calc_price(PricesUsage(input_tokens=21, cache_read_tokens=0, output_tokens=4), model_ref="gpt-4o-mini-2024-07-18", provider_id="openai").total_price
    assert h.one_span(rec).attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.skipif(not _priced(), reason="pricing module not implemented yet")
@pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="the Responses API arrived in openai 1.66")
def test_responses_reasoning_call_is_priced(rec, server, h):
    server.json("/v1/responses", {
        "id": "resp_1", "object": "response", "created_at": 1741476542, "status": "completed", "model": "o4-mini-2025-04-16", "output": [],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
        "usage": {"input_tokens": 2036, "input_tokens_details": {"cached_tokens": 1920}, "output_tokens": 387, "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 2423},
    })
    server.client().responses.create(model="o4-mini", input="hi")
    expected = calc_price(PricesUsage(input_tokens=2036, cache_read_tokens=1920, output_tokens=387), model_ref="o4-mini-2025-04-16", provider_id="openai").total_price
    assert h.one_span(rec).attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:4000/v1", "http://llm-gateway.internal/v1"])
def test_gateway_stream_names_the_api_provider_in_spans_and_metrics(rec, server, h, base_url):
    """A gateway by address or unknown host: provider "openai" (bounded metric cardinality), the host
    in server.address, the stream's usage still read."""
    host = httpx.URL(base_url).host
    server.chat_stream()
    chunks = list(server.client(base_url=base_url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(chunks) == 6 and server.requests[0]["host"] == host
    attrs = h.one_span(rec).attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.SERVER_ADDRESS] == host
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    points = [attributes for series in rec.metrics().values() for attributes, _ in series]
    assert points and all(p.get(semconv.GEN_AI_PROVIDER_NAME) in (None, "openai") for p in points)
    assert any(p.get(semconv.GEN_AI_PROVIDER_NAME) == "openai" for p in points)
