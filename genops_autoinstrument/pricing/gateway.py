"""Calls whose server is not a provider's known host: a gateway, a proxy, an address.

Such a server usually forwards to the provider whose API it speaks, so a model that provider
publishes (``gpt-4o-mini`` through ``http://llm-gateway.internal/v1``) is priced at that
provider's list price, and the cost source says so (:func:`list_price_source`). What a gateway
cannot tell apart from a self-hosted server is never priced that way:

- a model that provider does not publish under that name (``llama-3.1-8b-instruct``);
- an open-weights model (``gpt-oss-20b``, ``gemma-3-27b-it``, ``mixtral-8x7b``…): the server may
  well run it on its own hardware, so the provider's list price would be a guess.

Router-style names (LiteLLM's ``openai/gpt-4o-mini``, OpenRouter's ``anthropic/claude-…``) name
the provider whose list applies. The user's ``GENOPS_PRICING_FILE`` still comes first for all of it.
"""

from __future__ import annotations

import re
from typing import Any

# Router-style model prefixes (LiteLLM, OpenRouter, DSPy) -> genai-prices provider id.
ROUTER_PREFIXES: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "google": "google",
    "vertex_ai": "google",
    "mistral": "mistral",
    "mistralai": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "perplexity": "perplexity",
}

# Families whose weights are published: a gateway's answer may come from a server of its own.
_OPEN_WEIGHTS_NAME = re.compile(
    r"(?:gpt-oss|gemma|codegemma|paligemma|llama|codellama|mixtral|mistral-\d+b|mistral-nemo|"
    r"mistral-small-(?:\d+(?:\.\d+)?-)?24b|ministral-\d+b|codestral-(?:22b|mamba)|mathstral|"
    r"qwen|qwq|phi-|deepseek-r1-distill|olmo|falcon|starcoder)",
    re.IGNORECASE,
)
_OPEN_WEIGHTS_TEXT = re.compile(r"open[- ]weights?\b", re.IGNORECASE)


def list_price_source(provider_id: str) -> str:
    """``genops.cost.source`` of a call priced at ``provider_id``'s published list price because its
    server is not one of that provider's known hosts (or its name routed it there)."""
    return f"genai-prices:{provider_id} list price"


def router_name(model: str) -> tuple[str, str] | None:
    """``("openai", "gpt-4o-mini")`` for ``"openai/gpt-4o-mini"``; None when the prefix names no provider."""
    prefix, slash, rest = model.partition("/")
    if not slash or not rest:
        return None
    provider_id = ROUTER_PREFIXES.get(prefix.lower())
    return (provider_id, rest) if provider_id is not None else None


def router_provider_name(provider_id: str) -> str:
    """The ``gen_ai.provider.name`` a pricing file entry would use for a router prefix's provider."""
    return _PROVIDER_NAMES.get(provider_id, provider_id)


_PROVIDER_NAMES = {
    "google": "gcp.gemini",
    "mistral": "mistral_ai",
    "x-ai": "x_ai",
}


def open_weights(model: str, info: Any) -> bool:
    """True when a gateway may be serving ``model`` itself: the name (last path segment) is of an
    open-weights family, or genai-prices describes the model as open-weight."""
    if _OPEN_WEIGHTS_NAME.match(model.rsplit("/", 1)[-1]):
        return True
    for field in ("description", "price_comments"):
        try:
            text = getattr(info, field, None)
        except Exception:
            text = None
        if isinstance(text, str) and _OPEN_WEIGHTS_TEXT.search(text):
            return True
    return False
