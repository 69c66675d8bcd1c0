"""The enforcing governor: model, content, rate and budget policies, checked before each call.

Order: model, content, rate, budget. The first blocking result wins and later policies are not
evaluated (nothing is reserved for a call that will not run); warn and audit results accumulate.
Budgets reserve an *estimate* before the call and settle the actual cost after it, so concurrent
callers sharing one ledger can overrun a budget by at most the estimates' error on calls in flight.

Estimate: ``ceil(prompt characters / 4)`` input tokens plus ``max_output_tokens`` (or
:data:`DEFAULT_OUTPUT_TOKENS`) output tokens, priced like the real call. A model that cannot be
priced reserves 0 (it never blocks on a guess) and says so in ``genops.accounting.estimate_status``;
an unpriced *actual* cost counts the estimate. An exhausted budget refuses every call, priced or not.

Guarantee: with one shared ledger, spend under an enforced budget never exceeds it by more than
what calls exceeded their own estimates by; a reservation not settled within
``RESERVATION_TTL_SECONDS`` (10 minutes: a killed process) stops counting. A ledger failure follows
``GENOPS_FAIL_MODE`` (open: allow, log once, count ``genops.ledger.failures``; closed: block with
``BUDGET_RESERVATION_FAILED``); what is spent while the ledger is unreachable is not recorded there.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import math
import os
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

from genops_autoinstrument import semconv
from genops_autoinstrument.config.ledger_url import redact
from genops_autoinstrument.governance.content_rules import scan
from genops_autoinstrument.governance.decisions import BudgetStatus, Decision
from genops_autoinstrument.governance.governor import Governor, Settlement, Ticket
from genops_autoinstrument.governance.ledger.base import (
    ALERT_GRACE_SECONDS,
    RESERVATION_TTL_SECONDS,
    BudgetCheck,
    Ledger,
    LedgerError,
    RateCheck,
    to_nanos,
    to_usd,
    unique_buckets,
)
from genops_autoinstrument.governance.periods import Clock, system_clock, window
from genops_autoinstrument.pricing.usage import Usage

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings
    from genops_autoinstrument.engine.call import CallRequest
    from genops_autoinstrument.config.rules import BudgetRule

log = logging.getLogger("genops")

DEFAULT_OUTPUT_TOKENS = 1024  # reserved for output when the request sets no max_output_tokens
CHARS_PER_TOKEN = 4
NONE_BUCKET = "(none)"  # the scope value of calls that carry no value for a budget's attribution key
WARN_LOG_INTERVAL_SECONDS = 60.0  # warn-mode results log at most one line per policy per minute

# Short local names for the semconv attributes this module writes most.
ATTR_ESTIMATE_STATUS = semconv.GENOPS_ACCOUNTING_ESTIMATE_STATUS
ATTR_CHARGED = semconv.GENOPS_ACCOUNTING_CHARGED
ATTR_CHARGED_BASIS = semconv.GENOPS_ACCOUNTING_CHARGED_BASIS
ATTR_LEDGER_STATUS = semconv.GENOPS_LEDGER_STATUS
ATTR_BUDGET_THRESHOLD = semconv.GENOPS_BUDGET_THRESHOLD
ATTR_LEDGER_OPERATION = semconv.GENOPS_LEDGER_OPERATION

MODEL_POLICY = "model_policy"
CONTENT_POLICY = "content_policy"

Pricer = Callable[[str, "str | None", Usage, "str | None"], Any]


def _settings_pricer(settings: "Settings") -> Pricer:
    """Prices with the governor's own ``GENOPS_PRICING_FILE``, as the engine does with its settings."""
    pricing_file = settings.pricing_file

    def price(provider: str, model: str | None, usage: Usage, api_base_url: str | None) -> Any:
        from genops_autoinstrument.pricing import prices as pricing  # looked up per call: the pricing module may be replaced at run time

        return pricing.price_call(provider, model, usage, api_base_url, pricing_file=pricing_file)

    return price


@dataclass(frozen=True)
class _Plan:
    """A budget rule with everything the hot path needs computed once."""

    rule: "BudgetRule"
    name: str
    limit: int
    blocking: bool
    allocated: float


@dataclass(frozen=True)
class _Held:
    """A live reservation: what settlement needs."""

    ticket_id: str
    amount: int  # nano-dollars reserved on every bucket
    buckets: tuple[Bucket, ...]
    rules: tuple[tuple[_Plan, BudgetCheck], ...]


class _Outcome(NamedTuple):
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


