"""price_call against the data bundled with genai-prices: exact costs, token kinds, lookups, caching."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from genops_autoinstrument import semconv
from genops_autoinstrument.pricing import prices as pricing
from genops_autoinstrument.pricing.prices import Price, price_call
from genops_autoinstrument.pricing.usage import Usage


def expected(usage: Usage, model: str, **where: str) -> float:
    """What genai-prices itself charges for this usage (its token fields, converted as we document)."""
    values = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_reasoning_tokens": usage.reasoning_tokens,
    }
    calculation = calc_price(GenaiUsage(**{k: v for k, v in values.items() if v is not None}), model, **where)
    return float(calculation.total_price)


@pytest.mark.parametrize(
    ("provider", "model", "provider_id"),
    [
        ("openai", "gpt-4o", "openai"),
        ("openai", "gpt-4o-2024-08-06", "openai"),
        ("openai", "gpt-4o-mini", "openai"),
        ("openai", "o3", "openai"),  # date-conditional price list
        ("anthropic", "claude-sonnet-4-5-20250929", "anthropic"),  # tiered prices
        ("anthropic", "claude-3-5-haiku-latest", "anthropic"),
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws"),
        ("gcp.gen_ai", "gemini-2.5-flash", "google"),
        ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "google"),
        ("azure.ai.openai", "gpt-4o", "azure"),
        ("mistral_ai", "mistral-large-latest", "mistral"),
    ],
)
def test_known_model_costs_exactly_what_genai_prices_charges(provider: str, model: str, provider_id: str) -> None:
    usage = Usage(input_tokens=1234, output_tokens=567)
    price = price_call(provider, model, usage)
    assert price.source == "genai-prices"
    assert price.unpriced_reason is None
    assert price.total == expected(usage, model, provider_id=provider_id)
    assert price.total > 0


def test_gpt_4o_hand_checked() -> None:
    # $2.50 / MTok input, $10 / MTok output in the bundled data.
    price = price_call("openai", "gpt-4o", Usage(input_tokens=1_000_000, output_tokens=100_000))
    assert price == Price(3.5, None, "genai-prices")


def test_cache_read_tokens_are_part_of_input_and_billed_at_the_cache_rate() -> None:
    # gpt-4o: input 2.5, cache read 1.25 per MTok. 1000 input of which 400 cached.
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=400)
    price = price_call("openai", "gpt-4o", usage)
    assert price.total == expected(usage, "gpt-4o", provider_id="openai")
    assert price.total == pytest.approx((600 * 2.5 + 400 * 1.25 + 500 * 10) / 1e6, abs=1e-15)
    assert price.total < price_call("openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=500)).total


def test_anthropic_cache_read_and_write() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=800, cache_read_tokens=6_000, cache_write_tokens=3_000)
    price = price_call("anthropic", "claude-sonnet-4-5", usage)
    assert price.total == expected(usage, "claude-sonnet-4-5", provider_id="anthropic")
    # 1000 plain input at $3, 6000 cache read at $0.30, 3000 cache write at $3.75, 800 output at $15.
    assert Decimal(str(price.total)) == Decimal("0.003") + Decimal("0.0018") + Decimal("0.01125") + Decimal("0.012")


def test_tier_applies_above_the_threshold() -> None:
    usage = Usage(input_tokens=250_000, output_tokens=1_000, cache_read_tokens=50_000)
    price = price_call("anthropic", "claude-sonnet-4-5", usage)
    assert price.total == expected(usage, "claude-sonnet-4-5", provider_id="anthropic")
    # Above 200k input every token moves to the higher tier: 6 / 0.6 / 22.5 per MTok.
    assert price.total == pytest.approx(200_000 * 6e-6 + 50_000 * 0.6e-6 + 1_000 * 22.5e-6)


def test_reasoning_tokens_billed_at_their_own_rate_when_the_data_has_one() -> None:
    usage = Usage(input_tokens=2_000, output_tokens=1_500, reasoning_tokens=1_000)
    price = price_call("perplexity", "sonar-deep-research", usage)
    assert price.total == expected(usage, "sonar-deep-research", provider_id="perplexity")
    # input $2, output $8, reasoning $3 per MTok: 500 visible output + 1000 reasoning.
    assert price.total == pytest.approx(2_000 * 2e-6 + 500 * 8e-6 + 1_000 * 3e-6)


def test_reasoning_tokens_are_plain_output_when_the_data_has_no_rate() -> None:
    with_reasoning = price_call("openai", "o3-mini", Usage(input_tokens=100, output_tokens=900, reasoning_tokens=700))
    without = price_call("openai", "o3-mini", Usage(input_tokens=100, output_tokens=900))
    assert with_reasoning.total == without.total == expected(Usage(input_tokens=100, output_tokens=900), "o3-mini", provider_id="openai")


def test_per_request_fee_is_included() -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    price = price_call("perplexity", "sonar", usage)
    assert price.total == expected(usage, "sonar", provider_id="perplexity")
    assert price.total == pytest.approx(200 * 1e-6 + 12 / 1000)


def test_embeddings_without_output_tokens_are_priced() -> None:
    usage = Usage(input_tokens=5_000)
    price = price_call("openai", "text-embedding-3-small", usage)
    assert price.total == expected(usage, "text-embedding-3-small", provider_id="openai") == pytest.approx(5_000 * 0.02e-6)


@pytest.mark.parametrize(
    ("provider", "model", "base_url"),
    [
        ("openai", "no-such-model-xyz", None),
        ("openai", "no-such-model-xyz", "https://api.openai.com/v1/"),
        ("some.unknown.provider", "gpt-4o", None),
        ("ibm.watsonx.ai", "ibm/granite-13b-chat-v2", None),
        # An OpenAI-compatible server nobody publishes prices for, serving a model OpenAI does not
        # publish (a gateway's gpt-4o is priced at OpenAI's list price: tests/pricing/).
        ("openai", "llama-3.1-8b-instruct", "http://localhost:8000/v1"),
        ("openai", "gpt-oss-20b", "http://127.0.0.1:11434/v1"),
        # Groq does not serve gpt-4o: no fallback to OpenAI's list.
        ("openai", "gpt-4o", "https://api.groq.com/openai/v1"),
    ],
)
def test_unknown_model_is_unpriced_never_zero(provider: str, model: str, base_url: str | None) -> None:
    price = price_call(provider, model, Usage(input_tokens=10, output_tokens=10), base_url)
    assert price == Price(None, semconv.UNPRICED_UNKNOWN_MODEL)
    assert not price.priced


def test_missing_model_is_unknown_model() -> None:
    assert price_call("openai", None, Usage(input_tokens=1, output_tokens=1)) == Price(None, "unknown_model")
    assert price_call("openai", "", Usage(input_tokens=1, output_tokens=1)) == Price(None, "unknown_model")


@pytest.mark.parametrize(
    "usage",
    [
        None,
        Usage(),
        Usage(output_tokens=10),  # input unknown: the cost is unknown
        Usage(input_tokens=10, output_tokens=5, cache_read_tokens=11),  # cached part exceeds the total
        Usage(input_tokens=10, output_tokens=5, cache_read_tokens=6, cache_write_tokens=6),
        Usage(input_tokens=10, output_tokens=5, reasoning_tokens=6),
        Usage(input_tokens=-1, output_tokens=5),
    ],
)
def test_unknown_or_inconsistent_usage_is_unpriced(usage: Usage | None) -> None:
    assert price_call("openai", "gpt-4o", usage) == Price(None, semconv.UNPRICED_UNKNOWN_USAGE)


def test_zero_tokens_cost_zero_for_a_known_model() -> None:
    assert price_call("openai", "gpt-4o", Usage(input_tokens=0, output_tokens=0)) == Price(0.0, None, "genai-prices")


def test_provider_found_from_the_base_url() -> None:
    usage = Usage(input_tokens=3_000, output_tokens=1_000)
    # The OpenAI SDK pointed at Groq reports provider "openai"; the base URL decides the price list.
    groq = price_call("openai", "llama-3.3-70b-versatile", usage, "https://api.groq.com/openai/v1")
    assert groq.total == expected(usage, "llama-3.3-70b-versatile", provider_api_url="https://api.groq.com/openai/v1")
    assert groq.total == expected(usage, "llama-3.3-70b-versatile", provider_id="groq")
    openrouter = price_call("openai", "perplexity/sonar-deep-research", usage, "https://openrouter.ai/api/v1")
    assert openrouter.total == expected(usage, "perplexity/sonar-deep-research", provider_id="openrouter")
    azure = price_call("openai", "gpt-4o", usage, "https://contoso.openai.azure.com/openai/")
    assert azure.total == expected(usage, "gpt-4o", provider_id="azure")
    bedrock = price_call("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", usage, "https://bedrock-runtime.us-east-1.amazonaws.com")
    assert bedrock.total == expected(usage, "anthropic.claude-3-5-sonnet-20240620-v1:0", provider_id="aws")


def test_gemini_resource_names_are_understood() -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    assert price_call("gcp.gen_ai", "models/gemini-2.5-flash", usage).total == expected(usage, "gemini-2.5-flash", provider_id="google")


def test_lookup_is_cached_per_provider_model_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    first = price_call("openai", "gpt-4o", usage, "https://api.openai.com/v1/")
    finds: list[tuple[str, str, str | None]] = []
    original = pricing._Pricer._find

    def counting(self: pricing._Pricer, *key: str) -> object:
        finds.append(key)
        return original(self, *key)

    monkeypatch.setattr(pricing._Pricer, "_find", counting)
    for _ in range(3):
        assert price_call("openai", "gpt-4o", usage, "https://api.openai.com/v1/") == first
    assert finds == []
    price_call("openai", "gpt-4o-mini", usage, "https://api.openai.com/v1/")
    price_call("openai", "gpt-4o-mini", usage, "https://api.openai.com/v1/")
    price_call("openai", "no-such-model", usage)
    price_call("openai", "no-such-model", usage)  # misses are cached too
    assert finds == [("openai", "gpt-4o-mini", "https://api.openai.com/v1/"), ("openai", "no-such-model", None)]


def test_an_internal_pricing_failure_is_unpriced_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, *key: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(pricing._Pricer, "_find", broken)
    assert price_call("openai", "gpt-4o", Usage(input_tokens=1, output_tokens=1)) == Price(None, "unknown_model")


@pytest.mark.parametrize(
    ("provider", "model", "base_url", "provider_id"),
    [
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "https://vpce-0a1b.bedrock-runtime.us-east-1.vpce.amazonaws.com", "aws"),
        ("azure.ai.openai", "gpt-4o", "https://llm-gateway.contoso.example/openai/", "azure"),
        ("gcp.vertex_ai", "gemini-2.5-flash", "https://vertex-proxy.internal", "google"),
    ],
)
def test_unknown_endpoint_of_a_single_cloud_sdk_keeps_that_clouds_prices(provider: str, model: str, base_url: str, provider_id: str) -> None:
    usage = Usage(input_tokens=700, output_tokens=300)
    assert price_call(provider, model, usage, base_url).total == expected(usage, model, provider_id=provider_id)


def test_unknown_endpoint_of_a_compatible_sdk_is_priced_at_the_list_price_and_says_so() -> None:
    usage = Usage(input_tokens=700, output_tokens=300)
    at_gateway = price_call("anthropic", "claude-sonnet-4-5", usage, "http://localhost:4000")
    at_anthropic = price_call("anthropic", "claude-sonnet-4-5", usage, "https://api.anthropic.com")
    assert at_gateway.total == at_anthropic.total == expected(usage, "claude-sonnet-4-5", provider_id="anthropic")
    assert (at_gateway.source, at_anthropic.source) == ("genai-prices:anthropic list price", "genai-prices")
    assert price_call("anthropic", "my-finetune", usage, "http://localhost:4000").priced is False
