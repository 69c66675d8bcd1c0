"""The real governor with the real OpenAI SDK: a SQLite-ledger budget stops the third call."""

from __future__ import annotations

import openai
import pytest

from genops_autoinstrument import PolicyViolation, config, semconv
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}


def test_sqlite_budget_blocks_before_the_request_is_sent(instrumentor, server, h, tmp_path):
    settings = config.load(
        {
            "GENOPS_TEAM": "search",
            "GENOPS_BUDGETS": "team=0.00002/day",
            "GENOPS_LEDGER_URL": f"sqlite:///{tmp_path}/ledger.db",
        }
    )
    server.json("/v1/chat/completions", h.chat_completion(model="gpt-4o-mini-2024-07-18", usage=USAGE))
    client = server.client()
    governor = EnforcingGovernor(settings)
    with capture(settings, governor=governor) as recorded:
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)
    assert isinstance(caught.value, PolicyViolation)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.reason_code == semconv.REASON_BUDGET_EXCEEDED
    assert len(server.requests) == 2, "the blocked request never left the process"
    first, second, blocked = recorded.spans()
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=3, output_tokens=20)).total
    assert first.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx(estimate)
    assert first.attributes[semconv.GENOPS_ACCOUNTING_ACTUAL] == pytest.approx(first.attributes[semconv.GENOPS_COST_TOTAL])
    assert second.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert blocked.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert semconv.GENOPS_COST_TOTAL not in blocked.attributes
