"""Where each call is recorded: the application's global providers when it has real ones, else GenOps' own.

The choice is made per call (an application may set up OpenTelemetry after its first model call)
and costs two attribute reads when nothing changed: the tracer, the metric instruments and the
deferred-flush instrument of each provider are built once and cached. GenOps' spans take their
parent from GenOps' own context (the innermost unit of work, see
:mod:`~genops_autoinstrument.engine.units`) before the application's current span; GenOps never
makes its spans the application's current span.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from genops_autoinstrument.engine.attribution import Attribution
from genops_autoinstrument.engine.deferred import completes_queued_spans, deferred_queue, flush_before_collection, run_job
from genops_autoinstrument.engine.global_providers import GlobalSlots, PinnedSlots, application_provider
from genops_autoinstrument.engine.instruments import Instruments
from genops_autoinstrument.engine.units import current_unit, unit_context

__all__ = ["FollowingMeter", "Sink", "Sinks", "UnitTracer"]

FLUSH_INSTRUMENT = "genops.internal.metric_flush"


def run_now(job: Callable[..., None], *args: Any) -> None:
    """A sink's ``submit`` when nothing is deferred: run on the calling thread."""
    run_job(job, args)


class UnitTracer:
    """GenOps' tracer: a span started without an explicit parent is a child of the innermost unit of
    work (GenOps' own context), else of the application's current span."""

    __slots__ = ("tracer",)

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer  # the SDK's own

    def start_span(self, name: str, context: Any = None, **kwargs: Any) -> Any:
        if context is None:
            unit = current_unit()
            if unit is not None:
                context = unit_context(unit)
        return self.tracer.start_span(name, context=context, **kwargs)


class Sink:
    """One (tracer provider, meter provider) pair as the engine records into it."""

    __slots__ = ("tracer", "meter", "instruments", "submit", "defer_completion", "record_decision", "record_finished", "record_failed")

    def __init__(self, tracer: UnitTracer, defer_completion: bool, meter: Any, instruments: Instruments, submit: Callable[..., None]) -> None:
        self.tracer = tracer
        self.defer_completion = defer_completion  # span completion may be queued (the provider flushes the queue first)
        self.meter = meter
        self.instruments = instruments
        self.submit = submit  # queue a record (or run it now when this meter cannot flush the queue)
        # Bound once, so that a call pays no more lookups than when these were the engine's own methods.
        self.record_decision = instruments.record_decision
        self.record_finished = instruments.record_finished
        self.record_failed = instruments.record_failed


