"""The reservation estimate: what a call may cost, known before it is sent.

``ceil(prompt characters / 4)`` input tokens plus ``max_output_tokens`` (or
:data:`DEFAULT_OUTPUT_TOKENS`) output tokens, priced like the real call. A model that cannot be
priced has no estimate (budgets then reserve 0: they never block on a guess).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from genops_autoinstrument.governance.request import PolicyRequest, Prompt
from genops_autoinstrument.pricing.usage import Usage

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings

DEFAULT_OUTPUT_TOKENS = 1024  # reserved for output when the request sets no max_output_tokens
CHARS_PER_TOKEN = 4
UNIT_PRICE_CACHE_SIZE = 512  # (provider, model, base URL) triples kept before the cache starts over

Pricer = Callable[[str, "str | None", Usage, "str | None"], Any]


def settings_pricer(settings: "Settings") -> Pricer:
    """Prices with the governor's own ``GENOPS_PRICING_FILE``, as the engine does with its settings."""
    pricing_file = settings.pricing_file

    def price(provider: str, model: str | None, usage: Usage, api_base_url: str | None) -> Any:
        from genops_autoinstrument.pricing import prices as pricing  # looked up per call: the pricing module may be replaced at run time

        return pricing.price_call(provider, model, usage, api_base_url, pricing_file=pricing_file)

    return price


class Estimator:
    """Estimates calls in USD, with each model's unit prices looked up once."""

    def __init__(self, pricer: Pricer) -> None:
        self._pricer = pricer
        self._unit_prices: dict[tuple[str, str | None, str | None], tuple[float, float] | None] = {}

    def estimate(self, request: PolicyRequest, prompt: Prompt) -> float | None:
        """USD the call may cost, or None when the model cannot be priced."""
        key = (request.provider, request.request_model, request.api_base_url)
        if key not in self._unit_prices:
            if len(self._unit_prices) > UNIT_PRICE_CACHE_SIZE:
                self._unit_prices.clear()
            self._unit_prices[key] = self._unit_price(*key)
        unit = self._unit_prices[key]
        if unit is None:
            return None
        characters = sum(len(text) for text in prompt())
        input_tokens = math.ceil(characters / CHARS_PER_TOKEN)
        output_tokens = request.max_output_tokens if request.max_output_tokens and request.max_output_tokens > 0 else DEFAULT_OUTPUT_TOKENS
        return input_tokens * unit[0] + output_tokens * unit[1]

    def _unit_price(self, provider: str, model: str | None, api_base_url: str | None) -> tuple[float, float] | None:
        """USD per input and per output token, or None when either cannot be priced."""
        try:
            per_input = self._pricer(provider, model, Usage(input_tokens=1_000_000, output_tokens=0), api_base_url)
            per_output = self._pricer(provider, model, Usage(input_tokens=0, output_tokens=1_000_000), api_base_url)
        except Exception:
            return None
        if per_input is None or per_output is None or per_input.total is None or per_output.total is None:
            return None
        return per_input.total / 1_000_000, per_output.total / 1_000_000
