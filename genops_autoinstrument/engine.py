"""The governance telemetry engine behind :mod:`genops_autoinstrument.recording`.

One engine per process. It turns a plugin's :class:`CallRequest` and response facts into the span,
the metrics, the cost and the budget reconciliation, and asks the governor for a decision first.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Mapping, Sequence

from . import config, semconv
from .errors import Decision
from .governance import Governor, Ticket, build_governor
from .pricing import price_call
from .recording import Call, CallRequest
from .usage import Usage

_BAGGAGE_KEYS = frozenset(semconv.ATTRIBUTION_KEYS)


class Engine:
    """Records calls into OpenTelemetry; built lazily from the process settings."""

    def __init__(
        self,
        settings: config.Settings | None = None,
        governor: Governor | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        from opentelemetry import baggage, context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from . import telemetry

        self.settings = settings or config.current()
        self.governor = governor or build_governor(self.settings)
        self._trace = trace
        self._context = context
        self._baggage = baggage
        self._kind = SpanKind.CLIENT
        self._error_status = Status(StatusCode.ERROR)
        self._status_cls = Status
        self._error_code = StatusCode.ERROR
        self._tracer = telemetry.tracer(tracer_provider)
        meter = telemetry.meter(meter_provider)
        self._cost = meter.create_counter(semconv.METRIC_COST, unit="USD", description="Cost of GenAI calls in USD")
        self._unpriced = meter.create_counter(semconv.METRIC_UNPRICED_CALLS, unit="{call}", description="GenAI calls that could not be priced")
        self._decisions = meter.create_counter(semconv.METRIC_POLICY_DECISIONS, unit="{decision}", description="GenOps policy decisions")
        self._tokens = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=[1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
        )
        self._duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
        )
        self._env_attribution = dict(self.settings.attribution)
        self._summary = None
        if self.settings.summary:
            from .summary import Summary

            self._summary = Summary.install()

    # --- attribution ---------------------------------------------------------------------------
    def attribution(self) -> Mapping[str, str]:
        """Environment attribution, overridden by W3C baggage entries with the same ``genops.*`` keys."""
        entries = self._baggage.get_all()
        if not entries:
            return self._env_attribution
        merged = dict(self._env_attribution)
        for key, value in entries.items():
            if key in _BAGGAGE_KEYS and isinstance(value, str) and value:
                merged[key] = value
        return merged

    def _dimensions(self, call: Call, model: str | None) -> dict[str, Any]:
        request = call._request
        dims: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: request.operation,
            semconv.GEN_AI_PROVIDER_NAME: request.provider,
        }
        if model:
            dims[semconv.GEN_AI_RESPONSE_MODEL] = model
        if request.request_model:
            dims[semconv.GEN_AI_REQUEST_MODEL] = request.request_model
        if request.server_address:
            dims[semconv.SERVER_ADDRESS] = request.server_address
        for key, value in call._attribution.items():
            if key == semconv.GENOPS_CUSTOMER_ID and not self.settings.metrics_customer_dimension:
                continue
            dims[key] = value
        return dims

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self, request: CallRequest, start: float) -> tuple[Call, Decision | None]:
        attribution = self.attribution()
        ticket = self.governor.decide(request, attribution) if self.governor.active else Ticket()
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
        attributes.update(ticket.attributes)
        if self.settings.capture_content and request.input_messages is not None:
            content = _content(request.input_messages)
            if content is not None:
                attributes[semconv.GEN_AI_INPUT_MESSAGES] = content
        name = f"{request.operation} {request.request_model}" if request.request_model else request.operation
        span = self._tracer.start_span(name, kind=self._kind, attributes=attributes)
        for event_name, event_attributes in ticket.events:
            span.add_event(event_name, event_attributes)
        call = Call(request, self, span, attribution, ticket, start)
        decision = ticket.decision
        if self.governor.active:
            self._record_decision(call, decision)
        if decision.blocks:
            call._ended = True
            self._end_blocked(call, decision)
        return call, decision

    def _record_decision(self, call: Call, decision: Decision) -> None:
        dims = {
            semconv.GENOPS_POLICY_RESULT: decision.result,
            semconv.GEN_AI_PROVIDER_NAME: call._request.provider,
        }
        if decision.policy_name:
            dims[semconv.GENOPS_POLICY_NAME] = decision.policy_name
        if decision.reason_code:
            dims[semconv.GENOPS_POLICY_REASON_CODE] = decision.reason_code
        for key, value in call._attribution.items():
            if key == semconv.GENOPS_CUSTOMER_ID and not self.settings.metrics_customer_dimension:
                continue
            dims[key] = value
        self._decisions.add(1, dims)

    def _end_blocked(self, call: Call, decision: Decision) -> None:
        span = call._span
        span.set_attribute(semconv.ERROR_TYPE, decision.reason_code or "PolicyViolation")
        span.set_status(self._status_cls(self._error_code, decision.message or "blocked by GenOps policy"))
        self._settle(call, None, ran=False)
        span.end()

    def attach(self, span: Any) -> Any:
        return self._context.attach(self._trace.set_span_in_context(span))

    def detach(self, token: Any) -> None:
        self._context.detach(token)

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
        duration = time.perf_counter() - call._start
        request = call._request
        span = call._span
        model = response_model or request.request_model
        attributes: dict[str, Any] = {}
        if response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        if response_id:
            attributes[semconv.GEN_AI_RESPONSE_ID] = response_id
        if finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = list(finish_reasons)
        dims = self._dimensions(call, response_model)
        if usage is not None:
            if usage.input_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
                self._tokens.record(usage.input_tokens, {**dims, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT})
            if usage.output_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
                self._tokens.record(usage.output_tokens, {**dims, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT})
            if usage.cache_read_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.cache_write_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
            if usage.reasoning_tokens is not None:
                attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
        price = price_call(request.provider, model, usage, request.api_base_url)
        if price.total is not None:
            attributes[semconv.GENOPS_COST_TOTAL] = price.total
            attributes[semconv.GENOPS_COST_CURRENCY] = "USD"
            attributes[semconv.GENOPS_COST_STATUS] = semconv.COST_STATUS_PRICED
            if price.source:
                attributes[semconv.GENOPS_COST_SOURCE] = price.source
            self._cost.add(price.total, dims)
        else:
            attributes[semconv.GENOPS_COST_STATUS] = semconv.COST_STATUS_UNPRICED
            attributes[semconv.GENOPS_COST_UNPRICED_REASON] = price.unpriced_reason or semconv.UNPRICED_UNKNOWN_MODEL
            self._unpriced.add(1, dims)
        attributes[semconv.GENOPS_COST_PROVIDER] = request.provider
        if model:
            attributes[semconv.GENOPS_COST_MODEL] = model
        if self.settings.capture_content and output_messages is not None:
            content = _content(output_messages)
            if content is not None:
                attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = content
        if extra:
            attributes.update(extra)
        self._duration.record(duration, dims)
        span.set_attributes(attributes)
        self._settle(call, price.total, ran=True)
        span.end()
        if self._summary is not None:
            self._summary.add(request.provider, model, call._attribution, usage, price.total)

    def fail(self, call: Call, error: BaseException) -> None:
        duration = time.perf_counter() - call._start
        span = call._span
        error_type = _error_type(error)
        span.set_attribute(semconv.ERROR_TYPE, error_type)
        span.set_status(self._status_cls(self._error_code, str(error)[:256]))
        span.record_exception(error) if isinstance(error, Exception) else None
        dims = self._dimensions(call, None)
        dims[semconv.ERROR_TYPE] = error_type
        self._duration.record(duration, dims)
        self._settle(call, None, ran=False)
        span.end()
        if self._summary is not None:
            self._summary.add(call._request.provider, call._request.request_model, call._attribution, None, None, failed=True)

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


def _error_type(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _content(produce: Any) -> str | None:
    """Serialise plugin-provided content; a failing callback costs the content, never the span."""
    try:
        return _to_json(produce())
    except Exception as error:
        from .recording import internal_error

        internal_error("content capture", error)
        return None


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except Exception:
        return str(value)


_engine: Engine | None = None
_engine_lock = threading.Lock()


_retired: list[Engine] = []  # engines inherited through fork: kept alive, never used or closed


def _after_fork_in_child() -> None:
    """A forked child records with an engine of its own: new providers, governor and ledger connections."""
    global _engine, _engine_lock
    _engine_lock = threading.Lock()
    if _engine is not None:
        _retired.append(_engine)
        _engine = None
    from .summary import Summary

    Summary.reset_after_fork()


def get_engine() -> Engine:
    """The process's engine, built on the first recorded call."""
    global _engine
    engine = _engine
    if engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = Engine()
                _register_fork_handler()
            engine = _engine
    return engine


_fork_handler_registered = False


def _register_fork_handler() -> None:
    global _fork_handler_registered
    if not _fork_handler_registered and hasattr(os, "register_at_fork"):
        _fork_handler_registered = True
        os.register_at_fork(after_in_child=_after_fork_in_child)


def set_engine(engine: Engine | None) -> None:
    """Replace the process engine (tests, or a reconfiguration)."""
    global _engine
    _engine = engine
