"""Policy blocks: the SDK's native error that is also a PolicyViolation; nothing reaches the transport."""

from __future__ import annotations

import pickle

import asyncio

import anthropic
import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.api.testing import capture

# ``messages.parse`` (structured outputs) is newer than the plugin's oldest anthropic (0.69).
needs_parse = pytest.mark.skipif(not hasattr(anthropic.resources.messages.Messages, "parse"), reason="no messages.parse in this anthropic")

MODEL = "claude-opus-4-1"
PROMPT = [{"role": "user", "content": "Summarise the quarterly report"}]


def _blocked_span(recorded, decision):
    spans = recorded.spans()
    assert len(spans) == 1
    span = spans[0]
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == decision.reason_code
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    return span


def test_budget_block_is_rate_limit_error(make_client, json_server, settings, governor_for, decisions):
    server = json_server()
    client = make_client(server, max_retries=3)
    governor = governor_for(decisions["budget"])
    with capture(settings, governor=governor) as recorded:
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=MODEL, max_tokens=512, messages=PROMPT)
    error = caught.value
    assert isinstance(error, PolicyViolation) and isinstance(error, anthropic.APIStatusError)
    assert error.status_code == 429
    assert error.body["error"]["type"] == "rate_limit_error"
    assert getattr(error, "type", "rate_limit_error") == "rate_limit_error"  # `.type` from anthropic 1.x
    assert error.decision is decisions["budget"]
    assert error.reason_code == semconv.REASON_BUDGET_EXCEEDED
    assert str(error) == "team search spent its 50 USD/day budget"
    copy = pickle.loads(pickle.dumps(error))  # crosses process pools and Celery
    assert type(copy) is type(error) and copy.decision == error.decision and str(copy) == str(error) and copy.status_code == 429
    assert error.response.request.url == "https://api.anthropic.com/v1/messages"
    assert server.requests == []  # never sent, never retried
    assert governor.settled == [(None, False)]
    request = governor.requests[0]
    assert request.provider == "anthropic" and request.request_model == MODEL
    assert request.max_output_tokens == 512
    assert list(request.prompt_text()) == ["Summarise the quarterly report"]
    _blocked_span(recorded, decisions["budget"])


def test_model_block_is_permission_denied(make_client, json_server, settings, governor_for, decisions):
    server = json_server()
    client = make_client(server)
    with capture(settings, governor=governor_for(decisions["model"])) as recorded:
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            client.messages.create(model=MODEL, max_tokens=16, messages=PROMPT)
    assert isinstance(caught.value, PolicyViolation)
    assert caught.value.status_code == 403
    assert caught.value.body["error"]["type"] == "permission_error"
    assert getattr(caught.value, "type", "permission_error") == "permission_error"  # `.type` from anthropic 1.x
    assert server.requests == []
    _blocked_span(recorded, decisions["model"])


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.messages.create(model=MODEL, max_tokens=16, messages=PROMPT, stream=True),
        pytest.param(lambda c: c.messages.parse(model=MODEL, max_tokens=16, messages=PROMPT), marks=needs_parse),
        lambda c: c.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=PROMPT),
        lambda c: c.beta.messages.create(model=MODEL, max_tokens=16, messages=PROMPT),
        lambda c: c.messages.stream(model=MODEL, max_tokens=16, messages=PROMPT).__enter__(),
        lambda c: c.beta.messages.stream(model=MODEL, max_tokens=16, messages=PROMPT).__enter__(),
    ],
    ids=["create-stream", "parse", "raw", "beta", "stream", "beta-stream"],
)
def test_every_sync_entry_point_blocks_before_sending(call, make_client, sse_server, settings, governor_for, decisions):
    server = sse_server()
    client = make_client(server)
    with capture(settings, governor=governor_for(decisions["budget"])) as recorded:
        with pytest.raises(anthropic.RateLimitError):
            call(client)
    assert server.requests == []
    _blocked_span(recorded, decisions["budget"])


def test_stream_helper_blocks_on_enter_inside_with(make_client, sse_server, settings, governor_for, decisions):
    server = sse_server()
    client = make_client(server)
    with capture(settings, governor=governor_for(decisions["model"])):
        manager = client.messages.stream(model=MODEL, max_tokens=16, messages=PROMPT)
        with pytest.raises(anthropic.PermissionDeniedError):
            with manager:
                pytest.fail("the body must not run")  # pragma: no cover
    assert server.requests == []


def test_async_blocks(make_client, sse_server, settings, governor_for, decisions):
    server = sse_server()
    client = make_client(server, anthropic.AsyncAnthropic)

    async def main():
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.create(model=MODEL, max_tokens=16, messages=PROMPT)
        with pytest.raises(anthropic.RateLimitError):
            async with client.messages.stream(model=MODEL, max_tokens=16, messages=PROMPT):
                pytest.fail("the body must not run")  # pragma: no cover
        with pytest.raises(anthropic.RateLimitError):
            await client.beta.messages.create(model=MODEL, max_tokens=16, messages=PROMPT, stream=True)

    with capture(settings, governor=governor_for(decisions["budget"])) as recorded:
        with _no_never_awaited():
            asyncio.run(main())
    assert server.requests == []
    assert len(recorded.spans()) == 3


class _no_never_awaited:
    """Fail if a blocked async stream leaves the SDK's request coroutine un-awaited (RuntimeWarning)."""

    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings(record=True)
        self._seen = self._catcher.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        import gc

        gc.collect()
        self._catcher.__exit__(*exc)
        assert not [w for w in self._seen if "never awaited" in str(w.message)]
        return False


def test_allowed_decision_lets_the_call_through(make_client, json_server, settings, governor_for, decisions):
    server = json_server(input_tokens=10, output_tokens=2)
    client = make_client(server)
    governor = governor_for(decisions["allow"])
    with capture(settings, governor=governor) as recorded:
        client.messages.create(model=MODEL, max_tokens=16, messages=PROMPT)
    assert len(server.requests) == 1
    span = recorded.spans()[0]
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    ((cost, ran),) = governor.settled
    assert ran is True and cost == span.attributes[semconv.GENOPS_COST_TOTAL]
