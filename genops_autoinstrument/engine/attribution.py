"""Who a call is for: the environment's ``genops.*`` attribution, overridden by the W3C baggage
entries of the keys ``GENOPS_BAGGAGE_KEYS`` trusts.

Baggage arrives from whoever sends the request, so it attributes nothing unless a key is listed
(an edge gateway then strips or overwrites it); of duplicate entries the first wins (see
:mod:`~genops_autoinstrument.engine.baggage`). Read on the application's thread at the start of
every call: with no key trusted baggage is not looked at, and with some the common case (no
baggage at all) costs one context lookup and returns the environment's own mapping.
"""

from __future__ import annotations

from typing import Any, Mapping

from genops_autoinstrument import config, semconv


class Attribution:
    """The process's attribution (``GENOPS_TEAM``, ``GENOPS_PROJECT``, …) and its metric form."""

    def __init__(self, settings: config.Settings) -> None:
        # Shared by every call without baggage; read-only. Instruments cache dimensions by its identity.
        self.environment: dict[str, str] = dict(settings.attribution)
        self._customer_dimension = settings.metrics_customer_dimension
        # In a fixed order, so that equal attributions give equal metric dimension keys.
        self._trusted = tuple(key for key in semconv.ATTRIBUTION_KEYS if key in settings.baggage_keys)
        if not self._trusted:
            self.current = self._environment_only  # type: ignore[method-assign]
            return
        from opentelemetry import baggage, context

        from genops_autoinstrument.engine import baggage as first_entries

        first_entries.install()  # the launcher's hook may not have run (imported earlier, no launcher)
        self._first_key = first_entries.FIRST_ENTRIES
        self._get_context = context.get_current
        self._get_all: Any = baggage.get_all
        self._baggage_key = getattr(baggage, "_BAGGAGE_KEY", None)  # the context key baggage lives under

    def _environment_only(self) -> Mapping[str, str]:
        return self.environment

    def current(self) -> Mapping[str, str]:
        """Environment attribution, overridden by the baggage entries of the trusted keys."""
        context = self._get_context()
        if self._baggage_key is not None:
            entries = context.get(self._baggage_key)
            if not entries:
                return self.environment  # no baggage at all (the common case): nothing to merge
        else:  # pragma: no cover - OpenTelemetry moved its private key
            entries = self._get_all(context)
        first = context.get(self._first_key)
        merged = None
        for key in self._trusted:
            value = entries.get(key)
            if first is not None:
                remembered = first.get(key)
                # The header's first value, while the baggage still holds what the header gave.
                if remembered is not None and value == remembered[1]:
                    value = remembered[0]
            if isinstance(value, str) and value:
                if merged is None:
                    merged = dict(self.environment)
                merged[key] = value
        return merged if merged is not None else self.environment

    def dimensions(self, attribution: Mapping[str, str]) -> Mapping[str, str]:
        """Attribution as metric dimensions: without the customer when GENOPS_METRICS_CUSTOMER_DIMENSION=false."""
        if self._customer_dimension or semconv.GENOPS_CUSTOMER_ID not in attribution:
            return attribution
        return {key: value for key, value in attribution.items() if key != semconv.GENOPS_CUSTOMER_ID}
