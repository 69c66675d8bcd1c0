"""GenOps' providers for a framework's own OpenTelemetry support, and the spans it opens with them.

A framework plugin hands these to the framework (pydantic-ai's instrumentation settings,
Haystack's tracer…) when the application did not instrument the framework itself. Each span and
each metric record goes to the providers GenOps records a call made at that moment into
(the application's real global ones, else GenOps' own, built on first use), so nothing is built
before the framework's first span, none of the framework's spans is lost to GenOps' lazy set-up,
and an application that sets up OpenTelemetry later gets the framework's spans from then on.

``on_span(span, name, attributes)`` sees each span the framework opens as its current span and
may return a context manager that runs while the span is current (it exits before the span ends):
the plugin's way to make a framework's agent span a GenOps run (:func:`run_on_span`) or to mark
its client span as one whose metrics GenOps records (:func:`adopt_inference_span`).
``drop`` names instruments of the framework that GenOps records itself (the framework's token
histogram when its client spans are adopted), which then record nothing.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, ContextManager, Iterator, Mapping

import wrapt
from opentelemetry import metrics, trace

from genops_autoinstrument.diagnostics import internal_error

__all__ = ["adopt_inference_span", "following_meter_provider", "following_tracer_provider", "run_on_span"]

OnSpan = Callable[[Any, str, Mapping[str, Any]], "ContextManager[Any] | None"]


def _providers_now() -> tuple[Any, Any]:
    from genops_autoinstrument.engine.runtime import get_engine

    return get_engine().providers()


class _PerProvider:
    """One object per provider GenOps records into (a tracer, a meter, an instrument), built on first use."""

    def __init__(self, build: Callable[[Any], Any], which: int) -> None:
        self._build = build
        self._which = which  # 0: the tracer provider, 1: the meter provider
        self._built: dict[int, tuple[Any, Any]] = {}  # id(provider) -> (provider kept alive, object)
        self._lock = threading.Lock()

    def get(self) -> Any:
        provider = _providers_now()[self._which]
        found = self._built.get(id(provider))
        if found is None:
            with self._lock:
                found = self._built.get(id(provider))
                if found is None:
                    found = self._built[id(provider)] = (provider, self._build(provider))
        return found[1]


class _Tracer(trace.Tracer):
    def __init__(self, name: str, args: tuple, kwargs: dict, on_span: OnSpan | None) -> None:
        self._tracers = _PerProvider(lambda provider: provider.get_tracer(name, *args, **kwargs), 0)
        self._on_span = on_span

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A span the framework makes current itself (``use_span``) or never: the hook runs from
        now until the span ends (the returned span is the framework's, ending the hook first)."""
        span = self._tracers.get().start_span(name, *args, **kwargs)
        hook = self._hook(span, name, kwargs.get("attributes") or {})
        if hook is None:
            return span
        try:
            hook.__enter__()
        except Exception as error:
            internal_error("framework span hook", error)
            return span
        return _HookedSpan(span, hook)

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with self._tracers.get().start_as_current_span(name, *args, **kwargs) as span:
            with self._hook(span, name, kwargs.get("attributes") or {}) or contextlib.nullcontext():
                yield span

    def _hook(self, span: Any, name: str, attributes: Mapping[str, Any]) -> ContextManager[Any] | None:
        if self._on_span is None:
            return None
        try:
            return self._on_span(span, name, attributes)
        except Exception as error:
            internal_error("framework span hook", error)
            return None


