"""Units of work a framework opens and closes through separate start and end events.

A framework plugin sees an agent invocation, a chain run or a tool execution as callbacks (start,
then end or error, each with the framework's run id and its parent's), not as a ``with`` block.
:class:`Runs` turns them into the engine's units of work (what ``genops_autoinstrument.track``
opens): one span per run, a child of its parent run's span (else of the innermost unit or the
application's current span), the parent of the model calls recorded inside it, and at its end the
rolled-up cost, tokens and number of calls of everything under it. Parent runs are found by key,
never by context, so runs nest correctly whichever thread or task an event arrives on.

A run also becomes GenOps' current scope in the context its start event runs in (``enter=True``),
so that calls made in that context and in contexts copied from it (tasks, executor jobs) belong to
it; its end restores the scope that was current before. Where its end runs in another context
(or never arrives), the scope it left current there ends with it: the engine's current scope skips
ended runs (:func:`~genops_autoinstrument.engine.units.current_scope`). At most ``_MAX_OPEN`` runs
stay open: beyond, the oldest are ended as abandoned (``error.type`` ``abandoned``), so a
long-running process whose frameworks drop end events keeps recording. A step that a lower layer records (a model call the
provider plugin turns into its span) is not a run: :meth:`Runs.enter` only makes its parent run's
scope current for it, so the step is recorded once, by that layer, under the right run.

Attribution: a run passes its own (``gen_ai.agent.name``…) to every call and run under it, where
it becomes a span attribute and a metric dimension like the ``genops.*`` keys. Values the
framework's run metadata carries (set by whoever configured the run) attribute only through the
keys the operator trusts for W3C baggage (``GENOPS_BAGGAGE_KEYS``): :meth:`Runs.trusted`.

Every method is safe: an internal failure is logged once and the framework's run goes on.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any, Callable, Hashable, Mapping

from genops_autoinstrument.diagnostics import internal_error, log
from genops_autoinstrument.engine.units import Scope, Unit, current_scope, inner_scope, live, scope_variable

__all__ = [
    "GEN_AI_AGENT_ID",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "OPERATION_EXECUTE_TOOL",
    "OPERATION_INVOKE_AGENT",
    "Runs",
    "when_imported",
]

# GenAI semantic conventions (v1.41) for agents and tools. TODO(semconv): these belong in
# genops_autoinstrument/semconv.py with the other names; kept here until it has them.
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"

_MAX_OPEN = 10_000  # runs whose end never arrives (an abandoned stream) must not grow without bound

_variable = scope_variable()


class Abandoned(BaseException):
    """What a run evicted unended is closed with. Named like a builtin (as the engine's
    ``interrupted`` is) so that its span's ``error.type`` is ``abandoned``."""


Abandoned.__module__ = "builtins"
Abandoned.__name__ = Abandoned.__qualname__ = "abandoned"


class _Run:
    __slots__ = ("owner", "unit", "scope", "closed", "engine")

    def __init__(self, owner: "Runs", unit: Unit | None, engine: Any) -> None:
        self.owner = owner
        self.unit = unit  # None: a step recorded by a lower layer (Runs.enter), or a hidden run
        self.scope: Scope | None = None  # what its calls and children get; ``outer``: what it replaced
        self.closed = False  # ended: its scope, wherever still current, is skipped
        self.engine = engine


