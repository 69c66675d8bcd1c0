"""One policy's result, and how the results of every policy combine into the call's one Decision.

Policies return cheap :class:`Outcome` tuples; the immutable :class:`Decision` is built once, at
the end, by :func:`combine`: the first blocking outcome wins, otherwise warnings accumulate.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import BudgetStatus, Decision

NONE_BUCKET = "(none)"  # the scope value of calls that carry no value for a rule's attribution key


class Outcome(NamedTuple):
    """One policy's result (cheap to make; the one immutable Decision is built from these at the end)."""

    result: str = semconv.RESULT_ALLOWED
    policy_name: str | None = None
    reason_code: str | None = None
    message: str = ""
    mode: str = "enforced"
    budget: tuple | None = None  # BudgetStatus fields: name, period, allocated, consumed, remaining
    extra: dict | None = None

    @property
    def blocks(self) -> bool:
        return self.mode == "enforced" and (self.result == semconv.RESULT_BLOCKED or self.result == semconv.RESULT_RATE_LIMITED)


def result_for(mode: str, blocked: str = semconv.RESULT_BLOCKED) -> str:
    """The result a failed check has in ``mode``: ``blocked`` when enforced, a warning otherwise."""
    return blocked if mode == "enforced" else semconv.RESULT_WARNING


def scope_value(attribute: str | None, attribution: Mapping[str, str]) -> str:
    """The bucket a budget or rate rule counts this call in: its attribution value, ``*`` for global rules."""
    if attribute is None:
        return "*"
    return attribution.get(attribute) or NONE_BUCKET


def policy_fields(decision: "Decision | Outcome") -> dict[str, Any]:
    """The genops.policy.* attributes of a decision or of one policy's outcome."""
    fields: dict[str, Any] = {semconv.GENOPS_POLICY_RESULT: decision.result}
    if decision.policy_name:
        fields[semconv.GENOPS_POLICY_NAME] = decision.policy_name
    if decision.result != semconv.RESULT_ALLOWED:
        if decision.reason_code:
            fields[semconv.GENOPS_POLICY_REASON_CODE] = decision.reason_code
        fields[semconv.GENOPS_POLICY_MODE] = decision.mode
    return fields


def combine(outcomes: Sequence[Outcome]) -> Decision:
    """First blocking outcome wins; otherwise warnings accumulate into one WARNING; else ALLOWED."""
    for outcome in outcomes:
        if outcome.blocks:
            budget = BudgetStatus(*outcome.budget) if outcome.budget else None
            return Decision(outcome.result, outcome.policy_name, outcome.reason_code, outcome.message, outcome.mode, budget, outcome.extra or {})
    warnings = [o for o in outcomes if o.result != semconv.RESULT_ALLOWED]
    budgets = [o.budget for o in outcomes if o.budget is not None]
    # The budget with the smallest share left speaks for the call (name, allocated, remaining…).
    tightest = min(budgets, key=lambda b: b[4] / b[2] if b[2] else 0.0) if budgets else None
    if warnings:
        first = warnings[0]
        extra = dict(first.extra or {})
        extra["warnings"] = tuple((w.policy_name, w.reason_code, w.mode) for w in warnings)
        budget = first.budget or tightest
        return Decision(
            semconv.RESULT_WARNING,
            first.policy_name,
            first.reason_code,
            "; ".join(w.message for w in warnings),
            "warn" if any(w.mode == "warn" for w in warnings) else "audit",
            BudgetStatus(*budget) if budget else None,
            extra,
        )
    if not outcomes:
        return Decision()
    if tightest is None:
        return Decision(policy_name=outcomes[0].policy_name)
    return Decision(policy_name=tightest[0], budget=BudgetStatus(*tightest))
