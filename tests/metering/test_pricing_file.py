"""GENOPS_PRICING_FILE: format, overrides of genai-prices, and a ConfigError for every bad file."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Callable

import pytest

from genops_autoinstrument.config import ConfigError
from genops_autoinstrument.pricing.prices import Price, price_call
from genops_autoinstrument.config.pricing_file import load_pricing_file, parse_pricing_file
from genops_autoinstrument.pricing.usage import Usage

NEGOTIATED = """
# Our contract with OpenAI, and the GPU box.
[[price]]
provider = "openai"
model = "gpt-4o*"
input_per_mtok = 2.0
output_per_mtok = 8.0
cache_read_per_mtok = 1.0

[[price]]
model = "llama-3.1-70b*"
api_base_url = "http://gpu-*.internal:8000/*"
input_per_mtok = 0.5
output_per_mtok = 0.75
"""


def test_hand_computed_cost_from_the_file(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(pricing_file=pricing_file(NEGOTIATED))
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=4_000)
    # 6000 × $2 + 4000 × $1 + 2000 × $8 per million = 0.012 + 0.004 + 0.016
    assert price_call("openai", "gpt-4o-2024-08-06", usage) == Price(0.032, None, "pricing-file")


def test_file_overrides_genai_prices_and_the_rest_still_comes_from_genai_prices(use_settings: Callable, pricing_file: Callable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert price_call("openai", "gpt-4o", usage) == Price(12.5, None, "genai-prices")
    use_settings(pricing_file=pricing_file(NEGOTIATED))
    assert price_call("openai", "gpt-4o", usage) == Price(10.0, None, "pricing-file")
    assert price_call("anthropic", "gpt-4o", usage).source != "pricing-file"  # provider must match
    assert price_call("openai", "gpt-4.1", usage).source == "genai-prices"


def test_self_hosted_model_priced_by_base_url(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(pricing_file=pricing_file(NEGOTIATED))
    usage = Usage(input_tokens=4_000, output_tokens=4_000)
    assert price_call("openai", "Llama-3.1-70B-Instruct", usage, "http://gpu-7.internal:8000/v1") == Price(0.005, None, "pricing-file")
    assert price_call("openai", "llama-3.1-70b-instruct", usage, "http://laptop:8000/v1") == Price(None, "unknown_model")
    assert price_call("openai", "llama-3.1-70b-instruct", usage) == Price(None, "unknown_model")


def test_cache_write_and_reasoning_rates_default_to_input_and_output(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(pricing_file=pricing_file('[[price]]\nmodel = "m"\ninput_per_mtok = 1\noutput_per_mtok = 4\n'))
    plain = price_call("x", "m", Usage(input_tokens=100, output_tokens=100))
    detailed = price_call("x", "m", Usage(input_tokens=100, output_tokens=100, cache_read_tokens=30, cache_write_tokens=20, reasoning_tokens=50))
    assert plain == detailed == Price(0.0005, None, "pricing-file")


def test_every_rate_from_the_file(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(
        pricing_file=pricing_file(
            '[[price]]\nprovider = "*"\nmodel = "m"\ninput_per_mtok = 3\noutput_per_mtok = 15\n'
            "cache_read_per_mtok = 0.3\ncache_write_per_mtok = 3.75\nreasoning_per_mtok = 10\n"
        )
    )
    usage = Usage(input_tokens=10_000, output_tokens=3_000, cache_read_tokens=6_000, cache_write_tokens=3_000, reasoning_tokens=2_000)
    # 1000×3 + 6000×0.3 + 3000×3.75 + 1000×15 + 2000×10 = 3000 + 1800 + 11250 + 15000 + 20000 = 51050 µ$
    assert price_call("anthropic", "M", usage) == Price(0.05105, None, "pricing-file")


def test_first_matching_entry_wins(use_settings: Callable, pricing_file: Callable) -> None:
    text = (
        '[[price]]\nmodel = "gpt-4o-mini"\ninput_per_mtok = 0.1\noutput_per_mtok = 0.1\n'
        '[[price]]\nmodel = "gpt-4o*"\ninput_per_mtok = 1\noutput_per_mtok = 1\n'
    )
    use_settings(pricing_file=pricing_file(text))
    usage = Usage(input_tokens=500_000, output_tokens=500_000)
    assert price_call("openai", "gpt-4o-mini", usage).total == 0.1
    assert price_call("openai", "gpt-4o", usage).total == 1.0


def test_explicit_zero_price_is_priced_at_zero(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(pricing_file=pricing_file('[[price]]\nmodel = "local-*"\ninput_per_mtok = 0\noutput_per_mtok = 0\n'))
    assert price_call("openai", "local-llm", Usage(input_tokens=9, output_tokens=9)) == Price(0.0, None, "pricing-file")


def test_json_file(use_settings: Callable, pricing_file: Callable) -> None:
    path = pricing_file(json.dumps({"price": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": 2, "output_per_mtok": 8}]}), ".json")
    table = load_pricing_file(path)
    assert [(e.model, e.input_per_mtok, e.output_per_mtok, e.cache_read_per_mtok) for e in table.entries] == [
        ("gpt-4o", Decimal("2"), Decimal("8"), Decimal("2"))
    ]
    use_settings(pricing_file=path)
    assert price_call("openai", "gpt-4o", Usage(input_tokens=1_000_000, output_tokens=0)) == Price(2.0, None, "pricing-file")


def test_file_unknown_usage_is_still_unpriced(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(pricing_file=pricing_file(NEGOTIATED))
    assert price_call("openai", "gpt-4o", None) == Price(None, "unknown_usage")


def test_file_is_loaded_once(use_settings: Callable, pricing_file: Callable) -> None:
    path = pricing_file(NEGOTIATED)
    use_settings(pricing_file=path)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert price_call("openai", "gpt-4o", usage).total == 2.0
    with open(path, "w") as handle:
        handle.write("this is not toml = = =")
    assert price_call("openai", "gpt-4o", usage).total == 2.0


def test_a_broken_file_outside_the_launcher_leaves_everything_unpriced(use_settings: Callable, pricing_file: Callable) -> None:
    use_settings(pricing_file=pricing_file('[[price]]\nmodel = "gpt-4o"\ninput_per_mtok = -1\noutput_per_mtok = 1\n'))
    assert price_call("openai", "gpt-4o", Usage(input_tokens=1, output_tokens=1)) == Price(None, "unknown_model")
    assert price_call("anthropic", "claude-sonnet-4-5", Usage(input_tokens=1, output_tokens=1)) == Price(None, "unknown_model")


# --- bad files: one ConfigError naming the variable, the place and what is accepted -----------------


def error_for(path: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_pricing_file(path)
    error = caught.value
    assert error.variable == "GENOPS_PRICING_FILE"
    assert error.value.startswith(path + ": ")
    assert "GENOPS_PRICING_FILE" in str(error)
    return error


def test_bad_toml_names_the_line(pricing_file: Callable) -> None:
    error = error_for(pricing_file('[[price]]\nmodel = "gpt-4o"\ninput_per_mtok = 2.0\noutput_per_mtok 8.0\n'))
    assert "line 4, column 17: Expected" in error.value


def test_bad_json_names_the_line(pricing_file: Callable) -> None:
    error = error_for(pricing_file('{"price": [\n  {"model": "gpt-4o",\n   "input_per_mtok": 2,,\n}]}', ".json"))
    assert "line 3, column 24" in error.value


def test_missing_model(pricing_file: Callable) -> None:
    text = '[[price]]\nmodel = "a"\ninput_per_mtok = 1\noutput_per_mtok = 1\n\n[[price]]\ninput_per_mtok = 1\noutput_per_mtok = 1\n'
    error = error_for(pricing_file(text))
    assert "price entry 2 (line 6): missing key 'model'" in error.value
    assert "model" in error.accepted


def test_missing_output_price(pricing_file: Callable) -> None:
    error = error_for(pricing_file('[[price]]\nmodel = "a"\ninput_per_mtok = 1\n'))
    assert "price entry 1 (line 1): missing key 'output_per_mtok'" in error.value


def test_negative_price_names_the_key_and_its_line(pricing_file: Callable) -> None:
    error = error_for(pricing_file('[[price]]\nmodel = "a"\ninput_per_mtok = 1\noutput_per_mtok = -2.5\n'))
    assert "price entry 1 (line 4): output_per_mtok = -2.5" in error.value
    assert ">= 0" in error.accepted


@pytest.mark.parametrize("value", ['"2.0"', "true", "nan", "inf"])
def test_non_numeric_or_non_finite_price(pricing_file: Callable, value: str) -> None:
    error = error_for(pricing_file(f'[[price]]\nmodel = "a"\ninput_per_mtok = {value}\noutput_per_mtok = 1\n'))
    assert "price entry 1 (line 3): input_per_mtok" in error.value


def test_unknown_key_names_the_key_and_its_line(pricing_file: Callable) -> None:
    error = error_for(pricing_file('[[price]]\nmodel = "a"\ninput_per_mtok = 1\noutput_per_mtok = 1\ncache_per_mtok = 1\n'))
    assert "price entry 1 (line 5): unknown key 'cache_per_mtok'" in error.value
    assert "cache_read_per_mtok" in error.accepted


def test_unknown_key_in_json_names_the_entry(pricing_file: Callable) -> None:
    entries = [{"model": "a", "input_per_mtok": 1, "output_per_mtok": 1}, {"model": "b", "input": 1, "output_per_mtok": 1}]
    error = error_for(pricing_file(json.dumps({"price": entries}), ".json"))
    assert "price entry 2: unknown key 'input'" in error.value


def test_negative_price_in_json(pricing_file: Callable) -> None:
    error = error_for(pricing_file(json.dumps({"price": [{"model": "a", "input_per_mtok": -1, "output_per_mtok": 1}]}), ".json"))
    assert "price entry 1: input_per_mtok = -1" in error.value


@pytest.mark.parametrize(
    ("text", "suffix", "fragment"),
    [
        ('[[prices]]\nmodel = "a"\n', ".toml", "unknown top-level key 'prices'"),
        ('price = "x"\n', ".toml", '"price" is not a list'),
        ("[1, 2]", ".json", "the top level is a list"),
        ('{"price": ["gpt-4o"]}', ".json", "price entry 1: is a str"),
        ('[[price]]\nmodel = ""\ninput_per_mtok = 1\noutput_per_mtok = 1\n', ".toml", "price entry 1 (line 2): model = ''"),
        ('[[price]]\nmodel = "a"\nprovider = 3\ninput_per_mtok = 1\noutput_per_mtok = 1\n', ".toml", "(line 3): provider = 3"),
    ],
)
def test_malformed_structure(pricing_file: Callable, text: str, suffix: str, fragment: str) -> None:
    assert fragment in error_for(pricing_file(text, suffix)).value


def test_empty_file_is_valid_and_prices_nothing_itself(use_settings: Callable, pricing_file: Callable) -> None:
    path = pricing_file("# no negotiated prices yet\n")
    assert load_pricing_file(path).entries == ()
    use_settings(pricing_file=path)
    assert price_call("openai", "gpt-4o", Usage(input_tokens=1_000_000, output_tokens=0)).source == "genai-prices"


def test_parse_pricing_file_validates_for_the_launcher(pricing_file: Callable, tmp_path) -> None:
    good = pricing_file(NEGOTIATED)
    assert parse_pricing_file("GENOPS_PRICING_FILE", f"  {good} ") == good
    assert parse_pricing_file("GENOPS_PRICING_FILE", "  ") is None
    with pytest.raises(ConfigError):
        parse_pricing_file("GENOPS_PRICING_FILE", str(tmp_path / "missing.toml"))
    bad = pricing_file('[[price]]\nmodel = "a"\n')
    with pytest.raises(ConfigError, match="missing key 'input_per_mtok'"):
        parse_pricing_file("GENOPS_PRICING_FILE", bad)
