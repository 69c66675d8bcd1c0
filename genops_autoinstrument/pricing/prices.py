"""Turning token usage into USD: the user's ``GENOPS_PRICING_FILE`` first, then ``genai-prices``.

Never guesses: a model that neither source knows, a model at an unknown host (gateway, proxy,
address) that the call's provider does not publish, or a call whose tokens are unknown or
inconsistent is returned as unpriced with the reason, never as zero; a published model at an
unknown host is priced at its provider's list price and says so (``gateway``). Only the data
bundled with ``genai-prices`` is used (no network).

Token semantics: our :class:`Usage` and ``genai-prices`` agree that input tokens *include* cache
read and cache write tokens and output tokens *include* reasoning tokens; each part is billed at
its own rate when the price list has one, and at the plain input/output rate otherwise.

Hot path: the (pricing file, provider, model, base URL) -> rate lookup is cached, and the cost is
computed from the cached rate with a few exact decimal operations (a few microseconds), not with
``genai_prices.calc_price`` (about 100 µs a call); tests check both agree to the last digit.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from genops_autoinstrument import config, semconv
from genops_autoinstrument.pricing import gateway
from genops_autoinstrument.pricing.usage import Usage

log = logging.getLogger("genops")

SOURCE_GENAI_PRICES = "genai-prices"
SOURCE_PRICING_FILE = "pricing-file"

# gen_ai.provider.name (semantic conventions v1.41) -> genai-prices provider id. ``None``: no price list.
PROVIDER_IDS: dict[str, str | None] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "perplexity": "perplexity",
    "x_ai": "x-ai",
    "ibm.watsonx.ai": None,
}
# SDKs that only ever talk to their own cloud: an unrecognised base URL there is a regional, VPC or
# gateway endpoint of the same provider, not another server with prices of its own.
OWN_CLOUD_ONLY = frozenset({"aws.bedrock", "azure.ai.openai", "gcp.gen_ai", "gcp.vertex_ai", "gcp.gemini"})

_MTOK = Decimal(1_000_000)
_KCOUNT = Decimal(1_000)
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Price:
    """The cost of one call, or why it has none."""

    total: float | None
    unpriced_reason: str | None = None
    source: str | None = None

    @property
    def priced(self) -> bool:
        return self.total is not None


_UNKNOWN_MODEL = Price(None, semconv.UNPRICED_UNKNOWN_MODEL)
_UNKNOWN_USAGE = Price(None, semconv.UNPRICED_UNKNOWN_USAGE)


class _Rate:
    """USD per million tokens for each token kind; a price is a Decimal or genai-prices' TieredPrices."""

    __slots__ = ("input", "output", "cache_read", "cache_write", "reasoning", "per_request", "tiered", "source")

    def __init__(self, input: Any, output: Any, cache_read: Any, cache_write: Any, reasoning: Any, per_request: Any, source: str) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read  # None: cache reads are billed as plain input
        self.cache_write = cache_write  # None: cache writes are billed as plain input
        self.reasoning = reasoning  # None: reasoning is billed as plain output
        self.per_request = per_request  # USD per thousand requests, or None
        self.tiered = any(hasattr(p, "tiers") for p in (input, output, cache_read, cache_write, reasoning, per_request))
        self.source = source

    def cost(self, usage: Usage) -> Decimal | None:
        """The exact cost, or None when the token counts contradict each other."""
        total_in = usage.input_tokens or 0
        cache_read = usage.cache_read_tokens or 0
        cache_write = usage.cache_write_tokens or 0
        total_out = usage.output_tokens or 0
        reasoning = usage.reasoning_tokens or 0
        if min(total_in, cache_read, cache_write, total_out, reasoning) < 0:
            return None
        if cache_read + cache_write > total_in or reasoning > total_out:
            return None  # cached/reasoning parts are included in the totals, so cannot exceed them
        if self.tiered:
            at = _tier_resolver(total_in)
            p_in, p_out, p_cr, p_cw, p_rs, p_req = (
                at(p) for p in (self.input, self.output, self.cache_read, self.cache_write, self.reasoning, self.per_request)
            )
        else:
            p_in, p_out, p_cr, p_cw, p_rs, p_req = (
                self.input, self.output, self.cache_read, self.cache_write, self.reasoning, self.per_request
            )
        plain_in = total_in
        total = Decimal(0)
        if p_cr is not None and cache_read:
            plain_in -= cache_read
            total += p_cr * cache_read / _MTOK
        if p_cw is not None and cache_write:
            plain_in -= cache_write
            total += p_cw * cache_write / _MTOK
        plain_out = total_out
        if p_rs is not None and reasoning:
            plain_out -= reasoning
            total += p_rs * reasoning / _MTOK
        if plain_in < 0 or plain_out < 0:
            return None
        if p_in is not None and plain_in:
            total += p_in * plain_in / _MTOK
        if p_out is not None and plain_out:
            total += p_out * plain_out / _MTOK
        if p_req is not None:
            total += p_req / _KCOUNT
        return total


