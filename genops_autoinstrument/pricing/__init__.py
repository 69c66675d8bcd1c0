"""Prices: token usage (``usage``) and its cost in USD (``prices``), from genai-prices or the pricing file."""
