"""Budgets keyed on the agent a framework plugin names (``GENOPS_BUDGETS="agent=…"``): each agent
spends from its own bucket, on the real in-process ledger, through the real EnforcingGovernor."""

from __future__ import annotations

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.pricing.prices import Price


def _governor(budgets: str) -> EnforcingGovernor:
    settings = config.load({"GENOPS_BUDGETS": budgets, "GENOPS_LEDGER_URL": "memory://"})
    pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)  # noqa: E731
    return EnforcingGovernor(settings, pricer=pricer)


def _request() -> CallRequest:  # estimated at about $0.0021 (100 input tokens, 1000 output)
    return CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])


def test_each_agent_spends_from_its_own_budget():
    governor = _governor("agent=0.003/day")
    try:
        planner = {"gen_ai.agent.name": "planner"}
        first = governor.decide(_request(), planner)
        assert not first.decision.blocks
        governor.settle(first, 0.0021, True)
        second = governor.decide(_request(), planner)
        assert second.decision.blocks and second.decision.reason_code == "BUDGET_EXCEEDED"
        assert "agent" in second.decision.message and "planner" in second.decision.message
        writer = governor.decide(_request(), {"gen_ai.agent.name": "writer"})
        assert not writer.decision.blocks  # another agent's bucket
        governor.settle(writer, 0.001, True)
    finally:
        governor.close()


def test_an_agent_cannot_be_named_by_baggage():
    with pytest.raises(config.ConfigError, match="GENOPS_BAGGAGE_KEYS"):
        config.load({"GENOPS_BAGGAGE_KEYS": "agent"})
