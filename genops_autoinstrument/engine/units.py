"""What the application's code says about the calls it makes: attribution and units of work.

One context variable holds the current :class:`Scope`: the attribution set in code
(``genops_autoinstrument.attribution``) and the innermost :class:`Unit` of work
(``genops_autoinstrument.track``). The engine reads it once per call; it is ``None`` in
applications that never use the code API, which then pay one context-variable read. A unit's
span is the parent of the calls and units started inside it through this variable
(:func:`unit_context`), not through OpenTelemetry's current context, which stays the
application's. A scope ends with its unit (:meth:`Unit.close`) or a framework's run: where it is
left current (an end that ran in another context, or never came), :func:`current_scope` skips it
for the live scope around it, so nothing more is attributed to, parented by or rolled up into it.

A unit rolls up every model call recorded inside it (nested units included, each counted once
in each enclosing unit), and holds its optional cost cap: calls reserve their estimate against
it before they are sent and settle their actual cost after, like a budget that lives as long as
the block.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from genops_autoinstrument import semconv
from genops_autoinstrument.diagnostics import log
from genops_autoinstrument.governance.decisions import BudgetStatus, Decision
from genops_autoinstrument.governance.governor import Ticket
from genops_autoinstrument.governance.request import lazy_prompt

__all__ = ["CostCaps", "Scope", "Unit", "current_scope", "current_unit", "enter_scope", "exit_scope", "inner_scope", "live", "unit_context"]

_cap_lock = threading.Lock()  # makes a cap's check and hold one step (see Unit.try_hold)


class Unit:
    """One unit of work: its span, its totals so far and its cap. Thread-safe."""

    __slots__ = (
        "name", "parent", "max_cost", "span", "attribution", "_lock",
        "cost", "input_tokens", "output_tokens", "calls", "unpriced_calls", "failed_calls", "blocked_calls", "reserved", "estimated", "ended",
        "context", "closed",
    )

    def __init__(self, name: str, parent: "Unit | None", max_cost: float | None, span: Any, attribution: Mapping[str, str]) -> None:
        self.name = name
        self.parent = parent
        self.max_cost = max_cost
        self.span = span
        self.attribution = attribution
        self._lock = threading.Lock()
        self.cost = 0.0  # USD of priced calls and tracked costs
        self.input_tokens = 0
        self.output_tokens = 0
        self.calls = 0
        self.unpriced_calls = 0
        self.failed_calls = 0
        self.blocked_calls = 0
        self.reserved = 0.0  # estimates of calls in flight, held against the cap
        self.estimated = 0.0  # estimates of finished calls that could not be priced: the cap's, never the cost's
        self.ended = 0  # calls that have ended; ``calls`` counts those whose completion has run
        self.context: Any = None  # an OpenTelemetry context holding ``span``: the parent of what starts inside
        self.closed = False  # set by close(): scopes left holding it are no longer current (current_scope)

    def close(self) -> None:
        """Mark the unit ended, before its span ends: a scope still holding it (one left current
        in a context its end did not run in, or copied from it) stops being current there."""
        self.closed = True

    def chain(self) -> Iterator["Unit"]:
        """This unit and every enclosing one, innermost first."""
        unit: Unit | None = self
        while unit is not None:
            yield unit
            unit = unit.parent

    @property
    def capped(self) -> bool:
        return any(unit.max_cost is not None for unit in self.chain())

    def spent(self) -> float:
        """What counts against the cap: costs, estimates of unpriced calls, calls in flight."""
        with self._lock:
            return self.cost + self.estimated + self.reserved

    def over_cap(self, estimate: float) -> "Unit | None":
        """The first unit of the chain whose cap ``estimate`` more would exceed (None: all fit)."""
        for unit in self.chain():
            if unit.max_cost is not None and unit.spent() + estimate > unit.max_cost:
                return unit
        return None

    def try_hold(self, estimate: float) -> "Unit | None":
        """Hold ``estimate`` on every unit of the chain if it fits every cap, as one step (two
        threads must not both fit in the last room); else the unit whose cap it would exceed."""
        with _cap_lock:
            over = self.over_cap(estimate)
            if over is None:
                self.hold(estimate)
            return over

    def refusal(self, estimate: float | None) -> Decision:
        """The budget-exceeded decision of this unit's cap, for a call that may cost ``estimate``."""
        cap = float(self.max_cost or 0.0)
        spent = self.spent()
        remaining = max(0.0, cap - spent)
        wants = f", this call may cost ${estimate:.6f}" if estimate else ""
        return Decision(
            result=semconv.RESULT_BLOCKED,
            policy_name=f"unit:{self.name}",
            reason_code=semconv.REASON_BUDGET_EXCEEDED,
            message=f"unit of work {self.name!r} would exceed its cost cap of ${cap:.6f} (spent ${spent:.6f}{wants})",
            budget=BudgetStatus(name=f"unit:{self.name}", period="unit", allocated=cap, consumed=spent, remaining=remaining),
        )

    def hold(self, estimate: float) -> None:
        for unit in self.chain():
            with unit._lock:
                unit.reserved += estimate

    def settle(self, held: float, cost: float | None, input_tokens: int | None, output_tokens: int | None, *, failed: bool = False) -> None:
        """Add one finished call to every unit of the chain and release what it held. An
        unpriced call is charged its estimate against the cap (never a guess in ``cost``, the
        unit's ``genops.cost.total``, which stays the sum of its priced calls)."""
        for unit in self.chain():
            with unit._lock:
                unit.reserved = max(0.0, unit.reserved - held)
                unit.calls += 1
                if failed:
                    unit.failed_calls += 1
                    continue
                if cost is None:
                    unit.unpriced_calls += 1
                    if unit.max_cost is not None:
                        unit.estimated += held
                else:
                    unit.cost += cost
                unit.input_tokens += input_tokens or 0
                unit.output_tokens += output_tokens or 0

    def call_ended(self) -> None:
        """A call ended on the application's thread; its completion (``settle``) may be queued."""
        for unit in self.chain():
            with unit._lock:
                unit.ended += 1

    @property
    def completions_pending(self) -> bool:
        """True while a call that ended in this unit has not been added to it yet (queued)."""
        with self._lock:
            return self.ended > self.calls

    def add_cost(self, usd: float) -> None:
        """A cost that is not tokens (``track_cost``), on every unit of the chain."""
        for unit in self.chain():
            with unit._lock:
                unit.cost += usd

    def blocked(self) -> None:
        for unit in self.chain():
            with unit._lock:
                unit.blocked_calls += 1


