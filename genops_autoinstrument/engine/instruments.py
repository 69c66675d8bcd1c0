"""GenOps' metric instruments, and recording a finished, failed or decided call into them.

The records run on the deferred thread (or inline, see the engine's ``defer``), with the context
of the call's end (for exemplars). Dimensions are built once per distinct call shape and reused.
"""

from __future__ import annotations

from typing import Any, Mapping

from genops_autoinstrument import semconv
from genops_autoinstrument.engine.attribution import Attribution
from genops_autoinstrument.governance.decisions import Decision

# (operation, provider, request model, server address): what the metric dimensions need from a request.
Shape = tuple[str, str, str | None, str | None]
_Dimensions = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]

_DIMENSION_CACHE_SIZE = 512
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


class Instruments:
    """The cost, unpriced-call and decision counters and the token and duration histograms of one meter."""

    def __init__(self, meter: Any, attribution: Attribution) -> None:
        self.cost = meter.create_counter(semconv.METRIC_COST, unit="USD", description="Cost of GenAI calls in USD")
        self.unpriced = meter.create_counter(semconv.METRIC_UNPRICED_CALLS, unit="{call}", description="GenAI calls that could not be priced")
        self.decisions = meter.create_counter(semconv.METRIC_POLICY_DECISIONS, unit="{decision}", description="GenOps policy decisions")
        self.tokens = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.unit_cost = meter.create_counter(semconv.METRIC_UNIT_COST, unit="USD", description="Cost of each unit of work (genops_autoinstrument.track) in USD")
        self.eval_score = meter.create_histogram(semconv.METRIC_EVAL_SCORE, unit="1", description="Evaluation scores recorded with genops_autoinstrument.record_eval")
        self._environment = attribution.environment
        self._attribution_dimensions = attribution.dimensions
        self._dimension_cache: dict[tuple[Any, ...], _Dimensions] = {}

    def record_decision(self, decision: Decision, provider: str, attribution: Mapping[str, str], context: Any) -> None:
        dims = {
            semconv.GENOPS_POLICY_RESULT: decision.result,
            semconv.GEN_AI_PROVIDER_NAME: provider,
        }
        if decision.policy_name:
            dims[semconv.GENOPS_POLICY_NAME] = decision.policy_name
        if decision.reason_code:
            dims[semconv.GENOPS_POLICY_REASON_CODE] = decision.reason_code
        dims.update(self._attribution_dimensions(attribution))
        self.decisions.add(1, dims, context)

    def record_finished(
        self,
        shape: Shape,
        attribution: Mapping[str, str],
        response_model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost: float | None,
        duration: float,
        context: Any,
    ) -> None:
        dims, input_dims, output_dims = self._cached_dimensions(shape, attribution, response_model)
        if input_tokens is not None:
            self.tokens.record(input_tokens, input_dims, context)
        if output_tokens is not None:
            self.tokens.record(output_tokens, output_dims, context)
        if cost is not None:
            self.cost.add(cost, dims, context)
        else:
            self.unpriced.add(1, dims, context)
        self.duration.record(duration, dims, context)

    def record_failed(self, shape: Shape, attribution: Mapping[str, str], error_type: str, duration: float, context: Any) -> None:
        dims = {**self._cached_dimensions(shape, attribution, None)[0], semconv.ERROR_TYPE: error_type}
        self.duration.record(duration, dims, context)

    def _cached_dimensions(self, shape: Shape, attribution: Mapping[str, str], model: str | None) -> _Dimensions:
        """(dimensions, with token type input, with token type output), built once per distinct
        call shape. The dicts are shared: never mutated once built."""
        key = (shape, model, None if attribution is self._environment else tuple(attribution.items()))
        cached = self._dimension_cache.get(key)
        if cached is not None:
            return cached
        operation, provider, request_model, server_address = shape
        dims: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_PROVIDER_NAME: provider,
        }
        if model:
            dims[semconv.GEN_AI_RESPONSE_MODEL] = model
        if request_model:
            dims[semconv.GEN_AI_REQUEST_MODEL] = request_model
        if server_address:
            dims[semconv.SERVER_ADDRESS] = server_address
        dims.update(self._attribution_dimensions(attribution))
        cached = (
            dims,
            {**dims, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT},
            {**dims, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT},
        )
        if len(self._dimension_cache) >= _DIMENSION_CACHE_SIZE:
            self._dimension_cache.clear()  # many distinct attributions (baggage): stay bounded
        self._dimension_cache[key] = cached
        return cached