class _HookedSpan(wrapt.ObjectProxy):  # type: ignore[misc]
    """A span from ``start_span`` whose ``on_span`` hook is running: the hook exits (once) just
    before the span ends, as it does inside ``start_as_current_span``. Everything else is the
    framework's span itself (a proxy: equal to it, same hash, same attributes)."""

    def __init__(self, span: Any, hook: ContextManager[Any]) -> None:
        super().__init__(span)
        self._self_hook: ContextManager[Any] | None = hook

    def _self_exit(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        hook, self._self_hook = self._self_hook, None
        if hook is not None:
            try:
                hook.__exit__(exc_type, exc, tb)
            except Exception as error:
                internal_error("framework span hook", error)

    def end(self, *args: Any, **kwargs: Any) -> None:
        self._self_exit()
        self.__wrapped__.end(*args, **kwargs)

    def __enter__(self) -> "_HookedSpan":
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        self._self_exit(exc_type, exc, tb)
        return self.__wrapped__.__exit__(exc_type, exc, tb)


class _TracerProvider(trace.TracerProvider):
    def __init__(self, on_span: OnSpan | None) -> None:
        self._on_span = on_span

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(instrumenting_module_name, args, kwargs, self._on_span)


def following_tracer_provider(on_span: OnSpan | None = None) -> Any:
    """A tracer provider whose spans go where GenOps records a call made at that moment."""
    return _TracerProvider(on_span)


class _Instrument:
    """A synchronous instrument recording into the meter GenOps records into at each record."""

    def __init__(self, meters: _PerProvider, create: str, name: str, kwargs: dict) -> None:
        self._instruments = _PerProvider(lambda provider: getattr(meters.get(), create)(name, **kwargs), 1)

    def _record(self, method: str, amount: Any, attributes: Any = None, context: Any = None) -> None:
        try:
            getattr(self._instruments.get(), method)(amount, attributes, context)
        except Exception as error:
            internal_error("framework metric", error)

    def record(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
        self._record("record", amount, attributes, context)

    def add(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
        self._record("add", amount, attributes, context)

    def set(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
        self._record("set", amount, attributes, context)


class _Meter(metrics.NoOpMeter):
    """Synchronous instruments follow GenOps' meter provider; observable ones are registered on
    the meter of their creation (they have no record of their own to follow with)."""

    def __init__(self, name: str, args: tuple, kwargs: dict, drop: frozenset[str]) -> None:
        super().__init__(name)
        self._meters = _PerProvider(lambda provider: provider.get_meter(name, *args, **kwargs), 1)
        self._drop = drop

    def _sync(self, create: str, name: str, kwargs: dict) -> Any:
        if name in self._drop:
            return getattr(super(), create)(name, **kwargs)  # a no-op instrument: GenOps records it
        return _Instrument(self._meters, create, name, kwargs)

    def create_counter(self, name: str, **kwargs: Any) -> Any:
        return self._sync("create_counter", name, kwargs)

    def create_up_down_counter(self, name: str, **kwargs: Any) -> Any:
        return self._sync("create_up_down_counter", name, kwargs)

    def create_histogram(self, name: str, **kwargs: Any) -> Any:
        return self._sync("create_histogram", name, kwargs)

    def create_gauge(self, name: str, **kwargs: Any) -> Any:
        return self._sync("create_gauge", name, kwargs)

    def create_observable_counter(self, name: str, **kwargs: Any) -> Any:
        return self._meters.get().create_observable_counter(name, **kwargs)

    def create_observable_up_down_counter(self, name: str, **kwargs: Any) -> Any:
        return self._meters.get().create_observable_up_down_counter(name, **kwargs)

    def create_observable_gauge(self, name: str, **kwargs: Any) -> Any:
        return self._meters.get().create_observable_gauge(name, **kwargs)


class _MeterProvider(metrics.MeterProvider):
    def __init__(self, drop: frozenset[str]) -> None:
        self._drop = drop

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> metrics.Meter:
        return _Meter(name, args, kwargs, self._drop)


def following_meter_provider(drop: tuple[str, ...] = ()) -> Any:
    """A meter provider whose records go where GenOps records a call made at that moment;
    instruments named in ``drop`` record nothing (GenOps records them)."""
    return _MeterProvider(frozenset(drop))


def adopt_inference_span(span: Any) -> None:
    """``span`` is a framework's inference span opened with GenOps' providers and its token metrics
    dropped: the call GenOps records inside it enriches it and records the metrics itself."""
    from genops_autoinstrument.engine.inference import adopt

    adopt(span)


@contextlib.contextmanager
def run_on_span(span: Any, name: str, attribution: Mapping[str, str] | None = None) -> Iterator[None]:
    """A GenOps run on a span the framework opened (its own agent span, current while this runs):
    the calls and runs inside belong to it and carry ``attribution`` (``gen_ai.agent.name``…, a
    metric dimension), and the span gets their rolled-up cost and tokens before the framework
    ends it. The span stays the framework's: its name, status and end."""
    token = unit = engine = None
    try:
        from opentelemetry.trace import set_span_in_context

        from genops_autoinstrument.engine.application import attribution_now
        from genops_autoinstrument.engine.runtime import get_engine
        from genops_autoinstrument.engine.units import Unit, current_unit, enter_scope

        engine = get_engine()
        attributed = attribution_now(engine, attribution)
        unit = Unit(name, current_unit(), None, _Unended(span), attributed)
        unit.context = set_span_in_context(span)
        span.set_attributes({"genops.unit.name": name, **attributed})
        token = enter_scope(attribution, unit)
    except Exception as error:
        internal_error("framework run start", error)
    error: BaseException | None = None
    try:
        yield
    except BaseException as raised:  # the unit failed with the body (re-raised as it was)
        error = raised if isinstance(raised, Exception) else None
        raise
    finally:
        if token is not None:
            _close(engine, unit, token, error)


def _close(engine: Any, unit: Any, token: Any, error: BaseException | None = None) -> None:
    try:
        from genops_autoinstrument.engine.application import close_unit
        from genops_autoinstrument.engine.units import exit_scope

        try:
            exit_scope(token)
        except ValueError:  # ended in another context than it started in: nothing to restore here
            pass
        close_unit(engine, unit, error)
    except Exception as internal:
        internal_error("framework run end", internal)


class _Unended:
    """A framework's span as a unit's: GenOps adds its roll-up, the framework ends it. Its token
    totals are the framework's own (pydantic-ai names them ``gen_ai.aggregated_usage.*`` so that
    backends summing ``gen_ai.usage.*`` over a trace count each call once): GenOps adds none."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._span.set_attributes({key: value for key, value in attributes.items() if not key.startswith("gen_ai.usage.")})

    def set_attribute(self, key: str, value: Any) -> None:
        self._span.set_attribute(key, value)

    def set_status(self, *args: Any, **kwargs: Any) -> None:
        return None  # the framework's to set

    def add_event(self, *args: Any, **kwargs: Any) -> None:
        self._span.add_event(*args, **kwargs)

    def is_recording(self) -> bool:
        return bool(self._span.is_recording())

    def end(self, *args: Any, **kwargs: Any) -> None:
        return None  # the framework's to end