class CostCaps:
    """Holds calls against the cost caps of their units with the budgets' reservation estimate."""

    def __init__(self, settings: Any) -> None:
        from genops_autoinstrument.governance.estimator import Estimator, settings_pricer

        self._estimator = Estimator(settings_pricer(settings))
        self._warned: set[tuple[str, str | None]] = set()

    def estimate(self, request: Any) -> float | None:
        """What the call may cost, or None when its model cannot be priced."""
        return self._estimator.estimate(request, lazy_prompt(request))

    def hold(self, request: Any, unit: Unit, ticket: Ticket) -> tuple[Ticket, float | None]:
        """Reserve the call's estimate against every cap of ``unit``'s chain, or refuse it (the
        returned ticket then carries the decision). Returns the ticket and what is held."""
        estimate = self.estimate(request)
        if estimate is None:
            self._warn_unpriced(request)
            return ticket, None
        over = unit.try_hold(estimate)
        if over is None:
            return ticket, estimate
        decision = over.refusal(estimate)
        budget = decision.budget
        attributes = {
            **ticket.attributes,
            semconv.GENOPS_POLICY_NAME: decision.policy_name,
            semconv.GENOPS_POLICY_RESULT: decision.result,
            semconv.GENOPS_POLICY_REASON_CODE: decision.reason_code,
            semconv.GENOPS_BUDGET_NAME: budget.name,
            semconv.GENOPS_BUDGET_ALLOCATED: budget.allocated,
            semconv.GENOPS_BUDGET_CONSUMED: budget.consumed,
            semconv.GENOPS_BUDGET_REMAINING: budget.remaining,
            semconv.GENOPS_BUDGET_PERIOD: "unit",
        }
        return Ticket(decision, ticket.reserved, attributes, list(ticket.events), ticket.state), None

    def _warn_unpriced(self, request: Any) -> None:
        """A cap cannot hold a call that cannot be priced: say so once per model."""
        key = (request.provider, request.request_model)
        if key not in self._warned:
            self._warned.add(key)
            log.warning("a unit of work's cost cap cannot hold %s %s calls: the model cannot be priced (add it to GENOPS_PRICING_FILE)", request.provider, request.request_model)


