"""Budgets: reserve an estimate before the call, settle the actual cost after it, alert once per period.

Concurrent callers sharing one ledger can overrun a budget by at most the estimates' error on calls
in flight: spend under an enforced budget never exceeds it by more than what calls exceeded their
own estimates by. A reservation not settled within ``RESERVATION_TTL_SECONDS`` (10 minutes: a
killed process) stops counting. An exhausted budget refuses every call, priced or not.

A model that cannot be priced has no estimate: it reserves 0 (``genops.accounting.estimate_status
= unpriced``) and is charged 0, so no budget can hold it. ``GENOPS_UNPRICED_POLICY`` says what a
budget does about such a call: ``warn`` (default) lets it run with ``WARNING`` / ``UNPRICED_USAGE``
from each budget it escapes and one log line per model and process; ``block`` refuses it before
anything is reserved (``BLOCKED`` / ``UNPRICED_USAGE``, a budget-like block, so SDKs raise their
429 error) when a budget is enforced; ``allow`` runs it silently. A priced model whose *response*
reports no usage is not this case: it was held by its estimate, and is charged that estimate
(``charged_basis = estimate``), so the budget still holds it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.estimator import Estimator
from genops_autoinstrument.governance.governor import Settlement
from genops_autoinstrument.governance.ledger.base import ALERT_GRACE_SECONDS, Bucket, BudgetCheck, to_nanos, to_usd, unique_buckets
from genops_autoinstrument.governance.ledger_link import LedgerLink
from genops_autoinstrument.governance.outcomes import Outcome, result_for, scope_value
from genops_autoinstrument.governance.periods import Window, window
from genops_autoinstrument.governance.policies import RatePolicy, rate_results
from genops_autoinstrument.governance.request import PolicyRequest, Prompt

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings
    from genops_autoinstrument.config.rules import BudgetRule

log = logging.getLogger("genops")

ATTR_ESTIMATE_STATUS = semconv.GENOPS_ACCOUNTING_ESTIMATE_STATUS
ATTR_CHARGED = semconv.GENOPS_ACCOUNTING_CHARGED
ATTR_CHARGED_BASIS = semconv.GENOPS_ACCOUNTING_CHARGED_BASIS
ATTR_BUDGET_THRESHOLD = semconv.GENOPS_BUDGET_THRESHOLD
UNPRICED = "unpriced"  # the estimate status of a model that cannot be priced


@dataclass(frozen=True)
class Plan:
    """A budget rule with everything the hot path needs computed once."""

    rule: "BudgetRule"
    name: str
    limit: int
    blocking: bool
    allocated: float


@dataclass(frozen=True)
class Held:
    """A live reservation: what settlement needs."""

    ticket_id: str
    amount: int  # nano-dollars reserved on every bucket
    buckets: tuple[Bucket, ...]
    rules: tuple[tuple[Plan, BudgetCheck], ...]


Prepared = tuple[int, "list[tuple[Plan, BudgetCheck]]", str]  # estimate (nano-USD), each rule's check, reservation id


class Budgets:
    """The ``GENOPS_BUDGETS`` rules, reserved and settled through the shared ledger link."""

    def __init__(self, settings: "Settings", link: LedgerLink, estimator: Estimator, reservation_ttl: float) -> None:
        self.settings = settings
        self.reservation_ttl = reservation_ttl
        self._link = link
        self._estimator = estimator
        self._plans = tuple(Plan(rule, rule.name, to_nanos(rule.amount), rule.mode == "enforced", float(rule.amount)) for rule in settings.budgets)
        self.names = tuple(plan.name for plan in self._plans)
        self._windows: dict[str, Window] = {}
        self._ids = TicketIds()
        self._alerted: set[str] = set()  # alert keys the ledger already answered for: asked once per process

    # --- reservation -----------------------------------------------------------------------------
    def reserve(
        self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict, rates: RatePolicy | None = None
    ) -> tuple[list[Outcome], Held | None]:
        """Hold the estimate on every budget's bucket; with ``rates``, count those in the same ledger transaction first."""
        rate_checks, names = rates.checks(attribution) if rates is not None else ({}, {})
        prepared = self._prepare(request, attribution, prompt, now, attributes)
        amount, pairs, ticket_id = prepared
        refused = self.refuse_unpriced(request, attributes)
        if refused:  # nothing is reserved or counted for a call that will not run
            return refused, None
        checks = [check for _, check in pairs]
        try:
            if rates is None:
                rate, reservation = None, self._link.ledger.reserve(ticket_id, amount, checks, now + self.reservation_ttl, now)
            else:
                rate, reservation = self._link.ledger.hit_and_reserve(list(rate_checks.values()), ticket_id, amount, checks, now + self.reservation_ttl, now)
        except Exception as error:
            if rates is None:
                refused = self._link.refuse("reserve", error, attributes, pairs[0][0].name, any(plan.blocking for plan, _ in pairs))
            else:
                refused = self._link.refuse("rate+reserve", error, attributes, next(iter(names.values())), blocking=True)
            return refused, self._unconfirmed(refused, prepared)
        outcomes = rate_results(names, rate.over) if rate is not None else []
        if reservation is None:  # a rate limit refused the call: nothing was reserved
            return outcomes, None
        budget_outcomes, held = self._results(attribution, prepared, reservation)
        return outcomes + self.escaped_unpriced(request, budget_outcomes, attributes, logged=True), held

    def _unconfirmed(self, refused: list[Outcome], prepared: Prepared) -> Held | None:
        """A call that runs although its reserve failed (fail-open) is still settled where the ledger
        makes that safe (Redis: the settlement is retried and counts once), so its spend is not lost."""
        if refused or not getattr(self._link.ledger, "settles_failed_reserves", False):
            return None
        amount, pairs, ticket_id = prepared
        return Held(ticket_id, amount, unique_buckets([check for _, check in pairs]), tuple(pairs))

    def _prepare(self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> Prepared:
        """The estimate (nano-USD), each rule's bucket check and a fresh reservation id."""
        estimate = self._estimator.estimate(request, prompt)
        if estimate is None:
            attributes[ATTR_ESTIMATE_STATUS] = UNPRICED
            amount = 0
        else:
            amount = to_nanos(estimate)
        pairs = []
        for plan in self._plans:
            rule = plan.rule
            value = scope_value(rule.attribute, attribution)
            period = self._window(rule.period, now)
            key = f"budget|{rule.scope}|{value}|{rule.period}|{period.key}"
            expires = period.end + ALERT_GRACE_SECONDS if period.end is not None else None
            pairs.append((plan, BudgetCheck(key, plan.limit, plan.blocking, expires)))
        return amount, pairs, self._ids.next()

    def _results(self, attribution: Mapping[str, str], prepared: Prepared, reservation: Any) -> tuple[list[Outcome], Held | None]:
        """Each rule's outcome (with its figures), and the reservation when the ledger made it."""
        amount, pairs, ticket_id = prepared
        outcomes = []
        for (plan, check), figures, over in zip(pairs, reservation.figures, reservation.over):
            rule = plan.rule
            consumed = to_usd(figures.spent)
            status = (plan.name, rule.period, plan.allocated, consumed, max(0.0, to_usd(check.limit - figures.spent - figures.reserved)))
            if over:
                scope = rule.scope if rule.attribute is None else f"{rule.scope}={scope_value(rule.attribute, attribution)}"
                message = (
                    f"GenOps budget {plan.name} exceeded for {scope}: ${_money(consumed)} spent and "
                    f"${_money(to_usd(figures.reserved))} in flight of ${_money(plan.allocated)} this {rule.period}; "
                    f"this call needs about ${_money(to_usd(amount))}"
                )
                outcomes.append(Outcome(result_for(rule.mode), plan.name, semconv.REASON_BUDGET_EXCEEDED, message, rule.mode, status))
            else:
                outcomes.append(Outcome(policy_name=plan.name, mode=rule.mode, budget=status))
        if not reservation.reserved:
            return outcomes, None
        checks = [check for _, check in pairs]
        return outcomes, Held(ticket_id, amount, unique_buckets(checks), tuple(pairs))

    # --- calls that cannot be priced (GENOPS_UNPRICED_POLICY) -----------------------------------------
    def refuse_unpriced(self, request: PolicyRequest, attributes: Mapping[str, Any]) -> list[Outcome]:
        """Under ``block``, an unpriced call is refused by every enforced budget (none: no refusal)."""
        if self.settings.unpriced_policy != "block" or attributes.get(ATTR_ESTIMATE_STATUS) != UNPRICED:
            return []
        model = _shown(request)
        return [
            Outcome(
                semconv.RESULT_BLOCKED,
                plan.name,
                semconv.REASON_UNPRICED_USAGE,
                f"GenOps budget {plan.name} refuses calls to {model}: GenOps cannot price that model, so the "
                f"budget could not hold them (GENOPS_UNPRICED_POLICY=block; {UNPRICED_FIX})",
                "enforced",
            )
            for plan in self._plans
            if plan.blocking
        ]

    def escaped_unpriced(self, request: PolicyRequest, outcomes: list[Outcome], attributes: Mapping[str, Any], logged: bool) -> list[Outcome]:
        """The budgets' ``outcomes``, each budget an unpriced call escapes (one it did not find
        exhausted) turned into a warning; ``logged``: one log line per model and process names them."""
        if self.settings.unpriced_policy == "allow" or attributes.get(ATTR_ESTIMATE_STATUS) != UNPRICED:
            return outcomes
        model = _shown(request)
        escaped = [str(outcome.policy_name) for outcome in outcomes if outcome.result == semconv.RESULT_ALLOWED]
        if escaped and logged:
            _warn_once(request, model, escaped)
        return [
            outcome._replace(
                result=semconv.RESULT_WARNING,
                reason_code=semconv.REASON_UNPRICED_USAGE,
                message=f"GenOps budget {outcome.policy_name} cannot hold calls to {model}: GenOps cannot price that model, so they are charged $0",
                mode="warn",
            )
            if outcome.result == semconv.RESULT_ALLOWED
            else outcome
            for outcome in outcomes
        ]

    def _window(self, period: str, now: float) -> Window:
        cached = self._windows.get(period)
        if cached is None or not (cached.start <= now and (cached.end is None or now < cached.end)):
            cached = self._windows[period] = window(period, now)
        return cached

    # --- settlement ------------------------------------------------------------------------------
    def settle(self, held: Held, actual_cost: float | None, ran: bool, now: float) -> Settlement | None:
        """Release the reservation of a call that did not run; otherwise charge its cost (or the estimate)."""
        if not ran:
            try:
                self._link.ledger.release(held.ticket_id, held.amount, held.buckets, now)
            except Exception as error:
                self._link.failed("release", error)  # the reservation then simply expires
            return None
        basis = "actual" if actual_cost is not None else "estimate"
        counted = actual_cost if actual_cost is not None else to_usd(held.amount)
        fields: dict[str, Any] = {ATTR_CHARGED: counted, ATTR_CHARGED_BASIS: basis, semconv.GENOPS_ACCOUNTING_UNIT: "USD"}
        if actual_cost is not None:  # an unpriced cost is never reported as a number
            fields[semconv.GENOPS_ACCOUNTING_ACTUAL] = actual_cost
        settlement = Settlement(attributes=dict(fields))
        try:
            after = self._link.ledger.settle(held.ticket_id, held.amount, held.buckets, to_nanos(counted), now)
        except Exception as error:
            self._link.failed("settle", error)
            after = None
        reconciliation: dict[str, Any] = {semconv.GENOPS_ACCOUNTING_RESERVED: to_usd(held.amount), **fields}
        if after is not None:
            plan, check = held.rules[0]
            reconciliation[semconv.GENOPS_BUDGET_NAME] = plan.name
            reconciliation[semconv.GENOPS_BUDGET_CONSUMED] = to_usd(after[check.key].spent)
        settlement.events.append((semconv.EVENT_BUDGET_RECONCILIATION, reconciliation))
        if after is not None:
            settlement.events.extend(self._alerts(held, after, now))
        return settlement

    def _alerts(self, held: Held, after: Mapping[str, Any], now: float) -> list[tuple[str, dict[str, Any]]]:
        """A budget.alert event (and one log line) the first time a budget passes the alert threshold."""
        threshold = self.settings.budget_alert_threshold
        events = []
        for plan, check in held.rules:
            rule = plan.rule
            spent = after[check.key].spent
            if spent < threshold * check.limit:
                continue
            key = f"alert|{check.key}|{check.limit}"
            if key in self._alerted:  # this process or another already raised it: no round trip per call
                continue
            try:
                first = self._link.ledger.first_alert(key, check.expires_at, now)
            except Exception as error:
                self._link.failed("alert", error)
                continue
            if len(self._alerted) >= _ALERTS_REMEMBERED:
                self._alerted.clear()
            self._alerted.add(key)  # keys name their period, so a new period asks again
            if first:
                events.append(
                    (
                        semconv.EVENT_BUDGET_ALERT,
                        {
                            semconv.GENOPS_BUDGET_NAME: plan.name,
                            semconv.GENOPS_BUDGET_PERIOD: rule.period,
                            semconv.GENOPS_BUDGET_ALLOCATED: plan.allocated,
                            semconv.GENOPS_BUDGET_CONSUMED: to_usd(spent),
                            ATTR_BUDGET_THRESHOLD: threshold,
                        },
                    )
                )
                log.warning("GenOps budget %s has used %.0f%% of $%s this %s", plan.name, 100 * to_usd(spent) / plan.allocated, rule.amount, rule.period)
        return events

    def after_fork(self) -> None:
        self._ids = TicketIds()  # never reuse the parent's reservation ids


class TicketIds:
    """Unique reservation ids without a syscall per call: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):x}"


_ALERTS_REMEMBERED = 10_000  # bounds the memo for attribution keys without end (customers)
UNPRICED_FIX = "add its prices to a GENOPS_PRICING_FILE"
_warned: set[tuple[str, str | None]] = set()  # (provider, model) already named on stderr by this process
_warned_lock = threading.Lock()


def _shown(request: PolicyRequest) -> str:
    return f"model {request.request_model!r}" if request.request_model else "a model GenOps was not told"


def _warn_once(request: PolicyRequest, model: str, budgets: list[str]) -> None:
    """One ``genops`` warning per model and process: which budgets its calls escape, and the fix."""
    key = (request.provider, request.request_model)
    if key in _warned:
        return
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(
        "GenOps cannot price %s (provider %s): its calls run outside budget %s, charged $0; %s, "
        "or set GENOPS_UNPRICED_POLICY=block to refuse them (allow: no warning)",
        model,
        request.provider,
        ", ".join(budgets),
        UNPRICED_FIX,
    )


def _money(usd: float) -> str:
    """USD for messages: plain decimals down to a millionth of a cent, no exponent."""
    return f"{usd:,.8f}".rstrip("0").rstrip(".") or "0"