def _tier_resolver(total_input_tokens: int) -> Any:
    """genai-prices' "cliff" tiers: the highest tier whose start the call's input exceeds applies to all."""

    def at(price: Any) -> Any:
        if price is None or not hasattr(price, "tiers"):
            return price
        for tier in reversed(price.tiers):
            if total_input_tokens > tier.start:
                return tier.price
        return price.base

    return at


class _ConditionalRate:
    """A genai-prices model whose price changes with the date or time of day: resolved per call."""

    __slots__ = ("choices",)

    def __init__(self, choices: list[tuple[Any, _Rate]]) -> None:
        self.choices = choices  # (constraint or None, rate), in genai-prices' order

    def at(self, moment: datetime) -> _Rate | None:
        for constraint, rate in reversed(self.choices):
            if constraint is None or constraint.active(moment):
                return rate
        return self.choices[0][1] if self.choices else None


def _rate_from_entry(entry: Any) -> _Rate:
    return _Rate(
        entry.input_per_mtok,
        entry.output_per_mtok,
        entry.cache_read_per_mtok,
        entry.cache_write_per_mtok,
        entry.reasoning_per_mtok,
        None,
        SOURCE_PRICING_FILE,
    )


def _rate_from_model_price(model_price: Any, source: str = SOURCE_GENAI_PRICES) -> _Rate | None:
    def get(key: str) -> Any:
        try:
            return getattr(model_price, key, None)
        except Exception:
            return None

    input_price = get("input_mtok")
    if input_price is None:  # not priced by tokens (images, audio seconds…): never price it as free
        return None
    return _Rate(
        input_price,
        get("output_mtok"),
        get("cache_read_mtok"),
        get("cache_write_mtok"),
        get("output_reasoning_mtok"),
        get("requests_kcount"),
        source,
    )


class _GenaiPrices:
    """Lookups in the price data bundled with genai-prices (imported on first use)."""

    def __init__(self) -> None:
        from genai_prices.data import providers

        self.providers = list(providers)
        self.by_id = {provider.id: provider for provider in self.providers}

    def at_host(self, api_base_url: str) -> Any:
        """The provider whose API pattern matches the base URL (the server's own price list), or None."""
        url = api_base_url if "://" in api_base_url else "https://" + api_base_url
        for candidate in self.providers:
            if re.match(candidate.api_pattern, url):
                return candidate
        return None

    def named(self, provider: str, *, loosely: bool) -> Any:
        """The price list of a ``gen_ai.provider.name`` (or genai-prices id); ``loosely`` also tries
        genai-prices' fuzzy provider matching (never for a name that could be a host)."""
        if provider in PROVIDER_IDS:
            provider_id = PROVIDER_IDS[provider]
            return self.by_id.get(provider_id) if provider_id else None
        name = provider.lower().strip()
        if name in self.by_id:
            return self.by_id[name]
        if loosely:
            for candidate in self.providers:
                match = getattr(candidate, "provider_match", None)
                if match is not None and match.is_match(name):
                    return candidate
        return None

    def model(self, found: Any, model: str) -> Any:
        info = found.find_model(model, all_providers=self.providers)
        if info is None and model.startswith("models/"):  # Gemini's resource-style names
            info = found.find_model(model[len("models/"):], all_providers=self.providers)
        return info

    def rate(self, provider: str, model: str, api_base_url: str | None) -> Any:
        """The rate of ``model``: at a known host, that host's prices; else the call's provider's
        (at an unknown host, its list price: see ``gateway``); else a router-style name's provider."""
        unknown_host = False
        if api_base_url:
            host_provider = self.at_host(api_base_url)
            if host_provider is not None:  # the server's own prices, or none: no fallback to another list
                return _rate_from_info(self.model(host_provider, model), SOURCE_GENAI_PRICES)
            unknown_host = True
        own = self.named(provider, loosely=not api_base_url)
        if own is not None:
            info = self.model(own, model)
            if info is not None:
                if not unknown_host:
                    return _rate_from_info(info, SOURCE_GENAI_PRICES)
                # A single-cloud SDK's unknown endpoint is that cloud's (regional, VPC) or a gateway to it.
                if provider in OWN_CLOUD_ONLY or not gateway.open_weights(model, info):
                    return _rate_from_info(info, gateway.list_price_source(own.id))
                return None
        routed = gateway.router_name(model)
        if routed is not None and routed[0] in self.by_id:
            provider_id, bare = routed
            info = self.model(self.by_id[provider_id], bare)
            if info is not None and not gateway.open_weights(bare, info):
                return _rate_from_info(info, gateway.list_price_source(provider_id))
        return None