class Runs:
    """A framework plugin's open runs, keyed by the framework's run ids. Thread-safe."""

    def __init__(self, framework: str) -> None:
        self._framework = framework
        self._runs: dict[Hashable, _Run] = {}
        self._lock = threading.Lock()
        self._warned = False

    # --- what a plugin calls ----------------------------------------------------------------------
    def start(
        self,
        key: Hashable,
        parent: Hashable | None,
        name: str,
        *,
        span_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        attribution: Mapping[str, str] | None = None,
        enter: bool = True,
    ) -> None:
        """Open the unit of run ``key`` inside run ``parent`` (or the current scope), named
        ``name`` (``genops.unit.name``); its span is ``span_name`` (default ``name``) with
        ``attributes``. ``attribution`` is added to what the run and everything under it is
        attributed to. ``enter``: make it the current scope of this context until its end."""
        try:
            from genops_autoinstrument.engine import application
            from genops_autoinstrument.engine.runtime import get_engine

            self._make_room(key)
            engine = get_engine()
            outer = self._outer(parent)
            scope = inner_scope(outer, attribution, None, None)
            token = _variable.set(scope)  # the unit's parent and attribution, for open_unit
            try:
                unit = application.open_unit(engine, name, application.attribution_now(engine), None)
            finally:
                _variable.reset(token)
            if span_name and span_name != name:
                unit.span.update_name(span_name)
            if attributes:
                unit.span.set_attributes(dict(attributes))
            self._add(key, unit, scope, engine, enter)
        except Exception as error:
            internal_error(f"{self._framework} run start", error)

    def end(self, key: Hashable, error: BaseException | None = None, attributes: Mapping[str, Any] | None = None) -> None:
        """Close run ``key``: its rolled-up totals, ``error`` (if it failed) and ``attributes`` on
        its span, which ends; the scope current before it is restored if it is still current."""
        try:
            run = self._pop(key)
            if run is not None:
                _close(run, error, attributes)
        except Exception as internal:
            internal_error(f"{self._framework} run end", internal)

    def enter(self, key: Hashable, parent: Hashable | None, attribution: Mapping[str, str] | None = None, *, hidden: bool = False) -> None:
        """A step of run ``parent`` that opens no span of its own: a model call a provider plugin
        records, or a run the framework hides. Its parent's scope (plus ``attribution``) becomes
        current for it, and the steps and runs under ``key`` belong to ``parent``'s unit, until
        :meth:`end` of ``key``. ``hidden``: only map ``key`` to its parent, without entering."""
        try:
            self._make_room(key)
            with self._lock:
                known = parent is not None and parent in self._runs
            if not known and not attribution:
                return  # the current scope is already what it gets: nothing to enter or undo
            outer = self._outer(parent)
            self._add(key, None, inner_scope(outer, attribution, None, None), None, enter=not hidden)
        except Exception as error:
            internal_error(f"{self._framework} step start", error)

    def trusted(self, metadata: Mapping[str, Any] | None) -> dict[str, str]:
        """The attribution keys in a run's ``metadata`` that ``GENOPS_BAGGAGE_KEYS`` trusts (the
        operator's list for values that arrive from outside the application's code); the rest
        attribute nothing."""
        if not metadata:
            return {}
        try:
            from genops_autoinstrument.engine.runtime import get_engine

            keys = get_engine().settings.baggage_keys
            return {key: value for key, value in metadata.items() if key in keys and isinstance(value, str) and value} if keys else {}
        except Exception as error:
            internal_error(f"{self._framework} run metadata", error)
            return {}

    def attribution(self, parent: Hashable | None) -> Mapping[str, str]:
        """What a run started now inside run ``parent`` would inherit (its parent's attribution,
        else the current scope's), without the environment's."""
        return self._outer(parent).attribution

    def unit(self, key: Hashable) -> Unit | None:
        """The unit of open run ``key`` (None: unknown, ended, or a step without a unit)."""
        with self._lock:
            run = self._runs.get(key)
        return run.unit if run is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    # --- internals ----------------------------------------------------------------------------------
    def _outer(self, parent: Hashable | None) -> Scope:
        """The scope a run or step starts in: its parent run's, else the current (live) scope."""
        if parent is not None:
            with self._lock:
                run = self._runs.get(parent)
            if run is not None:
                return run.scope
        scope = current_scope()
        while scope is not None and isinstance(scope.ender, _Run) and scope.ender.owner is self:
            scope = live(scope.outer)  # a run without a parent run is not inside its open siblings
        return scope or _NO_SCOPE

    def _make_room(self, key: Hashable) -> None:
        """Room for run ``key``: past ``_MAX_OPEN`` open runs, the oldest are ended as abandoned."""
        evicted: list[_Run] = []
        with self._lock:
            while len(self._runs) >= _MAX_OPEN and key not in self._runs:
                evicted.append(self._runs.pop(next(iter(self._runs))))
        if evicted:
            if not self._warned:
                self._warned = True
                log.warning("%s: %d runs have started and not ended; the oldest are ended as abandoned", self._framework, _MAX_OPEN)
            for run in evicted:
                _close(run, Abandoned(f"{self._framework} run abandoned: its end never arrived ({_MAX_OPEN} runs open)"), None)

    def _add(self, key: Hashable, unit: Unit | None, scope: Scope, engine: Any, enter: bool) -> None:
        """Record run ``key`` (``unit``: the unit it owns, closed at its end) whose calls and
        children get ``scope`` (with ``unit``, if it owns one); ``enter``: make that scope current here."""
        run = _Run(self, unit, engine)
        run.scope = Scope(scope.attribution, unit or scope.unit, current_scope(), scope.own, run)
        with self._lock:
            self._runs[key] = run
        if enter:
            _variable.set(run.scope)

    def _pop(self, key: Hashable) -> _Run | None:
        with self._lock:
            run = self._runs.pop(key, None)
        if run is not None and _variable.get() is run.scope:  # still current here: give back what it replaced
            _variable.set(live(run.scope.outer))
        return run


def _close(run: _Run, error: BaseException | None, attributes: Mapping[str, Any] | None) -> None:
    """End ``run``: its scope stops being current anywhere; its unit (if it owns one) closes."""
    run.closed = True
    unit = run.unit
    if unit is None:
        return
    from genops_autoinstrument.engine import application

    unit.close()
    if attributes:
        unit.span.set_attributes(dict(attributes))
    application.close_unit(run.engine, unit, error)


_NO_SCOPE = Scope()


def when_imported(instrumentor: Any, module: str, hook: Callable[[ModuleType], None]) -> None:
    """Call ``hook(module)`` once module ``module`` has been imported (at once if it is), and after
    each re-execution, until ``instrumentor`` is uninstrumented: for a plugin that registers with a
    framework's own hook (a callback, a tracer) instead of wrapping a method with ``wrap``."""
    from genops_autoinstrument.launch.finder import get_finder

    def guarded(loaded: ModuleType) -> None:
        try:
            hook(loaded)
        except Exception as error:
            internal_error(f"{type(instrumentor).__name__} hook for {module}", error)

    hooks = instrumentor.__dict__.setdefault("_hooks", [])
    hooks.append((module, guarded))
    finder = get_finder()
    finder.install()
    finder.watch(module, guarded)


def is_refusal(error: BaseException | None) -> bool:
    """True when ``error`` is GenOps' refusal of a call itself: the native error of a blocked call
    (it carries the blocking decision), or an SDK error built from the response the wire layer
    refused a call with. For a framework's retry predicate: retrying a refusal asks again for a
    call GenOps has just refused (a framework plugin makes such retries final)."""
    from genops_autoinstrument.governance.refusals import refused_by

    return error is not None and refused_by(error) is not None


__all__ += ["is_refusal"]
