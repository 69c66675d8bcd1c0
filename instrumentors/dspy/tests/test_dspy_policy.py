"""Policy at DSPy's boundary: a blocked call raises DSPy's own error, sends nothing, is not retried;
and a lower layer under a DSPy call (here the OpenAI SDK plugin inside an engine) records nothing."""

from __future__ import annotations

import dspy
import openai
import pytest

from genops_autoinstrument import PolicyViolation, config, semconv
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_openai import OpenAIInstrumentor

from .conftest import API_KEY


def test_blocked_model_raises_a_dspy_error_and_sends_nothing(instrumentor, make_lm, server):
    settings = config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini", "GENOPS_LEDGER_URL": "memory://"})
    lm = make_lm(num_retries=3)
    with capture(settings) as recorded, dspy.context(lm=lm):
        with pytest.raises(dspy.LMError) as raised:
            dspy.Predict("question -> answer")(question="What is the capital of France?")
    error = raised.value
    assert isinstance(error, PolicyViolation)
    assert isinstance(error, dspy.utils.exceptions.LMProviderError)
    assert (error.status, error.provider_code, error.model) == (403, "policy_deny_model", "openai/gpt-4o-mini")
    assert not dspy.is_retryable_lm_error(error)
    assert server.requests == [], "the blocked call never left the process"
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_POLICY_DENY_MODEL


def test_exhausted_budget_raises_a_quota_error_that_dspy_does_not_retry(instrumentor, make_lm, server):
    settings = config.load({"GENOPS_BUDGETS": "team=0.0005/day", "GENOPS_TEAM": "search", "GENOPS_LEDGER_URL": "memory://"})
    lm = make_lm(num_retries=3, max_tokens=50)
    with capture(settings) as recorded:
        with pytest.raises(dspy.utils.exceptions.LMBillingError) as raised:
            for _ in range(10):
                lm("hi")
    error = raised.value
    assert isinstance(error, PolicyViolation) and error.decision.is_budget
    assert (error.status, error.provider_code) == (429, "insufficient_quota")
    assert not dspy.is_retryable_lm_error(error)
    sent = len(server.requests)
    assert 1 <= sent < 10
    spans = recorded.spans()
    assert len(spans) == sent + 1  # each sent call, then the refused one (not retried)
    assert spans[-1].attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_BUDGET_EXCEEDED


class OpenAISDKEngine:
    """A DSPy engine that sends through the OpenAI SDK (as DSPy's LiteLLM engine does)."""

    def __init__(self, base_url: str) -> None:
        self.client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)

    def complete(self, request):  # dspy.lm15 Request -> Response
        from dspy._vendor.lm15.providers.openai_chat import response_from_openai_chat

        messages = [{"role": m.role, "content": "".join(p.text for p in m.parts)} for m in request.messages]
        completion = self.client.chat.completions.create(model=request.model.split("/", 1)[-1], messages=messages)
        return response_from_openai_chat(completion.model_dump(), model=request.model)


def test_an_sdk_call_under_a_dspy_call_is_recorded_once(instrumentor, settings, server):
    sdk = OpenAIInstrumentor()
    sdk.instrument()
    try:
        lm = dspy.LM("openai/gpt-4o-mini", engine=OpenAISDKEngine(server.url), cache=False)
        with capture(settings) as recorded:
            outputs = lm("hi")
            with_sdk_alone = openai.OpenAI(api_key=API_KEY, base_url=server.url, max_retries=0)
            with_sdk_alone.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        sdk.uninstrument()
    assert outputs and "Paris" in outputs[0]
    assert len(server.requests) == 2
    dspy_span, sdk_span = recorded.spans()  # the SDK plugin still records calls made outside DSPy
    assert dspy_span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert sdk_span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
