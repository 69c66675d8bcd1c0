"""Who a call is for: the environment's ``genops.*`` attribution, overridden by W3C baggage.

Read on the application's thread at the start of every call, so the common case (no baggage at
all) costs one context lookup and returns the environment's own mapping.
"""

from __future__ import annotations

from typing import Any, Mapping

from genops_autoinstrument import config, semconv

_BAGGAGE_KEYS = frozenset(semconv.ATTRIBUTION_KEYS)


class Attribution:
    """The process's attribution (``GENOPS_TEAM``, ``GENOPS_PROJECT``, …) and its metric form."""

    def __init__(self, settings: config.Settings) -> None:
        from opentelemetry import baggage, context

        # Shared by every call without baggage; read-only. Instruments cache dimensions by its identity.
        self.environment: dict[str, str] = dict(settings.attribution)
        self._customer_dimension = settings.metrics_customer_dimension
        self._get_context = context.get_current
        self._baggage: Any = baggage
        self._baggage_key = getattr(baggage, "_BAGGAGE_KEY", None)  # the context key baggage lives under

    def current(self) -> Mapping[str, str]:
        """Environment attribution, overridden by W3C baggage entries with the same ``genops.*`` keys."""
        context = self._get_context()
        if self._baggage_key is not None and self._baggage_key not in context:
            return self.environment  # no baggage at all (the common case): nothing to merge
        entries = self._baggage.get_all(context)
        if not entries:
            return self.environment
        merged = dict(self.environment)
        for key, value in entries.items():
            if key in _BAGGAGE_KEYS and isinstance(value, str) and value:
                merged[key] = value
        return merged

    def dimensions(self, attribution: Mapping[str, str]) -> Mapping[str, str]:
        """Attribution as metric dimensions: without the customer when GENOPS_METRICS_CUSTOMER_DIMENSION=false."""
        if self._customer_dimension or semconv.GENOPS_CUSTOMER_ID not in attribution:
            return attribution
        return {key: value for key, value in attribution.items() if key != semconv.GENOPS_CUSTOMER_ID}
