"""Policy blocks raise the SDK's own errors, before anything reaches the server."""

from __future__ import annotations

import pickle

import asyncio

import openai
import pytest
from opentelemetry.trace import StatusCode

from genops_autoinstrument import PolicyViolation, semconv
from genops_autoinstrument.governance.decisions import BudgetStatus, Decision
from genops_autoinstrument.api.testing import capture

MESSAGES = [{"role": "user", "content": "Say hello"}]

BUDGET = Decision(
    result=semconv.RESULT_BLOCKED,
    policy_name="team-budget",
    reason_code=semconv.REASON_BUDGET_EXCEEDED,
    message="GenOps budget team=search exhausted (50.00/50.00 USD per day)",
    budget=BudgetStatus("team=search", "day", 50.0, 50.0, 0.0),
)
RATE = Decision(result=semconv.RESULT_RATE_LIMITED, policy_name="team-rate", reason_code=semconv.REASON_RATE_LIMITED, message="rate limit")
MODEL = Decision(result=semconv.RESULT_BLOCKED, policy_name="model-allowlist", reason_code=semconv.REASON_POLICY_DENY_MODEL, message="model gpt-4o is not allowed")
CONTENT = Decision(result=semconv.RESULT_BLOCKED, policy_name="content", reason_code=semconv.REASON_POLICY_DENY_CONTENT, message="prompt contains a secret")


@pytest.fixture
def blocked(instrumentor, settings, h):
    def run(decision):
        return capture(settings, governor=h.BlockingGovernor(decision))

    return run


@pytest.mark.parametrize("decision", [BUDGET, RATE])
def test_budget_block_is_rate_limit_error(blocked, server, h, decision):
    with blocked(decision) as recorded:
        with pytest.raises(openai.RateLimitError) as caught:
            server.client().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = caught.value
    assert isinstance(error, PolicyViolation) and isinstance(error, openai.APIStatusError)
    assert error.status_code == 429
    assert error.code == "insufficient_quota"
    assert error.body["type"] == "insufficient_quota"
    assert error.response.status_code == 429
    assert error.response.headers["x-should-retry"] == "false"  # final for retry policies that read it (the Agents SDK's)
    assert "retry-after" not in error.response.headers  # a policy waiting for it would sleep to the period's end
    assert error.response.request.url.path == "/v1/chat/completions"
    assert error.request is error.response.request
    assert error.decision is decision and error.policy_name == decision.policy_name
    assert str(error) == decision.message
    assert server.requests == []
    copy = pickle.loads(pickle.dumps(error))  # crosses process pools and Celery (openai's own errors cannot)
    assert type(copy) is type(error) and copy.decision == decision and str(copy) == str(error)
    assert copy.status_code == 429 and copy.body == error.body
    span = h.one_span(recorded)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == decision.reason_code


@pytest.mark.parametrize("decision", [MODEL, CONTENT])
def test_model_and_content_blocks_are_permission_denied(blocked, server, h, decision):
    with blocked(decision):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            server.client().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = caught.value
    assert isinstance(error, PolicyViolation)
    assert not isinstance(error, openai.RateLimitError)
    assert error.status_code == 403
    assert error.code == decision.reason_code.lower()
    assert server.requests == []


def test_app_retry_handler_sees_native_error(blocked, server):
    """Existing `except openai.RateLimitError` handling keeps working."""
    with blocked(BUDGET):
        try:
            server.client().chat.completions.create(model="gpt-4o", messages=MESSAGES)
        except openai.RateLimitError as error:
            handled = error.status_code
    assert handled == 429


def test_stream_blocked_before_it_opens(blocked, server, h):
    with blocked(BUDGET):
        with pytest.raises(openai.RateLimitError):
            server.client().chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        with pytest.raises(openai.RateLimitError):
            with h.chat_helpers(server.client()).stream(model="gpt-4o", messages=MESSAGES):
                pass
        if hasattr(openai.OpenAI, "responses"):  # openai >= 1.66
            with pytest.raises(openai.RateLimitError):
                with server.client().responses.stream(model="gpt-4o", input="hi"):
                    pass
    assert server.requests == []


def test_every_endpoint_blocks(blocked, server):
    client = server.client()
    with blocked(MODEL) as recorded:
        responses = [lambda: client.responses.create(model="gpt-4o", input="hi")] if hasattr(client, "responses") else []
        calls = responses + [
            lambda: client.embeddings.create(model="text-embedding-3-small", input="hi"),
            lambda: client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi"),
            lambda: client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES),
            lambda: client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES).__enter__(),
        ]
        for call in calls:
            with pytest.raises(openai.PermissionDeniedError):
                call()
    assert server.requests == []
    spans = recorded.spans()
    assert [s.attributes[semconv.GEN_AI_OPERATION_NAME] for s in spans] == ["chat"] * len(responses) + ["embeddings", "text_completion", "chat", "chat"]
    assert all(s.attributes[semconv.ERROR_TYPE] == semconv.REASON_POLICY_DENY_MODEL for s in spans)


def test_async_blocks(blocked, server, h):
    async def main():
        client = server.async_client()
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        with pytest.raises(openai.RateLimitError):
            async with h.chat_helpers(client).stream(model="gpt-4o", messages=MESSAGES):
                pass

    with blocked(BUDGET):
        asyncio.run(main())
    assert server.requests == []


def test_warn_mode_lets_the_call_through(blocked, server, h):
    warn = Decision(result=semconv.RESULT_WARNING, policy_name="team-budget", reason_code=semconv.REASON_BUDGET_EXCEEDED, mode="warn")
    server.json("/v1/chat/completions", h.chat_completion())
    with blocked(warn) as recorded:
        server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(server.requests) == 1
    assert h.one_span(recorded).attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
