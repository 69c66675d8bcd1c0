"""Budgets read without reserving (pre-checks) and charged without a model call (costs that are not tokens).

A pre-check asks the question :meth:`Budgets.reserve` asks, with the same estimate, keys, figures
and messages, but reads each bucket with ``ledger.figures`` and holds nothing: two pre-checks in a
row get the same answer, and a call made after one still reserves for itself. A charge is the
settlement of a call that reserved nothing: its USD is added to every bucket its attribution
falls in, with the same reconciliation event and once-per-period alert.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

from genops_autoinstrument.governance.budgets import Budgets, Held
from genops_autoinstrument.governance.governor import Settlement
from genops_autoinstrument.governance.ledger.base import Figures, ReserveOutcome, is_over, unique_buckets
from genops_autoinstrument.governance.outcomes import Outcome
from genops_autoinstrument.governance.request import PolicyRequest, Prompt


class _NoCall(NamedTuple):
    """The request of a charge: no model, so no estimate is priced (the buckets are all it needs)."""

    provider: str = ""
    request_model: str | None = None
    api_base_url: str | None = None
    max_output_tokens: int | None = None
    prompt_text: None = None


_NO_CALL = _NoCall()


def _no_prompt() -> list[str]:
    return []


def check_budgets(budgets: Budgets, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> list[Outcome]:
    """Each budget's outcome for this call as ``reserve`` would give it, with nothing reserved.

    A ledger that cannot be read follows ``GENOPS_FAIL_MODE`` as a reservation would.
    """
    prepared = budgets._prepare(request, attribution, prompt, now, attributes)
    amount, pairs, _ = prepared
    if not pairs:
        return []
    no_model = not request.request_model  # a check without a model needs no estimate: nothing is unpriced
    refused = [] if no_model else budgets.refuse_unpriced(request, attributes)
    if refused:
        return refused
    known: dict[str, Figures] = {}
    try:
        for _, check in pairs:
            if check.key not in known:
                known[check.key] = budgets._link.ledger.figures(check.key, now)
    except Exception as error:
        return budgets._link.refuse("check", error, attributes, pairs[0][0].name, any(plan.blocking for plan, _ in pairs))
    figures = tuple(known[check.key] for _, check in pairs)
    over = tuple(is_over(f.spent, f.reserved, amount, check.limit) for f, (_, check) in zip(figures, pairs))
    outcomes, _ = budgets._results(attribution, prepared, ReserveOutcome(False, figures, over))
    return outcomes if no_model else budgets.escaped_unpriced(request, outcomes, attributes, logged=False)


def charge_budgets(budgets: Budgets, attribution: Mapping[str, str], usd: float, now: float) -> Settlement | None:
    """Add ``usd`` of actual spend to every budget bucket of ``attribution``; ledger failures are
    counted and logged like a settlement's (the spend is then not recorded in the ledger)."""
    _, pairs, ticket_id = budgets._prepare(_NO_CALL, attribution, _no_prompt, now, {})
    if not pairs:
        return None
    held = Held(ticket_id, 0, unique_buckets([check for _, check in pairs]), tuple(pairs))
    return budgets.settle(held, usd, True, now)
