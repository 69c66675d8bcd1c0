"""price_call at hosts no provider is known for (gateways, proxies, addresses), with genai-prices' data."""

from __future__ import annotations

from pathlib import Path

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from genops_autoinstrument import semconv
from genops_autoinstrument.pricing.prices import Price, price_call
from genops_autoinstrument.pricing.usage import Usage

USAGE = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)
GATEWAYS = ("http://127.0.0.1:4000/v1", "http://llm-gateway.internal/v1", "https://10.1.2.3:8443/openai/v1", "http://[::1]:8080")


def list_price(model: str, provider_id: str, usage: Usage = USAGE) -> float:
    tokens = GenaiUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cache_read_tokens=usage.cache_read_tokens)
    return float(calc_price(tokens, model, provider_id=provider_id).total_price)


@pytest.mark.parametrize("base_url", GATEWAYS)
@pytest.mark.parametrize(
    ("provider", "model", "provider_id"),
    [
        ("openai", "gpt-4o-mini", "openai"),
        ("openai", "gpt-4o-mini-2024-07-18", "openai"),
        ("anthropic", "claude-haiku-4-5", "anthropic"),
        ("anthropic", "claude-sonnet-4-5-20250929", "anthropic"),
    ],
)
def test_published_model_at_an_unknown_host_costs_the_providers_list_price(base_url: str, provider: str, model: str, provider_id: str) -> None:
    price = price_call(provider, model, USAGE, base_url)
    assert price.total == list_price(model, provider_id) > 0
    assert price.source == f"genai-prices:{provider_id} list price"
    # the same tokens at the provider's own host: same amount, its own source
    assert price_call(provider, model, USAGE).source == "genai-prices"
    assert price_call(provider, model, USAGE).total == price.total


@pytest.mark.parametrize(
    ("model", "provider_id", "bare"),
    [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("anthropic/claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("gemini/gemini-2.5-flash", "google", "gemini-2.5-flash"),
        ("mistral/mistral-large-latest", "mistral", "mistral-large-latest"),
    ],
)
def test_router_style_names_resolve_to_their_provider(model: str, provider_id: str, bare: str) -> None:
    for base_url in (None, "http://litellm-proxy:4000"):
        price = price_call("openai", model, USAGE, base_url)
        assert price.total == list_price(bare, provider_id)
        assert price.source == f"genai-prices:{provider_id} list price"


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "llama-3.1-8b-instruct"),  # published by no provider under that name
        ("openai", "meta-llama/Llama-3.1-8B-Instruct"),
        ("openai", "my-company-finetune"),
        ("anthropic", "claude-internal-distill"),
        # open weights: the provider lists them, but the server may run them itself
        ("openai", "gpt-oss-20b"),
        ("openai", "openai/gpt-oss-120b"),
        ("openai", "google/gemma-3-27b-it"),
        ("openai", "mistral/mixtral-8x7b-instruct-v0.1"),
        # the server's address in place of a provider name: never a price list
        ("127.0.0.1", "gpt-4o-mini"),
        ("llm-gateway.internal", "gpt-4o-mini"),
    ],
)
def test_self_hosted_or_unpublished_models_stay_unpriced(provider: str, model: str) -> None:
    for base_url in ("http://127.0.0.1:8000/v1", "http://llm-gateway.internal/v1"):
        assert price_call(provider, model, USAGE, base_url) == Price(None, semconv.UNPRICED_UNKNOWN_MODEL)


def test_a_known_host_keeps_its_own_prices_with_no_fallback() -> None:
    groq = "https://api.groq.com/openai/v1"
    assert price_call("openai", "gpt-4o-mini", USAGE, groq).priced is False  # Groq does not serve it
    served = price_call("openai", "llama-3.3-70b-versatile", USAGE, groq)
    assert served.source == "genai-prices"
    assert served.total == float(calc_price(GenaiUsage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024), "llama-3.3-70b-versatile", provider_id="groq").total_price)
    openrouter = price_call("openai", "openai/gpt-4o-mini", USAGE, "https://openrouter.ai/api/v1")
    assert openrouter.source == "genai-prices"  # OpenRouter's own list for its own names
    assert openrouter.total == list_price("openai/gpt-4o-mini", "openrouter")


def test_single_cloud_sdk_at_an_unknown_endpoint_says_whose_list_price() -> None:
    price = price_call("gcp.gemini", "gemini-2.5-flash", USAGE, "https://gemini-proxy.internal")
    assert price.total == list_price("gemini-2.5-flash", "google")
    assert price.source == "genai-prices:google list price"


def test_the_pricing_file_prices_a_self_hosted_model_and_router_names(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[[price]]\nmodel = "llama-3.1-8b-instruct"\ninput_per_mtok = 0.1\noutput_per_mtok = 0.2\n\n'
        '[[price]]\nprovider = "openai"\nmodel = "gpt-4o-mini"\ninput_per_mtok = 0.1\noutput_per_mtok = 0.4\n',
        encoding="utf-8",
    )
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    gateway = "http://127.0.0.1:8000/v1"
    assert price_call("openai", "llama-3.1-8b-instruct", usage, gateway, pricing_file=str(path)) == Price(0.3, None, "pricing-file")
    # a negotiated rate applies to the router-style name too, before any list price
    assert price_call("openai", "openai/gpt-4o-mini", usage, gateway, pricing_file=str(path)) == Price(0.5, None, "pricing-file")
    assert price_call("openai", "gpt-4o-mini", usage, gateway, pricing_file=str(path)) == Price(0.5, None, "pricing-file")
