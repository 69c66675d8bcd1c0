"""``policy_decision(error)`` finds GenOps' refusal however a framework re-raised it: with the real
OpenAI SDK blocked by a real model rule, then wrapped the ways frameworks wrap errors."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx
import openai
import pytest

from genops_autoinstrument import PolicyViolation, policy_decision
from genops_autoinstrument.api import remember_refusal


def refused_error(governed: Any, endpoint: Any, h: Any) -> openai.PermissionDeniedError:
    with governed(GENOPS_BLOCKED_MODELS=h.PRICED_MODEL):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            h.chat(endpoint.client())
    assert endpoint.requests == []  # refused before it left the process
    return caught.value


class FrameworkError(Exception):
    """What a framework raises in place of the SDK's error."""


def test_the_sdks_own_error_carries_the_decision(governed: Any, endpoint: Any, h: Any) -> None:
    error = refused_error(governed, endpoint, h)
    decision = policy_decision(error)
    assert decision is not None and decision.blocks
    assert decision is error.decision
    assert decision.reason_code == error.reason_code


def test_found_through_raise_from(governed: Any, endpoint: Any, h: Any) -> None:
    error = refused_error(governed, endpoint, h)
    try:
        try:
            raise error
        except openai.APIError as inner:
            raise FrameworkError("the model call failed") from inner
    except FrameworkError as wrapped:
        assert not isinstance(wrapped, PolicyViolation)
        assert policy_decision(wrapped) is error.decision


def test_found_through_implicit_context_and_args(governed: Any, endpoint: Any, h: Any) -> None:
    error = refused_error(governed, endpoint, h)
    try:
        try:
            raise error
        except openai.APIError:
            raise FrameworkError("retries exhausted")  # implicit __context__
    except FrameworkError as wrapped:
        assert policy_decision(wrapped) is error.decision
    assert policy_decision(FrameworkError("step failed", error)) is error.decision  # kept in args


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is Python 3.11+")
def test_found_in_an_exception_group(governed: Any, endpoint: Any, h: Any) -> None:
    error = refused_error(governed, endpoint, h)

    async def tasks() -> None:
        async def fail(e: BaseException) -> None:
            raise e

        async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined]
            group.create_task(fail(ValueError("another task failed")))
            group.create_task(fail(error))

    with pytest.raises(BaseException) as caught:
        asyncio.run(tasks())
    assert policy_decision(caught.value) is error.decision


def test_none_when_genops_refused_nothing() -> None:
    try:
        raise FrameworkError("boom") from ValueError("cause")
    except FrameworkError as error:
        assert policy_decision(error) is None
    assert policy_decision(None) is None
    assert policy_decision(PolicyViolation("raised by hand, no decision")) is None


def test_a_cycle_in_the_chain_ends(governed: Any, endpoint: Any, h: Any) -> None:
    first, second = FrameworkError("a"), FrameworkError("b")
    first.__cause__, second.__cause__ = second, first
    assert policy_decision(first) is None


def test_a_wire_level_refusal_is_found_through_the_clients_error(governed: Any, endpoint: Any, h: Any) -> None:
    decision = refused_error(governed, endpoint, h).decision
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(403, json={"error": {"message": "blocked"}}, request=request)
    remember_refusal(response, decision)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        response.raise_for_status()
    assert policy_decision(caught.value) is decision
    other = httpx.Response(403, request=request)
    with pytest.raises(httpx.HTTPStatusError) as unrelated:
        other.raise_for_status()
    assert policy_decision(unrelated.value) is None