def _result(mode: str, blocked: str = semconv.RESULT_BLOCKED) -> str:
    return blocked if mode == "enforced" else semconv.RESULT_WARNING


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
        self._ledger = ledger
        self._clock = clock or system_clock
        self._pricer = pricer or _settings_pricer(settings)
        self._meter = meter
        self._failures: Any = None
        self.reservation_ttl = reservation_ttl
        self.ledger_failures = 0  # also exported as the genops.ledger.failures counter
        self._allowed = tuple(pattern.lower() for pattern in settings.allowed_models)
        self._blocked = tuple(pattern.lower() for pattern in settings.blocked_models)
        self._lock = threading.Lock()
        self._unit_prices: dict[tuple[str, str | None, str | None], tuple[float, float] | None] = {}
        self._last_warning: dict[str, float] = {}
        self._logged_failures: set[str] = set()
        self._plans = tuple(_Plan(rule, rule.name, to_nanos(rule.amount), rule.mode == "enforced", float(rule.amount)) for rule in settings.budgets)
        self._budget_names = tuple(plan.name for plan in self._plans)
        self._rate_names = tuple(rule.name for rule in settings.rate_limits)
        self._windows: dict[str, Any] = {}
        self._ids = _TicketIds()
        _track_forks(self)

    # --- plumbing --------------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        """The ledger, opened on first use (opening never touches disk or network by itself)."""
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    from genops_autoinstrument.governance.ledger.factory import open_ledger

                    self._ledger = open_ledger(self.settings.ledger_url, self.settings.ledger_timeout_ms)
        return self._ledger

    def _ledger_failed(self, operation: str, error: BaseException) -> None:
        self.ledger_failures += 1
        try:
            if self._failures is None and self._meter is not None:
                self._failures = self._meter.create_counter(semconv.METRIC_LEDGER_FAILURES, unit="{failure}", description="GenOps ledger operations that failed")
            if self._failures is not None:
                self._failures.add(1, {ATTR_LEDGER_OPERATION: operation})
        except Exception:  # pragma: no cover - telemetry must not break the decision
            pass
        key = f"{operation}:{type(error).__name__}"
        if key not in self._logged_failures:
            self._logged_failures.add(key)
            url = redact(self.settings.ledger_url) if self.settings.ledger_url else "the default SQLite ledger"
            action = "blocking calls under enforced budgets and rate limits" if self.settings.fail_mode == "closed" else "allowing calls"
            message = str(error) if isinstance(error, LedgerError) else type(error).__name__
            log.warning("GenOps ledger %s failed on %s (%s); GENOPS_FAIL_MODE=%s: %s", url, operation, message, self.settings.fail_mode, action)

    def _warn(self, decision: _Outcome, now: float) -> None:
        if decision.mode != "warn":
            return
        name = decision.policy_name or ""
        last = self._last_warning.get(name)
        if last is not None and now - last < WARN_LOG_INTERVAL_SECONDS:
            return
        self._last_warning[name] = now
        log.warning("%s (warn mode: the call goes ahead)", decision.message)

    def bind_meter(self, meter: Any) -> None:
        """Record the ledger-failure counter through this meter (the engine's)."""
        self._meter = meter
        self._failures = None

    # --- decision --------------------------------------------------------------------------------
    def decide(self, request: "CallRequest", attribution: Mapping[str, str]) -> Ticket:
        now = self._clock()
        outcomes: list[_Outcome] = []
        attributes: dict[str, Any] = {}
        events: list[tuple[str, dict[str, Any]]] = []
        texts: list[str] | None = None

        def prompt() -> list[str]:
            nonlocal texts
            if texts is None:
                texts = []
                if request.prompt_text is not None:
                    try:
                        texts = [t for t in request.prompt_text() if isinstance(t, str)]
                    except Exception as error:
                        from genops_autoinstrument.diagnostics import internal_error

                        internal_error("prompt_text", error)
            return texts

        held: _Held | None = None
        reserved: float | None = None
        blocked = False
        for step in (self._model_policy, self._content_policy):
            outcomes += step(request, attribution, prompt, now, attributes)
            if any(o.blocks for o in outcomes):
                blocked = True
                break
        if not blocked:
            if self.settings.rate_limits and self.settings.budgets and getattr(self.ledger, "atomic_rate_and_reserve", False):
                more, held = self._rate_and_budgets(request, attribution, prompt, now, attributes)
                outcomes += more
            else:
                outcomes += self._rate_limits(request, attribution, prompt, now, attributes)
                if self.settings.budgets and not any(o.blocks for o in outcomes):
                    more, held = self._budgets(request, attribution, prompt, now, attributes)
                    outcomes += more
            if held is not None:
                reserved = to_usd(held.amount)
        decision = _combine(outcomes)
        for outcome in outcomes:
            events.append((semconv.EVENT_POLICY_EVALUATED, _policy_fields(outcome)))
            if outcome.result == semconv.RESULT_WARNING:
                self._warn(outcome, now)
        if held is not None:
            events.append(
                (
                    semconv.EVENT_BUDGET_RESERVATION,
                    {
                        semconv.GENOPS_BUDGET_NAME: self._budget_names,
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
        attributes.update(_policy_fields(decision))
        return Ticket(decision=decision, reserved=reserved, attributes=attributes, events=events, state=held)

    def _model_policy(self, request: "CallRequest", attribution: Mapping[str, str], prompt: Any, now: float, attributes: dict) -> list[_Outcome]:
        if not (self._allowed or self._blocked):
            return []
        model = (request.request_model or "").lower()
        mode = self.settings.model_policy
        shown = request.request_model or "<unknown model>"
        reason = None
        if any(fnmatch.fnmatchcase(model, pattern) for pattern in self._blocked):
            reason = f"GenOps model policy: model {shown!r} matches GENOPS_BLOCKED_MODELS"
        elif self._allowed and not (model and any(fnmatch.fnmatchcase(model, pattern) for pattern in self._allowed)):
            reason = f"GenOps model policy: model {shown!r} is not in GENOPS_ALLOWED_MODELS"
        if reason is None:
            return [_Outcome(policy_name=MODEL_POLICY, mode=mode)]
        return [_Outcome(_result(mode), MODEL_POLICY, semconv.REASON_POLICY_DENY_MODEL, reason, mode)]

    def _content_policy(self, request: "CallRequest", attribution: Mapping[str, str], prompt: Any, now: float, attributes: dict) -> list[_Outcome]:
        setting = self.settings.content_policy
        if setting == "off":
            return []
        mode = "enforced" if setting == "block" else "warn"
        kinds = scan(prompt())
        if not kinds:
            return [_Outcome(policy_name=CONTENT_POLICY, mode=mode)]
        message = "GenOps content policy: the prompt contains " + ", ".join(kinds)
        return [_Outcome(_result(mode), CONTENT_POLICY, semconv.REASON_POLICY_DENY_CONTENT, message, mode, extra={"kinds": kinds})]

    def _rate_limits(self, request: "CallRequest", attribution: Mapping[str, str], prompt: Any, now: float, attributes: dict) -> list[_Outcome]:
        if not self.settings.rate_limits:
            return []
        checks, names = self._rate_checks(attribution)
        try:
            outcome = self.ledger.hit(list(checks.values()), now)
        except Exception as error:
            self._ledger_failed("rate", error)
            return self._failure_outcome(attributes, next(iter(names.values())), blocking=True)
        return _rate_results(names, outcome.over)

    def _rate_checks(self, attribution: Mapping[str, str]) -> tuple[dict[str, RateCheck], dict[str, str]]:
        checks: dict[str, RateCheck] = {}
        names: dict[str, str] = {}
        for rule, name in zip(self.settings.rate_limits, self._rate_names):
            value = _scope_value(rule.attribute, attribution)
            key = f"rate|{rule.scope}|{value}|{rule.window_seconds}"
            if key not in checks or rule.limit < checks[key].limit:
                checks[key] = RateCheck(key, rule.limit, rule.window_seconds)
                names[key] = name
        return checks, names

    def _rate_and_budgets(self, request: "CallRequest", attribution: Mapping[str, str], prompt: Any, now: float, attributes: dict) -> tuple[list[_Outcome], _Held | None]:
        """Rate limits then budgets in one ledger transaction (ledgers that offer it: SQLite)."""
        checks, names = self._rate_checks(attribution)
        prepared = self._prepare_budgets(request, attribution, prompt, now, attributes)
        amount, pairs, ticket_id = prepared
        try:
            rate, reservation = self.ledger.hit_and_reserve(list(checks.values()), ticket_id, amount, [c for _, c in pairs], now + self.reservation_ttl, now)
        except Exception as error:
            self._ledger_failed("rate+reserve", error)
            return self._failure_outcome(attributes, next(iter(names.values())), blocking=True), None
        outcomes = _rate_results(names, rate.over)
        if reservation is None:
            return outcomes, None
        budget_outcomes, held = self._budget_results(attribution, prepared, reservation)
        return outcomes + budget_outcomes, held

    def _failure_outcome(self, attributes: dict, name: str, blocking: bool) -> list[_Outcome]:
        if self.settings.fail_mode == "closed" and blocking:
            message = f"GenOps could not reach its ledger to check {name}; GENOPS_FAIL_MODE=closed blocks the call"
            return [_Outcome(semconv.RESULT_BLOCKED, name, semconv.REASON_BUDGET_RESERVATION_FAILED, message, "enforced")]
        attributes[ATTR_LEDGER_STATUS] = "unavailable"
        return []

    def _budgets(self, request: "CallRequest", attribution: Mapping[str, str], prompt: Any, now: float, attributes: dict) -> tuple[list[_Outcome], _Held | None]:
        prepared = self._prepare_budgets(request, attribution, prompt, now, attributes)
        amount, pairs, ticket_id = prepared
        try:
            reservation = self.ledger.reserve(ticket_id, amount, [c for _, c in pairs], now + self.reservation_ttl, now)
        except Exception as error:
            self._ledger_failed("reserve", error)
            blocking = any(plan.blocking for plan, _ in pairs)
            return self._failure_outcome(attributes, pairs[0][0].name, blocking), None
        return self._budget_results(attribution, prepared, reservation)

    def _prepare_budgets(self, request: "CallRequest", attribution: Mapping[str, str], prompt: Any, now: float, attributes: dict) -> tuple[int, list[tuple[_Plan, BudgetCheck]], str]:
        """The estimate (nano-USD), each rule's bucket check and a fresh reservation id."""
        estimate = self._estimate(request, prompt)
        if estimate is None:
            attributes[ATTR_ESTIMATE_STATUS] = "unpriced"
            amount = 0
        else:
            amount = to_nanos(estimate)
        pairs = []
        for plan in self._plans:
            rule = plan.rule
            value = _scope_value(rule.attribute, attribution)
            period = self._window(rule.period, now)
            key = f"budget|{rule.scope}|{value}|{rule.period}|{period.key}"
            expires = period.end + ALERT_GRACE_SECONDS if period.end is not None else None
            pairs.append((plan, BudgetCheck(key, plan.limit, plan.blocking, expires)))
        return amount, pairs, self._ids.next()

    def _budget_results(self, attribution: Mapping[str, str], prepared: tuple, reservation: Any) -> tuple[list[_Outcome], _Held | None]:
        amount, pairs, ticket_id = prepared
        outcomes = []
        for (plan, check), figures, over in zip(pairs, reservation.figures, reservation.over):
            rule = plan.rule
            consumed = to_usd(figures.spent)
            status = (plan.name, rule.period, plan.allocated, consumed, max(0.0, to_usd(check.limit - figures.spent - figures.reserved)))
            if over:
                scope = rule.scope if rule.attribute is None else f"{rule.scope}={_scope_value(rule.attribute, attribution)}"
                message = (
                    f"GenOps budget {plan.name} exceeded for {scope}: ${_money(consumed)} spent and "
                    f"${_money(to_usd(figures.reserved))} in flight of ${_money(plan.allocated)} this {rule.period}; "
                    f"this call needs about ${_money(to_usd(amount))}"
                )
                outcomes.append(_Outcome(_result(rule.mode), plan.name, semconv.REASON_BUDGET_EXCEEDED, message, rule.mode, status))
            else:
                outcomes.append(_Outcome(policy_name=plan.name, mode=rule.mode, budget=status))
        if not reservation.reserved:
            return outcomes, None
        checks = [check for _, check in pairs]
        return outcomes, _Held(ticket_id, amount, unique_buckets(checks), tuple(pairs))

    def _window(self, period: str, now: float) -> Any:
        cached = self._windows.get(period)
        if cached is None or not (cached.start <= now and (cached.end is None or now < cached.end)):
            cached = self._windows[period] = window(period, now)
        return cached

    def _estimate(self, request: "CallRequest", prompt: Callable[[], list[str]]) -> float | None:
        """USD the call may cost, or None when the model cannot be priced."""
        key = (request.provider, request.request_model, request.api_base_url)
        if key not in self._unit_prices:
            if len(self._unit_prices) > 512:
                self._unit_prices.clear()
            self._unit_prices[key] = self._unit_price(*key)
        unit = self._unit_prices[key]
        if unit is None:
            return None
        characters = sum(len(text) for text in prompt())
        input_tokens = math.ceil(characters / CHARS_PER_TOKEN)
        output_tokens = request.max_output_tokens if request.max_output_tokens and request.max_output_tokens > 0 else DEFAULT_OUTPUT_TOKENS
        return input_tokens * unit[0] + output_tokens * unit[1]

    def _unit_price(self, provider: str, model: str | None, api_base_url: str | None) -> tuple[float, float] | None:
        try:
            per_input = self._pricer(provider, model, Usage(input_tokens=1_000_000, output_tokens=0), api_base_url)
            per_output = self._pricer(provider, model, Usage(input_tokens=0, output_tokens=1_000_000), api_base_url)
        except Exception:
            return None
        if per_input is None or per_output is None or per_input.total is None or per_output.total is None:
            return None
        return per_input.total / 1_000_000, per_output.total / 1_000_000

    # --- settlement ------------------------------------------------------------------------------
    def settle(self, ticket: Ticket, actual_cost: float | None, ran: bool) -> Settlement | None:
        held = ticket.state
        if not isinstance(held, _Held):
            return None
        now = self._clock()
        if not ran:
            try:
                self.ledger.release(held.ticket_id, held.amount, held.buckets, now)
            except Exception as error:
                self._ledger_failed("release", error)  # the reservation then simply expires
            return None
        basis = "actual" if actual_cost is not None else "estimate"
        counted = actual_cost if actual_cost is not None else to_usd(held.amount)
        fields: dict[str, Any] = {ATTR_CHARGED: counted, ATTR_CHARGED_BASIS: basis, semconv.GENOPS_ACCOUNTING_UNIT: "USD"}
        if actual_cost is not None:  # an unpriced cost is never reported as a number
            fields[semconv.GENOPS_ACCOUNTING_ACTUAL] = actual_cost
        settlement = Settlement(attributes=dict(fields))
        try:
            after = self.ledger.settle(held.ticket_id, held.amount, held.buckets, to_nanos(counted), now)
        except Exception as error:
            self._ledger_failed("settle", error)
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

    def _alerts(self, held: _Held, after: Mapping[str, Any], now: float) -> list[tuple[str, dict[str, Any]]]:
        threshold = self.settings.budget_alert_threshold
        events = []
        for plan, check in held.rules:
            rule = plan.rule
            spent = after[check.key].spent
            if spent < threshold * check.limit:
                continue
            try:
                first = self.ledger.first_alert(f"alert|{check.key}|{check.limit}", check.expires_at, now)
            except Exception as error:
                self._ledger_failed("alert", error)
                continue
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

    # --- lifecycle -------------------------------------------------------------------------------
    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._ids = _TicketIds()  # never reuse the parent's reservation ids
        if self._ledger is not None:
            self._ledger.after_fork()

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def _rate_results(names: Mapping[str, str], over: Sequence[bool]) -> list[_Outcome]:
    results = []
    for name, is_over in zip(names.values(), over):
        if is_over:
            results.append(_Outcome(semconv.RESULT_RATE_LIMITED, name, semconv.REASON_RATE_LIMITED, f"GenOps rate limit {name} reached", "enforced"))
        else:
            results.append(_Outcome(policy_name=name))
    return results


def _money(usd: float) -> str:
    """USD for messages: plain decimals down to a millionth of a cent, no exponent."""
    return f"{usd:,.8f}".rstrip("0").rstrip(".") or "0"


def _scope_value(attribute: str | None, attribution: Mapping[str, str]) -> str:
    if attribute is None:
        return "*"
    return attribution.get(attribute) or NONE_BUCKET


def _policy_fields(decision: "Decision | _Outcome") -> dict[str, Any]:
    fields: dict[str, Any] = {semconv.GENOPS_POLICY_RESULT: decision.result}
    if decision.policy_name:
        fields[semconv.GENOPS_POLICY_NAME] = decision.policy_name
    if decision.result != semconv.RESULT_ALLOWED:
        if decision.reason_code:
            fields[semconv.GENOPS_POLICY_REASON_CODE] = decision.reason_code
        fields[semconv.GENOPS_POLICY_MODE] = decision.mode
    return fields


def _combine(outcomes: Sequence[_Outcome]) -> Decision:
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


class _TicketIds:
    """Unique reservation ids without a syscall per call: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):x}"


_governors: "weakref.WeakSet[EnforcingGovernor]" = weakref.WeakSet()
_fork_hook_installed = False


def _track_forks(governor: EnforcingGovernor) -> None:
    """Reset every live governor's locks and connections in a forked child (gunicorn, multiprocessing)."""
    global _fork_hook_installed
    _governors.add(governor)
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        _fork_hook_installed = True
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    for governor in list(_governors):
        try:
            governor.after_fork()
        except Exception:  # pragma: no cover - never break a fork
            pass