class Sinks:
    """Picks the sink of each call. Providers given explicitly (tests, benchmarks) are always used."""

    def __init__(self, attribution: Attribution, tracer_provider: Any = None, meter_provider: Any = None, defer: bool = True) -> None:
        from genops_autoinstrument.engine import telemetry

        self._telemetry = telemetry
        self._attribution = attribution
        self._pinned = (tracer_provider, meter_provider)
        self._defer = defer
        pinned = tracer_provider is not None and meter_provider is not None
        self._slots: Any = PinnedSlots() if pinned else GlobalSlots()
        # By id(provider), with the provider kept alive in the value (a provider need not be hashable).
        self._tracers: dict[int, tuple[Any, UnitTracer, bool]] = {}
        self._meters: dict[int, tuple[Any, Any, Instruments, Callable[..., None]]] = {}
        self._sinks: dict[tuple[int, int], Sink] = {}
        self._lock = threading.Lock()
        self._state: tuple[Any, Any, Sink | None] = (object(), object(), None)

    def current(self) -> Sink:
        """The sink of a call made now (cached while the global providers stay the same)."""
        tracer_slot, meter_slot, sink = self._state
        seen = self._slots.read()
        if sink is not None and seen[0] is tracer_slot and seen[1] is meter_slot:
            return sink
        with self._lock:
            sink = self._choose()
            seen = self._slots.read()  # loading a provider named in OTEL_PYTHON_* fills its slot
            self._state = (seen[0], seen[1], sink)
        return sink

    def own(self) -> Sink:
        """The sink of GenOps' own providers, whatever the application set up (a call whose SDK
        telemetry the application turned off must not reach the application's providers)."""
        with self._lock:
            return self._choose(own=True)

    def providers(self, own: bool = False) -> tuple[Any, Any]:
        """The (tracer provider, meter provider) a call made now is recorded into: the ones given
        here, else the application's global ones when it has real ones, else GenOps' own (``own``:
        GenOps' own unless given here)."""
        telemetry = self._telemetry
        tracer_provider, meter_provider = self._pinned
        if tracer_provider is None:
            tracer_provider = (None if own else application_provider("tracer")) or telemetry.private_tracer_provider()
        if meter_provider is None:
            meter_provider = (None if own else application_provider("meter")) or telemetry.private_meter_provider()
        return tracer_provider, meter_provider

    def following_meter(self) -> "FollowingMeter":
        """A meter whose counters record into the meter of a call made at that moment."""
        return FollowingMeter(self)

    def _choose(self, own: bool = False) -> Sink:
        tracer_provider, meter_provider = self.providers(own)
        key = (id(tracer_provider), id(meter_provider))
        sink = self._sinks.get(key)
        if sink is None:
            tracer, defer_completion = self._tracer_of(tracer_provider)
            meter, instruments, submit = self._meter_of(meter_provider)
            sink = self._sinks[key] = Sink(tracer, defer_completion and submit is not run_now, meter, instruments, submit)
        return sink

    def _tracer_of(self, provider: Any) -> tuple[UnitTracer, bool]:
        found = self._tracers.get(id(provider))
        if found is None:
            # Queued span completion only into a provider that completes the queue before it exports.
            found = self._tracers[id(provider)] = (provider, UnitTracer(self._telemetry.tracer(provider)), self._defer and completes_queued_spans(provider))
        return found[1], found[2]

    def _meter_of(self, provider: Any) -> tuple[Any, Instruments, Callable[..., None]]:
        found = self._meters.get(id(provider))
        if found is None:
            meter = self._telemetry.meter(provider)
            found = self._meters[id(provider)] = (provider, meter, Instruments(meter, self._attribution), self._submitter(meter))
        return found[1], found[2], found[3]

    def _submitter(self, meter: Any) -> Callable[..., None]:
        """Queue this meter's records when every collection of its readers can flush the queue first."""
        if not self._defer:
            return run_now
        try:
            meter.create_observable_gauge(FLUSH_INSTRUMENT, callbacks=[flush_before_collection], description="GenOps internal: observes nothing")
            deferred_queue.start()
            return deferred_queue.submit
        except Exception as error:  # a meter without observable instruments: record inline
            from genops_autoinstrument.diagnostics import internal_error

            internal_error("deferred metrics", error)
            return run_now


class FollowingMeter:
    """A meter for instruments built once but recorded rarely (the governor's
    ``genops.ledger.failures``): each record goes to the current sink's meter, so it follows the
    application's providers as calls do instead of staying where they were at start-up."""

    __slots__ = ("_sinks",)

    def __init__(self, sinks: Sinks) -> None:
        self._sinks = sinks

    def create_counter(self, name: str, **kwargs: Any) -> "_FollowingCounter":
        return _FollowingCounter(self._sinks, name, kwargs)


class _FollowingCounter:
    __slots__ = ("_sinks", "_name", "_kwargs", "_counters")

    def __init__(self, sinks: Sinks, name: str, kwargs: dict[str, Any]) -> None:
        self._sinks = sinks
        self._name = name
        self._kwargs = kwargs
        self._counters: dict[int, tuple[Any, Any]] = {}  # id(meter) -> (meter kept alive, its counter)

    def add(self, amount: float, attributes: Any = None, *args: Any, **kwargs: Any) -> None:
        meter = self._sinks.current().meter
        found = self._counters.get(id(meter))
        if found is None:
            found = self._counters[id(meter)] = (meter, meter.create_counter(self._name, **self._kwargs))
        found[1].add(amount, attributes, *args, **kwargs)
