"""What the application's own code records through the engine (the code API's engine side).

Units of work open and close here (their span, the rolled-up totals, the unit-cost metric);
costs that are not tokens and evaluation scores are recorded here; and a pre-check asks the
governor and the enclosing units' caps what a call would be told, without sending anything.
The public functions in :mod:`genops_autoinstrument.application` call these.
"""

from __future__ import annotations

from typing import Any, Mapping

from genops_autoinstrument import semconv
from genops_autoinstrument.engine.call import CallRequest, current_call_span
from genops_autoinstrument.engine.engine import Engine, error_type
from genops_autoinstrument.engine.units import Unit, current_scope, current_unit
from genops_autoinstrument.governance.decisions import ALLOWED, Decision


def attribution_now(engine: Engine, overrides: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """Environment, baggage, then the code's attribution, then ``overrides``: what a call made here gets."""
    attribution = engine.attribution()
    scope = current_scope()
    if scope is not None and scope.attribution:
        attribution = {**attribution, **scope.attribution}
    if overrides:
        attribution = {**attribution, **overrides}
    return attribution


def open_unit(engine: Engine, name: str, attribution: Mapping[str, str], max_cost: float | None) -> Unit:
    """Start a unit's span (a child of the current span) inside the enclosing unit, if any."""
    from opentelemetry.trace import SpanKind

    parent = current_unit()
    attributes: dict[str, Any] = {
        semconv.GENOPS_SPEC_VERSION_ATTR: semconv.GENOPS_SPEC_VERSION,
        semconv.GENOPS_UNIT_NAME: name,
        **attribution,
    }
    if max_cost is not None:
        attributes[semconv.GENOPS_UNIT_MAX_COST] = max_cost
    span = engine._tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
    return Unit(name, parent, max_cost, span, attribution)


def close_unit(engine: Engine, unit: Unit, error: BaseException | None = None) -> None:
    """Roll up and end the unit: every call inside it has completed (the deferred queue is
    flushed first when one of its calls is still queued), so its totals are final; then the
    unit-cost metric."""
    unit.close()  # from now on no context attributes a call to it (a task or thread that outlived the block)
    if unit.completions_pending:  # only this unit's queued calls make it wait (bounded), never others'
        engine.flush()
    span = unit.span
    span.set_attributes(
        {
            semconv.GENOPS_COST_TOTAL: unit.cost,
            semconv.GENOPS_COST_CURRENCY: "USD",
            semconv.GENOPS_UNIT_CALLS: unit.calls,
            semconv.GENOPS_UNIT_UNPRICED_CALLS: unit.unpriced_calls,
            semconv.GENOPS_UNIT_FAILED_CALLS: unit.failed_calls,
            semconv.GENOPS_UNIT_BLOCKED_CALLS: unit.blocked_calls,
            semconv.GEN_AI_USAGE_INPUT_TOKENS: unit.input_tokens,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: unit.output_tokens,
        }
    )
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute(semconv.ERROR_TYPE, error_type(error))
        span.set_status(Status(StatusCode.ERROR, str(error)[:256]))
    span.end()
    dimensions = {semconv.GENOPS_UNIT_NAME: unit.name, **engine._instruments._attribution_dimensions(unit.attribution)}
    engine._instruments.unit_cost.add(unit.cost, dimensions)


def record_cost(engine: Engine, usd: float, kind: str, overrides: Mapping[str, str] | None) -> None:
    """A cost that is not tokens: the cost metric (with its kind), the enclosing units' totals and
    caps, the budgets that match its attribution, and an event on the current span (with the
    budget reconciliation and alert events, as a model call's span gets them)."""
    from opentelemetry import trace

    attribution = attribution_now(engine, overrides)
    unit = current_unit()
    if unit is not None:
        unit.add_cost(usd)
    dimensions = {semconv.GENOPS_COST_KIND: kind, **engine._instruments._attribution_dimensions(attribution)}
    engine._instruments.cost.add(usd, dimensions)
    settlement = engine.governor.charge(attribution, usd) if engine.governor.active else None
    span = _current_span(trace, unit)
    if span is None:
        return
    event: dict[str, Any] = {semconv.GENOPS_COST_KIND: kind, semconv.GENOPS_COST_TOTAL: usd, semconv.GENOPS_COST_CURRENCY: "USD", **(overrides or {})}
    if settlement is not None:
        event.update({key: value for key, value in settlement.attributes.items() if isinstance(value, (str, int, float, bool))})
    span.add_event(semconv.EVENT_COST, event)
    for name, attributes in settlement.events if settlement is not None else ():
        span.add_event(name, attributes)


def record_eval(engine: Engine, metric: str, score: float, threshold: float | None) -> str | None:
    """An evaluation score on the current model call or unit (a span event) and as a metric
    (dimensions: the metric, the result, the attribution, the unit and the model when known);
    returns ``"pass"`` / ``"fail"`` against ``threshold`` (None without one)."""
    from opentelemetry import trace

    result = None if threshold is None else (semconv.EVAL_PASS if score >= threshold else semconv.EVAL_FAIL)
    event: dict[str, Any] = {semconv.GENOPS_EVAL_METRIC: metric, semconv.GENOPS_EVAL_SCORE: score}
    if threshold is not None:
        event[semconv.GENOPS_EVAL_THRESHOLD] = threshold
        event[semconv.GENOPS_EVAL_RESULT] = result
    unit = current_unit()
    span = _current_span(trace, unit)
    dimensions: dict[str, Any] = {semconv.GENOPS_EVAL_METRIC: metric, **engine._instruments._attribution_dimensions(attribution_now(engine))}
    if result is not None:
        dimensions[semconv.GENOPS_EVAL_RESULT] = result
    if unit is not None:
        dimensions[semconv.GENOPS_UNIT_NAME] = unit.name
    model = _span_model(span)
    if model:
        dimensions[semconv.GEN_AI_REQUEST_MODEL] = model
    if span is not None:
        span.add_event(semconv.EVENT_EVAL, event)
    engine._instruments.eval_score.record(score, dimensions)
    return result


def check(engine: Engine, model: str | None, provider: str | None, max_output_tokens: int | None) -> Decision:
    """What a call to ``model`` made here would be told by the governor (model rules, budgets) and
    by the enclosing units' caps, with nothing reserved, counted or sent.

    Without a model the question is whether anything is left: a budget or cap already used up
    says BLOCKED. A model that cannot be priced has no estimate: budgets are judged at zero (only
    a used-up budget refuses it, as it would the call) and caps let it through (as they would).
    """
    request = CallRequest(provider=provider or "", operation=semconv.OPERATION_CHAT, request_model=model, max_output_tokens=max_output_tokens)
    decision = engine.governor.check(request, attribution_now(engine)) if engine.governor.active else ALLOWED
    unit = current_unit()
    if decision.blocks or unit is None or not unit.capped:
        return decision
    if not model:
        spent = next((u for u in unit.chain() if u.max_cost is not None and u.spent() >= u.max_cost), None)
        return spent.refusal(None) if spent is not None else decision
    estimate = engine._caps().estimate(request)
    over = unit.over_cap(estimate) if estimate is not None else None
    return over.refusal(estimate) if over is not None else decision


def _current_span(trace: Any, unit: Unit | None) -> Any:
    """The model call running here (an SDK hook inside it), else the innermost unit, else the
    application's current span: GenOps' own spans are in GenOps' context, never OpenTelemetry's."""
    span = current_call_span()
    if span is not None and span.is_recording():
        return span
    if unit is not None:
        return unit.span
    span = trace.get_current_span()
    return span if span.get_span_context().is_valid and span.is_recording() else None


def _span_model(span: Any) -> str | None:
    attributes = getattr(span, "attributes", None) or {}
    model = attributes.get(semconv.GEN_AI_RESPONSE_MODEL) or attributes.get(semconv.GEN_AI_REQUEST_MODEL)
    return model if isinstance(model, str) else None