@dataclass(frozen=True)
class Scope:
    """The code's attribution (merged over every enclosing block) and the innermost unit.

    ``outer``: the scope current when this one was made, current again once this one has ended;
    ``own``: the attribution this scope added; ``ender``: what ends it (anything with a
    ``closed`` flag: its unit, a framework's run), None for an attribution-only block."""

    attribution: Mapping[str, str] = field(default_factory=dict)
    unit: Unit | None = None
    outer: "Scope | None" = None
    own: Mapping[str, str] = field(default_factory=dict)
    ender: Any = None

    @property
    def stale(self) -> bool:
        """True once what ended it, or the unit it holds, has closed."""
        return (self.ender is not None and self.ender.closed) or (self.unit is not None and self.unit.closed)


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("genops_scope", default=None)


def live(scope: Scope | None) -> Scope | None:
    """``scope`` as it is now: a scope that has ended gives way to the live scope around it, where
    an attribution-only block inside an ended one keeps its own attribution. So a run whose end ran
    in another context (or never came) attributes nothing more, and parents nothing, here."""
    kept: list[Mapping[str, str]] = []  # own attribution of the blocks inside, innermost first
    while scope is not None and scope.stale:
        if scope.own and not (scope.ender is not None and scope.ender.closed):
            kept.append(scope.own)
        scope = scope.outer
    if not kept:
        return scope
    own: dict[str, str] = {}
    for attribution in reversed(kept):
        own.update(attribution)
    return inner_scope(scope, own, None, None)


def current_scope() -> Scope | None:
    """The current context's live scope (None: the code API set none here)."""
    scope = _scope.get()
    if scope is None or not scope.stale:  # the common case: one read, two attribute checks
        return scope
    return live(scope)


def current_unit() -> Unit | None:
    """The innermost live unit of work of the current context, if any."""
    scope = current_scope()
    return scope.unit if scope is not None else None


def unit_context(unit: Unit) -> Any:
    """The OpenTelemetry context whose span is ``unit``'s: the parent GenOps gives a call or a nested
    unit started inside it. Kept in GenOps' own scope, never made the application's current context,
    so the SDK's requests and the spans others open inside the unit stay as they are bare."""
    context = unit.context
    if context is None:
        from opentelemetry.trace import set_span_in_context

        context = unit.context = set_span_in_context(unit.span)
    return context


def enter_scope(attribution: Mapping[str, str] | None = None, unit: Unit | None = None) -> contextvars.Token:
    """Make a new scope current: the enclosing one's attribution overridden by ``attribution``,
    and ``unit`` (or the enclosing unit) as the innermost unit."""
    return _scope.set(inner_scope(current_scope(), attribution, unit, unit))


def inner_scope(outer: Scope | None, attribution: Mapping[str, str] | None, unit: Unit | None, ender: Any) -> Scope:
    """A scope inside ``outer``: its attribution overridden by ``attribution``, ``unit`` (or
    ``outer``'s) as the innermost unit, ended when ``ender`` closes (None: when its unit does)."""
    merged: Mapping[str, str] = outer.attribution if outer is not None else {}
    own = dict(attribution) if attribution else {}
    if own:
        merged = {**merged, **own}
    return Scope(merged, unit if unit is not None else (outer.unit if outer is not None else None), outer, own, ender)


def exit_scope(token: contextvars.Token) -> None:
    _scope.reset(token)


def scope_variable() -> contextvars.ContextVar[Scope | None]:
    """The context variable itself (thread propagation copies its value into new threads)."""
    return _scope