def _rate_from_info(info: Any, source: str) -> Any:
    """A genai-prices model's rate (or date/time-conditional rates), labelled with its cost source."""
    if info is None:
        return None
    prices = info.prices
    if not isinstance(prices, list):
        return _rate_from_model_price(prices, source)
    choices = []
    for conditional in prices:
        rate = _rate_from_model_price(conditional.prices, source)
        if rate is None:
            return None
        choices.append((conditional.constraint, rate))
    return _ConditionalRate(choices) if choices else None


_genai: _GenaiPrices | None = None
_genai_failed = False


def _genai_prices() -> _GenaiPrices | None:
    global _genai, _genai_failed
    if _genai is None and not _genai_failed:
        try:
            _genai = _GenaiPrices()
        except Exception as error:  # not installed, or too new for this Python
            _genai_failed = True
            log.warning("GenOps cannot load genai-prices (%r); calls not in GENOPS_PRICING_FILE are unpriced", error)
    return _genai


class _Pricer:
    """Prices calls for one pricing-file setting; caches each lookup."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.table: Any = None
        self.broken = False
        self._cache: dict[tuple[str, str, str | None], Any] = {}
        if path is not None:
            from genops_autoinstrument.config.pricing_file import load_pricing_file

            try:
                self.table = load_pricing_file(path)
            except config.ConfigError as error:
                # genops-run refuses to start on this; a plain-Python app keeps running, unpriced
                # (a negotiated rate silently replaced by list prices would be a wrong number).
                self.broken = True
                log.error("%s; GenOps reports every call as unpriced", error)

    def lookup(self, provider: str, model: str, api_base_url: str | None) -> Any:
        key = (provider, model, api_base_url)
        rate = self._cache.get(key, _MISSING)
        if rate is _MISSING:
            rate = self._find(provider, model, api_base_url)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = rate
        return rate

    def _find(self, provider: str, model: str, api_base_url: str | None) -> Any:
        if self.broken:
            return None
        if self.table is not None:
            entry = self.table.find(provider, model, api_base_url)
            if entry is None and (routed := gateway.router_name(model)) is not None:
                entry = self.table.find(gateway.router_provider_name(routed[0]), routed[1], api_base_url)
            if entry is not None:
                return _rate_from_entry(entry)
        genai = _genai_prices()
        return genai.rate(provider, model, api_base_url) if genai is not None else None


_MISSING = object()
_pricer: _Pricer | None = None
_pricer_lock = threading.Lock()


_CURRENT: Any = object()  # price_call's default pricing file: the current settings'


def _current_pricer(path: Any = _CURRENT) -> _Pricer:
    global _pricer
    if path is _CURRENT:
        path = config.current().pricing_file
    pricer = _pricer
    if pricer is None or pricer.path != path:
        with _pricer_lock:
            pricer = _pricer
            if pricer is None or pricer.path != path:
                pricer = _pricer = _Pricer(path)
    return pricer


def price_call(
    provider: str,
    model: str | None,
    usage: Usage | None,
    api_base_url: str | None = None,
    *,
    pricing_file: Any = _CURRENT,
    at_ns: int | None = None,
) -> Price:
    """Price one call from the model the provider says it used (the requested one otherwise).

    ``pricing_file`` defaults to the current settings' ``GENOPS_PRICING_FILE``; ``at_ns`` (the
    call's end, ``time.time_ns()``; default now) picks a time-dependent price.
    """
    if usage is None or usage.input_tokens is None:
        return _UNKNOWN_USAGE
    if not model:
        return _UNKNOWN_MODEL
    try:
        rate = _current_pricer(pricing_file).lookup(provider, model, api_base_url)
        if rate is None:
            return _UNKNOWN_MODEL
        if type(rate) is _ConditionalRate:
            moment = datetime.now(tz=timezone.utc) if at_ns is None else datetime.fromtimestamp(at_ns / 1e9, tz=timezone.utc)
            rate = rate.at(moment)
            if rate is None:
                return _UNKNOWN_MODEL
        total = rate.cost(usage)
    except Exception as error:  # never let pricing break the recording of a call
        from genops_autoinstrument.diagnostics import internal_error

        internal_error("price_call", error)
        return _UNKNOWN_MODEL
    if total is None:
        return _UNKNOWN_USAGE
    return Price(float(total), None, rate.source)


def reset_cache() -> None:
    """Forget the loaded pricing file and every cached lookup (tests, or after editing the file)."""
    global _pricer
    with _pricer_lock:
        _pricer = None


def preload() -> None:
    """Load the price data now (about 0.25 s of imports) rather than inside the first priced call."""
    _genai_prices()
    _current_pricer()
