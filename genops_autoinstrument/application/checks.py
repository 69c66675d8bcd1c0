"""``check(model)``: ask before expensive work whether a model call made here may spend.

The answer is the :class:`Decision` the call itself would get from the model rules, the budgets
(does its estimate fit what is left?) and the caps of the enclosing units of work, with nothing
reserved, counted or sent. Rate limits are not judged: the ledger cannot read a window without
counting a call into it.
"""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.application.scopes import _enabled
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.governance.decisions import ALLOWED, Decision

__all__ = ["check"]

# Model-name prefixes that say which provider's price list a model is in (gen_ai.provider.name as
# the plugins record it). Used only when the model can then be priced: a guess is never priced.
_PROVIDER_PREFIXES = (
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding-", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gcp.gen_ai"),
    ("models/gemini-", "gcp.gen_ai"),
)


def check(model: str | None = None, *, provider: str | None = None, max_output_tokens: int | None = None) -> Decision:
    """What a call to ``model`` made here would be told, without making it.

    ``decision.blocks`` is True when the call would be refused (a blocked or not-allowed model,
    a budget or a unit's cost cap it would exceed); ``decision.budget`` has the figures of the
    tightest budget. Without ``model`` it asks whether the current attribution has anything
    left to spend. The estimate is the budgets' own (``max_output_tokens`` or 1024 output
    tokens); ``provider`` picks the price list. Without it, a well-known model name (``gpt-``,
    ``o1``/``o3``/``o4``, ``claude-``, ``gemini-``) is priced as its maker's if that price is
    known; otherwise the estimate is unknown and only a budget or cap already used up refuses.
    Always ALLOWED with ``GENOPS_ENABLED=false`` or on an internal error (logged once).
    """
    _validate(model, provider, max_output_tokens)
    if not _enabled():
        return ALLOWED
    try:
        from genops_autoinstrument.engine import application
        from genops_autoinstrument.engine.runtime import get_engine

        engine = get_engine()
        if model and provider is None:
            provider = _known_provider(model, engine.settings.pricing_file)
        return application.check(engine, model, provider, max_output_tokens)
    except Exception as error:
        internal_error("check", error)
        return ALLOWED


def _validate(model: Any, provider: Any, max_output_tokens: Any) -> None:
    for name, value in (("model", model), ("provider", provider)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"check(): {name} must be a string or None, not {type(value).__name__}")
        if value == "":
            raise ValueError(f"check(): {name} must not be empty")
    if max_output_tokens is not None:
        if not isinstance(max_output_tokens, int) or isinstance(max_output_tokens, bool):
            raise TypeError(f"check(): max_output_tokens must be an int or None, not {type(max_output_tokens).__name__}")
        if max_output_tokens <= 0:
            raise ValueError(f"check(): max_output_tokens must be positive, not {max_output_tokens}")


def _known_provider(model: str, pricing_file: str | None) -> str | None:
    """The provider a well-known model name belongs to, if that provider's price for it is known."""
    from genops_autoinstrument.pricing.prices import price_call
    from genops_autoinstrument.pricing.usage import Usage

    name = model.lower()
    for prefix, provider in _PROVIDER_PREFIXES:
        if name.startswith(prefix):
            if price_call(provider, model, Usage(input_tokens=1, output_tokens=1), pricing_file=pricing_file).total is not None:
                return provider
            return None
    return None
