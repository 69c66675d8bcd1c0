"""Where enforcement plugs into the engine: a decision before each call, a reconciliation after it.

The engine calls :meth:`Governor.decide` before a request is sent and :meth:`Governor.settle`
after it ran (or failed, or was blocked). The governor owns policies, budgets, rate limits and
the ledger; the engine owns the span and metrics and writes whatever the governor returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from genops_autoinstrument.governance.decisions import ALLOWED, Decision
from genops_autoinstrument.governance.request import PolicyRequest

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings


@dataclass
class Ticket:
    """The governor's answer for one call, carried from decision to settlement."""

    decision: Decision = ALLOWED
    reserved: float | None = None  # USD held against budgets for this call
    attributes: dict[str, Any] = field(default_factory=dict)  # genops.policy.*, genops.budget.*, accounting
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # span events, in order
    state: Any = None  # the governor's own bookkeeping (reservation handles)


@dataclass
class Settlement:
    """What reconciliation adds to the span."""

    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Governor:
    """Allows everything and holds nothing: the governor when no rule is configured."""

    active = False

    def decide(self, request: PolicyRequest, attribution: Mapping[str, str]) -> Ticket:
        return Ticket()

    def settle(self, ticket: Ticket, actual_cost: float | None, ran: bool) -> Settlement | None:
        """Reconcile the reservation with the actual cost (``None`` when unpriced or not run)."""
        return None

    def check(self, request: PolicyRequest, attribution: Mapping[str, str]) -> Decision:
        """What :meth:`decide` would answer, with nothing reserved or counted (a pre-check)."""
        return ALLOWED

    def charge(self, attribution: Mapping[str, str], usd: float) -> Settlement | None:
        """Count ``usd`` of spend that is not a model call against the budgets of ``attribution``."""
        return None

    def after_fork(self) -> None:
        """Recreate locks and connections in a forked child."""


def build_governor(settings: "Settings") -> Governor:
    """The governor for these settings (the no-op one when no rule is configured)."""
    if not (
        settings.budgets
        or settings.rate_limits
        or settings.allowed_models
        or settings.blocked_models
        or settings.content_policy != "off"
    ):
        return Governor()
    try:
        from genops_autoinstrument.governance.enforcing import EnforcingGovernor
    except ImportError:  # pragma: no cover - enforcement ships with the core
        return Governor()
    return EnforcingGovernor(settings)
