"""Counted once across layers: an inference span another layer started, and the shared context key.

OpenTelemetry's GenAI group (semantic-conventions-genai #475, prototyped in
opentelemetry-python-genai #663, released in opentelemetry-util-genai 1.3b0) has the layer that
starts a model call put its inference in the context under a key; a lower layer that finds one
enriches it instead of emitting a span and metrics of its own. GenOps' own layers (framework, SDK,
wire) share GenOps' key (:func:`~genops_autoinstrument.engine.call.in_recorded_call`). Beside it:

- :func:`find_foreign`: the inference another layer started and is running now: util-genai's key
  (an ``InferenceData``) with its span current, or, for layers that have no key (util-genai before
  1.3, pydantic-ai, a framework's own client span), the current span itself when it is a recording
  CLIENT span of a GenAI inference. GenOps then enriches that span (cost, policy, attribution) and
  records only what the other layer does not (:attr:`Foreign.records_metrics`): a span from a
  known instrumentation scope (:data:`METRIC_SCOPES`) records its token and duration metrics; any
  other layer's (an application's own span, a framework's) may not, so GenOps records them.
- :func:`shared_key`: util-genai's key, when the application's process has loaded a util-genai that
  defines it (GenOps imports nothing the application did not); GenOps sets it around a call it
  starts, so util-genai instrumentations below publish into GenOps' call instead of a span of theirs.

Nothing here imports OpenTelemetry before the first recorded call.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Mapping

__all__ = ["Foreign", "adopt", "enrich", "find_foreign", "publish", "shared_key", "shared_usage"]

UTIL_GENAI_INFERENCE = "opentelemetry.util.genai._inference_invocation"  # defines the key from 1.3b0 on
INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
_OPERATION = "gen_ai.operation.name"
_OWN_PREFIX = "genops."

# Instrumentation scopes whose inference spans come with gen_ai.client.token.usage and
# gen_ai.client.operation.duration of their own (the official OpenAI instrumentation, util-genai's
# handler, pydantic-ai and logfire): GenOps records only the cost beside them. A span from any
# other scope is enriched, and GenOps records the token and duration metrics itself.
METRIC_SCOPES = frozenset({
    "opentelemetry.instrumentation.openai_v2",
    "opentelemetry.util.genai.handler",
    "pydantic-ai",
    "logfire",
})

# Inference spans another layer opens for GenOps with its metrics off (a framework GenOps hands
# providers to): GenOps records their token and duration metrics itself.
_adopted: "weakref.WeakSet[Any]" = weakref.WeakSet()


class Foreign:
    """An inference another layer started, which GenOps enriches instead of recording its own."""

    __slots__ = ("span", "data", "records_metrics")

    def __init__(self, span: Any, data: Any, records_metrics: bool) -> None:
        self.span = span
        self.data = data  # util-genai's InferenceData for the call (None: a layer without the key)
        self.records_metrics = records_metrics  # its layer records gen_ai.client.* metrics itself


def shared_key() -> tuple[str, type] | None:
    """(util-genai's inference context key, its InferenceData class) if the process loaded a
    util-genai that defines them, else None."""
    module = sys.modules.get(UTIL_GENAI_INFERENCE)
    if module is None:
        return None
    key = getattr(module, "CLIENT_INFERENCE_CONTEXT_KEY", None)
    data_class = getattr(module, "InferenceData", None)
    return (key, data_class) if isinstance(key, str) and isinstance(data_class, type) else None


def _is_inference(span: Any, strict: bool) -> bool:
    """``span`` is a GenAI inference client span (attributes unreadable: only when not ``strict``)."""
    attributes = getattr(span, "attributes", None)
    if attributes is None:
        return not strict
    if attributes.get(_OPERATION) not in INFERENCE_OPERATIONS:
        return False
    from opentelemetry.trace import SpanKind

    kind = getattr(span, "kind", SpanKind.CLIENT)
    return kind is SpanKind.CLIENT


_otel: list[Any] = []  # (get_current, get_current_span, get_value), bound on the first call


def _bind() -> list[Any]:
    from opentelemetry import context, trace

    _otel[:] = [context.get_current, trace.get_current_span, context.get_value]
    return _otel


def find_foreign() -> Foreign | None:
    """The inference another layer started and is running in this context, or None."""
    get_current, get_current_span, get_value = _otel or _bind()
    current = get_current()
    span = get_current_span(current)
    shared = shared_key()
    if shared is not None:  # util-genai's inference, sampled or not: it records its metrics either way
        data = get_value(shared[0], current)
        if isinstance(data, shared[1]) and _is_inference(span, strict=False):
            return Foreign(span, data, True)
    if not span.is_recording() or not _is_inference(span, strict=True):
        return None
    return Foreign(span, None, span not in _adopted and _scope_records_metrics(span))


def _scope_records_metrics(span: Any) -> bool:
    """``span`` comes from an instrumentation known to record its own token and duration metrics."""
    scope = getattr(span, "instrumentation_scope", None)
    return getattr(scope, "name", None) in METRIC_SCOPES


def adopt(span: Any) -> None:
    """``span`` is an inference span a layer opens with its metrics off: GenOps records them."""
    _adopted.add(span)


def enrich(span: Any, attributes: Mapping[str, Any]) -> None:
    """Add GenOps' attributes to another layer's span: ``genops.*`` always, the rest only where the
    span has none of its own (that layer owns its GenAI attributes; the last writer would win)."""
    existing = getattr(span, "attributes", None) or {}
    span.set_attributes({key: value for key, value in attributes.items() if key.startswith(_OWN_PREFIX) or key not in existing})


def publish(data: Any, response_model: str | None, response_id: str | None, finish_reasons: Any, usage: Any) -> None:
    """What GenOps read of the response, into util-genai's shared ``InferenceData``, as util-genai's
    own inner layers publish (the layer that started the call keeps its own values)."""
    values = {
        "response_model": response_model,
        "response_id": response_id,
        "response_finish_reasons": list(finish_reasons) if finish_reasons else None,
    }
    if usage is not None:
        values.update(
            usage_input_tokens=usage.input_tokens,
            usage_output_tokens=usage.output_tokens,
            usage_cache_read_input_tokens=usage.cache_read_tokens,
            usage_cache_write_input_tokens=usage.cache_write_tokens,
            usage_reasoning_output_tokens=usage.reasoning_tokens,
        )
    for name, value in values.items():
        if value is not None and hasattr(data, name):
            setattr(data, name, value)


def shared_usage(data: Any) -> Any:
    """The usage a util-genai layer below GenOps published into GenOps' call (None: none)."""
    from genops_autoinstrument.pricing.usage import Usage

    input_tokens = getattr(data, "usage_input_tokens", None)
    output_tokens = getattr(data, "usage_output_tokens", None)
    if input_tokens is None and output_tokens is None:
        return None
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=getattr(data, "usage_cache_read_input_tokens", None))


def record_cost(instruments: Any, shape: Any, attribution: Mapping[str, str], response_model: str | None, cost: float | None, context: Any) -> None:
    """The cost of a call whose token and duration metrics another layer records: genops.cost
    (or the unpriced-call counter) only, with the dimensions GenOps' own records have."""
    dims = instruments._cached_dimensions(shape, attribution, response_model)[0]
    if cost is not None:
        instruments.cost.add(cost, dims, context)
    else:
        instruments.unpriced.add(1, dims, context)
