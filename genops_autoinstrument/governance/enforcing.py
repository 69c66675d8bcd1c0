"""The enforcing governor: model, content, rate and budget policies, checked before each call.

Order: model, content, rate, budget. The first blocking result wins and later policies are not
evaluated (nothing is reserved for a call that will not run); warn and audit results accumulate.
The policies live in ``policies``, the estimate in ``estimator``, reservation and settlement in
``budgets``; this module composes them into one :class:`Ticket` and one :class:`Settlement`.

A ledger failure follows ``GENOPS_FAIL_MODE`` (open: allow, log once, count
``genops.ledger.failures``; closed: block with ``BUDGET_RESERVATION_FAILED``); what is spent while
the ledger is unreachable is not recorded there (see ``ledger_link``).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, Mapping

from genops_autoinstrument import lifecycle, semconv
from genops_autoinstrument.governance.budgets import ATTR_ESTIMATE_STATUS, Budgets, Held
from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.estimator import Estimator, Pricer, settings_pricer
from genops_autoinstrument.governance.governor import Governor, Settlement, Ticket
from genops_autoinstrument.governance.ledger.base import RESERVATION_TTL_SECONDS, Ledger, to_usd
from genops_autoinstrument.governance.ledger_link import LedgerLink
from genops_autoinstrument.governance.outcomes import Outcome, combine, policy_fields
from genops_autoinstrument.governance.periods import Clock, system_clock
from genops_autoinstrument.governance.policies import ContentPolicy, ModelPolicy, Policy, RatePolicy
from genops_autoinstrument.governance.request import PolicyRequest, Prompt, lazy_prompt
from genops_autoinstrument.governance.spend import charge_budgets, check_budgets

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings

log = logging.getLogger("genops")

WARN_LOG_INTERVAL_SECONDS = 60.0  # warn-mode results log at most one line per policy per minute


class EnforcingGovernor(Governor):
    """Applies the configured policies; budgets and rate limits live in the ledger of ``GENOPS_LEDGER_URL``."""

    active = True

    def __init__(
        self,
        settings: "Settings",
        *,
        ledger: Ledger | None = None,
        clock: Clock | None = None,
        pricer: Pricer | None = None,
        meter: Any = None,
        reservation_ttl: float = RESERVATION_TTL_SECONDS,
    ) -> None:
        self.settings = settings
        self._clock = clock or system_clock
        self._link = LedgerLink(settings, ledger, meter)
        self._gates: tuple[Policy, ...] = (ModelPolicy(settings), ContentPolicy(settings))  # no ledger needed
        self._rates = RatePolicy(settings, self._link)
        self._budgets = Budgets(settings, self._link, Estimator(pricer or settings_pricer(settings)), reservation_ttl)
        self._last_warning: dict[str, float] = {}
        _track_forks(self)

    # --- plumbing --------------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        """The ledger, opened on first use (opening never touches disk or network by itself)."""
        return self._link.ledger

    @property
    def ledger_failures(self) -> int:
        """Ledger operations that failed (also exported as the genops.ledger.failures counter)."""
        return self._link.failures

    @property
    def reservation_ttl(self) -> float:
        """Seconds after which an unsettled reservation stops counting."""
        return self._budgets.reservation_ttl

    @reservation_ttl.setter
    def reservation_ttl(self, seconds: float) -> None:
        self._budgets.reservation_ttl = seconds

    def bind_meter(self, meter: Any) -> None:
        """Record the ledger-failure counter through this meter (the engine's)."""
        self._link.bind_meter(meter)

    def _warn(self, outcome: Outcome, now: float) -> None:
        if outcome.mode != "warn" or outcome.reason_code == semconv.REASON_UNPRICED_USAGE:
            return  # budgets name an unpriced model once per process themselves
        name = outcome.policy_name or ""
        last = self._last_warning.get(name)
        if last is not None and now - last < WARN_LOG_INTERVAL_SECONDS:
            return
        self._last_warning[name] = now
        log.warning("%s (warn mode: the call goes ahead)", outcome.message)

    # --- decision --------------------------------------------------------------------------------
    def decide(self, request: PolicyRequest, attribution: Mapping[str, str]) -> Ticket:
        now = self._clock()
        attributes: dict[str, Any] = {}
        outcomes, held = self._evaluate(request, attribution, lazy_prompt(request), now, attributes)
        reserved = to_usd(held.amount) if held is not None else None
        decision = combine(outcomes)
        events: list[tuple[str, dict[str, Any]]] = []
        for outcome in outcomes:
            events.append((semconv.EVENT_POLICY_EVALUATED, policy_fields(outcome)))
            if outcome.result == semconv.RESULT_WARNING:
                self._warn(outcome, now)
        if held is not None:
            events.append(
                (
                    semconv.EVENT_BUDGET_RESERVATION,
                    {
                        semconv.GENOPS_BUDGET_NAME: self._budgets.names,
                        semconv.GENOPS_ACCOUNTING_RESERVED: reserved,
                        semconv.GENOPS_ACCOUNTING_UNIT: "USD",
                        ATTR_ESTIMATE_STATUS: attributes.get(ATTR_ESTIMATE_STATUS, "priced"),
                    },
                )
            )
        if decision.budget is not None:
            status = decision.budget
            attributes[semconv.GENOPS_BUDGET_NAME] = status.name
            attributes[semconv.GENOPS_BUDGET_PERIOD] = status.period
            attributes[semconv.GENOPS_BUDGET_ALLOCATED] = status.allocated
            attributes[semconv.GENOPS_BUDGET_CONSUMED] = status.consumed
            attributes[semconv.GENOPS_BUDGET_REMAINING] = status.remaining
        if reserved is not None:
            attributes[semconv.GENOPS_ACCOUNTING_RESERVED] = reserved
            attributes[semconv.GENOPS_ACCOUNTING_UNIT] = "USD"
        attributes.update(policy_fields(decision))
        return Ticket(decision=decision, reserved=reserved, attributes=attributes, events=events, state=held)

    def _evaluate(self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> tuple[list[Outcome], Held | None]:
        """Every policy's outcomes in order, up to the first that blocks; and the budget reservation, if made."""
        outcomes: list[Outcome] = []
        for gate in self._gates:
            outcomes += gate.evaluate(request, attribution, prompt, now, attributes)
            if any(o.blocks for o in outcomes):
                return outcomes, None
        settings = self.settings
        if settings.rate_limits and settings.budgets and getattr(self.ledger, "atomic_rate_and_reserve", False):
            more, held = self._budgets.reserve(request, attribution, prompt, now, attributes, rates=self._rates)  # one transaction
            return outcomes + more, held
        outcomes += self._rates.evaluate(request, attribution, prompt, now, attributes)
        if not settings.budgets or any(o.blocks for o in outcomes):
            return outcomes, None
        more, held = self._budgets.reserve(request, attribution, prompt, now, attributes)
        return outcomes + more, held

    # --- settlement ------------------------------------------------------------------------------
    def settle(self, ticket: Ticket, actual_cost: float | None, ran: bool) -> Settlement | None:
        held = ticket.state
        if not isinstance(held, Held):
            return None
        return self._budgets.settle(held, actual_cost, ran, self._clock())

    # --- the code API: pre-checks and costs that are not tokens -----------------------------------
    def check(self, request: PolicyRequest, attribution: Mapping[str, str]) -> Decision:
        """A dry run of :meth:`decide`: the model and content rules, then whether the estimate fits
        what each budget has left (read with ``ledger.figures``), combined into the same Decision.

        Nothing is reserved, spent or counted in a rate window, and warnings are not logged (a
        ledger that cannot be read is counted and follows the fail mode, as in decide). Rate limits
        are not judged: the ledger can only count a call into a window (``hit``), not read one, so
        asking would use up a slot. A check
        without a model skips the model rules (there is no model to judge) and needs no estimate:
        it answers whether the budgets have anything left at all.
        """
        now = self._clock()
        attributes: dict[str, Any] = {}
        prompt = lazy_prompt(request)
        gates = self._gates if request.request_model else tuple(g for g in self._gates if not isinstance(g, ModelPolicy))
        outcomes: list[Outcome] = []
        for gate in gates:
            outcomes += gate.evaluate(request, attribution, prompt, now, attributes)
        if self.settings.budgets and not any(o.blocks for o in outcomes):
            outcomes += check_budgets(self._budgets, request, attribution, prompt, now, attributes)
        return combine(outcomes)

    def charge(self, attribution: Mapping[str, str], usd: float) -> Settlement | None:
        """Add ``usd`` of actual spend to every budget whose scope matches ``attribution`` (a
        settlement of a call that reserved nothing); a ledger failure is handled as in settle."""
        if not self.settings.budgets:
            return None
        return charge_budgets(self._budgets, attribution, usd, self._clock())

    # --- lifecycle -------------------------------------------------------------------------------
    def after_fork(self) -> None:
        self._budgets.after_fork()
        self._link.after_fork()

    def close(self) -> None:
        self._link.close()


_governors: "weakref.WeakSet[EnforcingGovernor]" = weakref.WeakSet()


def _track_forks(governor: EnforcingGovernor) -> None:
    """Reset every live governor's locks and connections in a forked child (gunicorn, multiprocessing)."""
    _governors.add(governor)
    lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_GOVERNANCE)


def _after_fork_in_child() -> None:
    for governor in list(_governors):
        try:
            governor.after_fork()
        except Exception:  # pragma: no cover - never break a fork
            pass
