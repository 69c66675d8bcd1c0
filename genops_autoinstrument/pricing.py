"""Turning token usage into USD: ``genai-prices`` data plus the user's ``GENOPS_PRICING_FILE``.

Never guesses: a model that neither source knows, or a call whose tokens are unknown, is
returned as unpriced with the reason, not as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import semconv
from .usage import Usage


@dataclass(frozen=True)
class Price:
    """The cost of one call, or why it has none."""

    total: float | None
    unpriced_reason: str | None = None
    source: str | None = None

    @property
    def priced(self) -> bool:
        return self.total is not None


def price_call(provider: str, model: str | None, usage: Usage | None, api_base_url: str | None = None) -> Price:
    """Price one call (placeholder until the pricing module lands: everything is unpriced)."""
    if usage is None or usage.input_tokens is None and usage.output_tokens is None:
        return Price(None, semconv.UNPRICED_UNKNOWN_USAGE)
    return Price(None, semconv.UNPRICED_UNKNOWN_MODEL)
