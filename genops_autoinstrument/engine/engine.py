"""The call lifecycle behind :mod:`genops_autoinstrument.engine.call`: begin, finish, fail, complete, settle.

One engine per process. It turns a plugin's :class:`CallRequest` and response facts into the span,
the metrics, the cost and the budget reconciliation, and asks the governor for a decision first.
Who a call is for comes from :mod:`~genops_autoinstrument.engine.attribution`; the metrics are
recorded by :mod:`~genops_autoinstrument.engine.instruments`.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Mapping, Sequence

from genops_autoinstrument import config, semconv
from genops_autoinstrument.engine.attribution import Attribution
from genops_autoinstrument.engine.call import Call, CallRequest
from genops_autoinstrument.engine.deferred import FLUSH_SECONDS, deferred_queue
from genops_autoinstrument.engine import inference
from genops_autoinstrument.engine.instruments import Instruments, Shape
from genops_autoinstrument.engine.sinks import Sink, Sinks, UnitTracer
from genops_autoinstrument.engine.units import CostCaps, Unit, current_scope, unit_context
from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.governor import Governor, Ticket, build_governor
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

_NO_TICKET = Ticket()  # what an inactive governor would return; read-only, shared by every call
_perf_counter = time.perf_counter
_time_ns = time.time_ns


class Engine:
    """Records calls into OpenTelemetry; built lazily from the process settings.

    Each call is recorded into the application's global providers when it has real ones, else into
    GenOps' own (:mod:`~genops_autoinstrument.engine.sinks`), or always into the providers given
    here. The span starts on the application's thread, with the application's current span (or
    the innermost unit of work) as its parent; it is never made the current span, so the SDK
    sends and traces exactly what it does bare. Unless ``defer=False``, the rest goes to
    :data:`~genops_autoinstrument.engine.deferred.deferred_queue`: the metrics always, and the
    span's completion (pricing, response attributes, the end, with the call's end time) when no
    budget or rule is in force (a reconciliation must be done before the next decision) and the
    tracer provider completes queued spans before exporting (see
    :func:`~genops_autoinstrument.engine.deferred.add_span_queue_flusher`). Values, dimensions,
    context and timestamps are the same either way.
    """

    def __init__(
        self,
        settings: config.Settings | None = None,
        governor: Governor | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        defer: bool = True,
    ) -> None:
        from opentelemetry import context
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.settings = settings or config.current()
        self.governor = governor or build_governor(self.settings)
        self._get_context = context.get_current
        self._kind = SpanKind.CLIENT
        self._status_cls = Status
        self._error_code = StatusCode.ERROR
        attribution = Attribution(self.settings)
        self._sinks = Sinks(attribution, tracer_provider, meter_provider, defer)
        self._sink = self._sinks.current  # the sink of a call made now
        bind_meter = getattr(self.governor, "bind_meter", None)
        if bind_meter is not None:  # the governor's own instruments (genops.ledger.failures), where a call made then records
            bind_meter(self._sinks.following_meter())
        self.attribution: Callable[[], Mapping[str, str]] = attribution.current
        self._capture_content = self.settings.capture_content
        self._pricing_file = self.settings.pricing_file
        self._cost_caps: CostCaps | None = None  # built on the first call under a unit's cost cap
        self._summary = None
        if self.settings.summary:
            from genops_autoinstrument.engine.summary import Summary

            self._summary = Summary.install()

    @property
    def _tracer(self) -> UnitTracer:
        """GenOps' tracer for a span started now (units of work open theirs with it)."""
        return self._sink().tracer

    def providers(self) -> tuple[Any, Any]:
        """The (tracer provider, meter provider) a call made now is recorded into: the ones given
        here, else the application's global ones when it has real ones, else GenOps' own."""
        return self._sinks.providers()

    @property
    def _instruments(self) -> Instruments:
        """GenOps' metric instruments for a record made now (the code API's costs, units, evals)."""
        return self._sink().instruments

    @property
    def _tokens(self) -> Any:
        """The token-usage histogram (tests wrap it to see on which thread it records)."""
        return self._instruments.tokens

    @_tokens.setter
    def _tokens(self, histogram: Any) -> None:
        self._instruments.tokens = histogram

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self, request: CallRequest, start: float) -> tuple[Call, Decision | None]:
        sink = self._sinks.own() if request.own_telemetry else self._sink()
        attribution = self.attribution()
        scope = current_scope()
        unit: Unit | None = None
        if scope is not None:  # the application's code API: attribution and units of work
            if scope.attribution:
                attribution = {**attribution, **scope.attribution}
            unit = scope.unit
        governed = self.governor.active
        ticket = self.governor.decide(request, attribution) if governed else _NO_TICKET
        held = None
        if unit is not None and unit.capped and not ticket.decision.blocks:
            ticket, held = self._caps().hold(request, unit, ticket)
            governed = True
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: request.operation,
            semconv.GEN_AI_PROVIDER_NAME: request.provider,
            semconv.GENOPS_SPEC_VERSION_ATTR: semconv.GENOPS_SPEC_VERSION,
        }
        if request.request_model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = request.request_model
        if request.server_address:
            attributes[semconv.SERVER_ADDRESS] = request.server_address
        if request.server_port:
            attributes[semconv.SERVER_PORT] = request.server_port
        if request.streaming:
            attributes[semconv.GEN_AI_REQUEST_STREAM] = True
        for key, value in request.parameters.items():
            if value is not None:
                attributes[key] = value
        attributes.update(attribution)
        if ticket.attributes:
            attributes.update(ticket.attributes)
        if self._capture_content and request.input_messages is not None:
            content = _content(request.input_messages)
            if content is not None:
                attributes[semconv.GEN_AI_INPUT_MESSAGES] = content
        name = f"{request.operation} {request.request_model}" if request.request_model else request.operation
        parent = None  # the application's current span
        if unit is not None:
            attributes[semconv.GENOPS_UNIT_NAME] = unit.name
            parent = unit_context(unit)
        foreign = inference.find_foreign()  # a layer above started this inference: enrich its span
        if foreign is not None:
            span = foreign.span
            inference.enrich(span, attributes)
        else:
            span = sink.tracer.tracer.start_span(name, context=parent, kind=self._kind, attributes=attributes)
        for event_name, event_attributes in ticket.events:
            span.add_event(event_name, event_attributes)
        call = Call(request, self, span, attribution, ticket, start, sink)
        call._foreign = foreign
        if unit is not None:
            call._unit = unit
            call._held = held
        if not governed:
            return call, None  # nothing decided, nothing can block
        decision = ticket.decision
        sink.submit(sink.record_decision, decision, request.provider, attribution, self._get_context())
        if decision.blocks:
            call._ended = True
            self._end_blocked(call, decision)
        return call, decision

    def _caps(self) -> CostCaps:
        caps = self._cost_caps
        if caps is None:
            caps = self._cost_caps = CostCaps(self.settings)
        return caps

    def _end_blocked(self, call: Call, decision: Decision) -> None:
        span = call._span
        if call._unit is not None:
            call._unit.blocked()
        if call._foreign is not None:  # its layer records the refusal as the error it sees (status, end)
            inference.enrich(span, {semconv.ERROR_TYPE: decision.reason_code or "PolicyViolation"})
            self._settle(call, None, ran=False)
            return
        span.set_attribute(semconv.ERROR_TYPE, decision.reason_code or "PolicyViolation")
        span.set_status(self._status_cls(self._error_code, decision.message or "blocked by GenOps policy"))
        self._settle(call, None, ran=False)
        span.end()

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every call finished so far has its span ended and its metrics recorded."""
        return deferred_queue.flush(timeout)

    def finish(
        self,
        call: Call,
        response_model: str | None,
        response_id: str | None,
        finish_reasons: Sequence[str] | None,
        usage: Usage | None,
        output_messages: Any,
        extra: Mapping[str, Any] | None,
    ) -> None:
        end_time = _time_ns()
        duration = _perf_counter() - call._start
        content = None
        if self._capture_content and output_messages is not None:
            content = _content(output_messages)  # now: the application may change the response later
        if finish_reasons:
            finish_reasons = list(finish_reasons)  # the plugin's own list may change after the call
        if extra:
            extra = dict(extra)
        request = call._request
        if usage is None and call._shared is not None:  # a util-genai layer below read the usage
            usage = inference.shared_usage(call._shared)
        foreign = call._foreign
        if foreign is not None and foreign.data is not None:
            inference.publish(foreign.data, response_model, response_id, finish_reasons, usage)
        facts = (call._sink, _shape(request), request.api_base_url, call._attribution, response_model, response_id, finish_reasons, usage, content, extra, duration, end_time, self._get_context(), call._unit, call._held, foreign)
        if call._unit is not None:
            call._unit.call_ended()
        self._dispatch(self._complete, call, facts)

    def _dispatch(self, complete: Callable[..., None], call: Call, facts: tuple[Any, ...]) -> None:
        """Run ``complete(span, governed_call, *facts)`` now or queue it. With a governor in force it
        runs now, with the call (its budget is reconciled before the next decision); otherwise it is
        queued, in order with every other completion, when the tracer provider completes queued spans.
        Another layer's span is completed now, before that layer ends it."""
        if self.governor.active or call._held is not None or call._foreign is not None:  # reconcile or enrich now
            complete(call._span, call, *facts)
        elif call._sink.defer_completion:
            call._sink.submit(complete, call._span, None, *facts)
        else:
            complete(call._span, None, *facts)

    def _complete(
        self,
        span: Any,
        governed_call: Call | None,
        sink: Sink,
        shape: Shape,
        api_base_url: str | None,
        attribution: Mapping[str, str],
        response_model: str | None,
        response_id: str | None,
        finish_reasons: Sequence[str] | None,
        usage: Usage | None,
        content: str | None,
        extra: Mapping[str, Any] | None,
        duration: float,
        end_time: int,
        context: Any,
        unit: Unit | None = None,
        held: float | None = None,
        foreign: inference.Foreign | None = None,
    ) -> None:
        """Price the call, set the response attributes, reconcile ``governed_call``'s budget and
        its units' totals, end the span at ``end_time`` and queue the metrics (on the
        application's thread or deferred). Another layer's span (``foreign``) is enriched, not
        ended, and gets only the metrics its layer does not record."""
        _, provider, request_model, _ = shape
        model = response_model or request_model
        attributes: dict[str, Any] = {}
        if response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        if response_id:
            attributes[semconv.GEN_AI_RESPONSE_ID] = response_id
        if finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
        input_tokens = output_tokens = None
        if usage is not None:
            input_tokens = usage.input_tokens
            output_tokens = usage.output_tokens
            if input_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
            if output_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
            if usage.cache_read_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.cache_write_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
            if usage.reasoning_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
        price = price_call(provider, model, usage, api_base_url, pricing_file=self._pricing_file, at_ns=end_time)
        total = price.total
        if total is not None:
            attributes[semconv.GENOPS_COST_TOTAL] = total
            attributes[semconv.GENOPS_COST_CURRENCY] = "USD"
            attributes[semconv.GENOPS_COST_STATUS] = semconv.COST_STATUS_PRICED
            if price.source:
                attributes[semconv.GENOPS_COST_SOURCE] = price.source
        else:
            attributes[semconv.GENOPS_COST_STATUS] = semconv.COST_STATUS_UNPRICED
            attributes[semconv.GENOPS_COST_UNPRICED_REASON] = price.unpriced_reason or semconv.UNPRICED_UNKNOWN_MODEL
        attributes[semconv.GENOPS_COST_PROVIDER] = provider
        if model:
            attributes[semconv.GENOPS_COST_MODEL] = model
        if content is not None:
            attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = content
        if extra:
            attributes.update(extra)
        if foreign is not None and foreign.records_metrics:
            sink.submit(inference.record_cost, sink.instruments, shape, attribution, response_model, total, context)
        else:
            sink.submit(sink.record_finished, shape, attribution, response_model, input_tokens, output_tokens, total, duration, context)
        if unit is not None:
            unit.settle(held or 0.0, total, input_tokens, output_tokens)
        if foreign is not None:  # another layer's span: enriched, ended by that layer
            inference.enrich(span, attributes)
            if governed_call is not None:
                self._settle(governed_call, total, ran=True)
        else:
            span.set_attributes(attributes)
            if governed_call is not None:
                self._settle(governed_call, total, ran=True)
                span.end()  # on the application's thread, after the reconciliation's events
            else:
                span.end(end_time=end_time)
        if self._summary is not None:
            self._summary.add(provider, model, attribution, usage, total)

    def fail(self, call: Call, error: BaseException) -> None:
        end_time = _time_ns()
        duration = _perf_counter() - call._start
        span = call._span
        # The exception is read now, as it is at the failure: the application may change it (notes,
        # args) once it propagates, and its traceback would keep every frame's locals alive.
        if isinstance(error, Exception) and call._foreign is None:  # another layer's span: its layer records it
            span.record_exception(error, timestamp=end_time)
        facts = (call._sink, _shape(call._request), call._attribution, error_type(error), str(error)[:256], duration, end_time, self._get_context(), call._unit, call._held, call._foreign)
        if call._unit is not None:
            call._unit.call_ended()
        self._dispatch(self._complete_failed, call, facts)

    def _complete_failed(
        self,
        span: Any,
        governed_call: Call | None,
        sink: Sink,
        shape: Shape,
        attribution: Mapping[str, str],
        error_type: str,
        message: str,
        duration: float,
        end_time: int,
        context: Any,
        unit: Unit | None = None,
        held: float | None = None,
        foreign: inference.Foreign | None = None,
    ) -> None:
        """Mark the span failed (error.type, ERROR status), release ``governed_call``'s
        reservation and what its units held, end the span and queue the metric. Another layer's
        span (``foreign``) is left to that layer, which sees the error as it propagates."""
        if unit is not None:
            unit.settle(held or 0.0, None, None, None, failed=True)
        if foreign is not None:
            if not foreign.records_metrics:
                sink.submit(sink.record_failed, shape, attribution, error_type, duration, context)
            if governed_call is not None:
                self._settle(governed_call, None, ran=False)
            if self._summary is not None:
                self._summary.add(shape[1], shape[2], attribution, None, None, failed=True)
            return
        span.set_attribute(semconv.ERROR_TYPE, error_type)
        span.set_status(self._status_cls(self._error_code, message))
        sink.submit(sink.record_failed, shape, attribution, error_type, duration, context)
        if governed_call is not None:
            self._settle(governed_call, None, ran=False)
            span.end()  # after the release's events
        else:
            span.end(end_time=end_time)
        if self._summary is not None:
            self._summary.add(shape[1], shape[2], attribution, None, None, failed=True)

    def _settle(self, call: Call, cost: float | None, ran: bool) -> None:
        if not self.governor.active:
            return
        settlement = self.governor.settle(call._ticket, cost, ran)
        if settlement is None:
            return
        span = call._span
        if settlement.attributes:
            span.set_attributes(settlement.attributes)
        for event_name, event_attributes in settlement.events:
            span.add_event(event_name, event_attributes)


def _shape(request: CallRequest) -> Shape:
    """What the metric dimensions need from a request; queued instead of the request itself, so a
    queued record never keeps the application's prompt (captured by ``prompt_text``) alive."""
    return (request.operation, request.provider, request.request_model, request.server_address)


def error_type(error: BaseException) -> str:
    """``error.type`` of an exception: its qualified class name (bare for built-ins)."""
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _content(produce: Any) -> str | None:
    """Serialise plugin-provided content; a failing callback costs the content, never the span."""
    try:
        return _to_json(produce())
    except Exception as error:
        from genops_autoinstrument.diagnostics import internal_error

        internal_error("content capture", error)
        return None


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except Exception:
        return str(value)
