"""The content policy reads every free-text field an OpenAI request sends, not only message text.

The real SDK and plugin, the real ``EnforcingGovernor`` with ``GENOPS_CONTENT_POLICY=block`` and the
fake OpenAI server of conftest: a secret or a card number placed only in a tool call's arguments, a
tool description, a parameter schema, ``instructions``, ``prediction.content``… is refused with the
SDK's native 403 before anything is sent; the same request without it is sent, exactly as given.
The reservation estimate reads the same texts: tool definitions and arguments are billed input.
"""

from __future__ import annotations

import json
import math
import random
import string
from typing import Any

import openai
import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import content_policy, refused_then_sent
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

RNG = random.Random(1412)
B62 = string.ascii_letters + string.digits
DB_URL = "postgres://svc_app:" + "".join(RNG.choice(B62) for _ in range(14)) + "@db.prod.internal:5432/orders"
GITHUB_TOKEN = "ghp_" + "".join(RNG.choice(B62) for _ in range(36))
CARD = "5105 1051 0510 5100"  # a Mastercard test number: passes Luhn, a card layout
CLEAN = "order 48213377 for ACME, shipped 2026-03-04"

RESPONSE = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "model": "gpt-4o-2024-08-06",
    "output": [
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 39},
}


@pytest.fixture
def served(instrumentor, server, h) -> Any:
    server.json("/v1/chat/completions", h.chat_completion())
    server.json("/v1/responses", RESPONSE)
    return server


def arguments(value: str) -> str:
    return json.dumps({"connection": value, "note": "nightly export"})


def tool_call_messages(args: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a database assistant."},
        {"role": "user", "content": "Check the database."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "connect", "arguments": args}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "connected"},
    ]


def chat_tool(description: str = "Look an order up by its id.", field: str = "The order id.") -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"id": {"type": "string", "description": field}}, "required": ["id"]}
    return {"type": "function", "function": {"name": "lookup", "description": description, "parameters": parameters}}


USER = [{"role": "user", "content": "Where is my order?"}]

# Each case: (request keyword arguments with ``{}`` standing for the sensitive value, that value).
CHAT_CASES = {
    "tool-call arguments, secret": (lambda v: {"messages": tool_call_messages(arguments(v))}, DB_URL),
    "tool-call arguments, card": (lambda v: {"messages": tool_call_messages(json.dumps({"card": v}))}, CARD),
    "legacy function_call arguments": (
        lambda v: {"messages": USER + [{"role": "assistant", "content": None, "function_call": {"name": "connect", "arguments": arguments(v)}}, {"role": "function", "name": "connect", "content": "ok"}]},
        DB_URL,
    ),
    "tool description": (lambda v: {"messages": USER, "tools": [chat_tool(description=f"Look an order up. Auth: {v}")]}, GITHUB_TOKEN),
    "parameter schema description": (lambda v: {"messages": USER, "tools": [chat_tool(field=f"The order id, e.g. for card {v}")]}, CARD),
    "legacy functions description": (lambda v: {"messages": USER, "functions": [{"name": "lookup", "description": f"Uses {v}", "parameters": {"type": "object"}}]}, DB_URL),
    "system message": (lambda v: {"messages": [{"role": "system", "content": f"The key is {v}"}] + USER}, GITHUB_TOKEN),
    "tool result": (lambda v: {"messages": tool_call_messages("{}")[:3] + [{"role": "tool", "tool_call_id": "call_1", "content": f"card on file {v}"}]}, CARD),
    "prediction.content": (lambda v: {"messages": USER, "prediction": {"type": "content", "content": f"config = {{'url': '{v}'}}"}}, DB_URL),
    "response_format schema": (
        lambda v: {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "order", "description": f"Card {v}", "schema": {"type": "object"}}}},
        CARD,
    ),
    "assistant refusal": (lambda v: {"messages": USER + [{"role": "assistant", "content": None, "refusal": f"I cannot use {v}"}]}, GITHUB_TOKEN),
}


def _expect_block_then_send(server: Any, send: Any, build: Any, value: str, native: type[BaseException]) -> dict[str, Any]:
    """``build(value)`` is refused natively with nothing sent; ``build(CLEAN)`` is sent unchanged."""
    refusal = refused_then_sent(lambda kwargs: send(**kwargs), build, value, CLEAN, native, server.requests)
    (request,) = server.requests
    return {"sent": request["json"], "given": refusal.given}


@pytest.mark.parametrize("case", sorted(CHAT_CASES))
def test_a_chat_field_with_a_secret_or_card_is_refused_before_sending(served, case):
    build, value = CHAT_CASES[case]
    client = served.client()
    _skip_fields_the_sdk_lacks(client.chat.completions.create, build(value))
    result = _expect_block_then_send(served, lambda **kw: client.chat.completions.create(model="gpt-4o-mini", **kw), build, value, openai.PermissionDeniedError)
    sent, given = result["sent"], result["given"]
    for key, expected in given.items():
        assert sent[key] == expected, key


def _response_tool(description: str = "Look an order up by its id.", field: str = "The order id.") -> dict[str, Any]:
    return {"type": "function", "name": "lookup", "description": description, "parameters": {"type": "object", "properties": {"id": {"type": "string", "description": field}}}}


RESPONSES_CASES = {
    "instructions": (lambda v: {"instructions": f"Connect with {v}", "input": "Where is my order?"}, DB_URL),
    "function_call arguments": (
        lambda v: {"input": [{"role": "user", "content": "Check the db"}, {"type": "function_call", "call_id": "c1", "name": "connect", "arguments": arguments(v)}, {"type": "function_call_output", "call_id": "c1", "output": "ok"}]},
        DB_URL,
    ),
    "function_call_output": (
        lambda v: {"input": [{"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"}, {"type": "function_call_output", "call_id": "c1", "output": f"card {v}"}]},
        CARD,
    ),
    "custom tool call input": (lambda v: {"input": [{"type": "custom_tool_call", "call_id": "c2", "name": "sql", "input": f"-- {v}"}, {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"}]}, GITHUB_TOKEN),
    "tool description": (lambda v: {"input": "Where is my order?", "tools": [_response_tool(description=f"Token {v}")]}, GITHUB_TOKEN),
    "parameter schema description": (lambda v: {"input": "Where is my order?", "tools": [_response_tool(field=f"Pay with card {v}")]}, CARD),
    "input_text part": (lambda v: {"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"pay with {v}"}]}]}, CARD),
    "prompt variable": (lambda v: {"prompt": {"id": "pmpt_123", "variables": {"customer_note": f"card {v}"}}, "input": "Go"}, CARD),
    "output schema": (lambda v: {"input": "Go", "text": {"format": {"type": "json_schema", "name": "o", "description": f"see {v}", "schema": {"type": "object"}}}}, DB_URL),
}


@pytest.mark.parametrize("case", sorted(RESPONSES_CASES))
def test_a_responses_field_with_a_secret_or_card_is_refused_before_sending(served, case):
    build, value = RESPONSES_CASES[case]
    client = served.client()
    _skip_without_responses(client)
    result = _expect_block_then_send(served, lambda **kw: client.responses.create(model="gpt-4o", **kw), build, value, openai.PermissionDeniedError)
    sent, given = result["sent"], result["given"]
    for key, expected in given.items():
        assert sent[key] == expected, key


def test_tool_call_arguments_of_an_sdk_message_from_a_previous_response_are_checked(served, h):
    """``messages.append(completion.choices[0].message)``: the SDK's own object, not a dict."""
    call = {"id": "call_9", "type": "function", "function": {"name": "connect", "arguments": arguments(DB_URL)}}
    served.json("/v1/chat/completions", h.chat_completion(content=None, choices=[{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}]))
    client = served.client()
    with content_policy():
        previous = client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices[0].message
        assert served.requests and not isinstance(previous, dict)
        served.requests.clear()
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER + [previous, {"role": "tool", "tool_call_id": "call_9", "content": "ok"}])
    assert served.requests == []


def test_a_secret_deep_in_a_tool_schema_is_found(served):
    """A schema nested past Python's recursion limit: read without recursion, so no error lets the call through."""
    schema: dict[str, Any] = {"type": "string", "description": f"default connection {DB_URL}"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"inner": schema}}
    tool = {"type": "function", "function": {"name": "deep", "description": "Deep.", "parameters": schema}}
    with content_policy():
        with pytest.raises(openai.PermissionDeniedError):
            served.client().chat.completions.create(model="gpt-4o-mini", messages=USER, tools=[tool])
    assert served.requests == []


def test_credentials_given_to_the_provider_and_inline_media_are_not_prompt_text(served):
    """An MCP tool's authorization is meant for OpenAI; a data: URL image is no text: both go out."""
    _skip_without_responses(served.client())
    token = "Bearer " + GITHUB_TOKEN
    mcp = {"type": "mcp", "server_label": "deploys", "server_url": "https://mcp.example.com/sse", "authorization": token, "headers": {"Authorization": token}, "require_approval": "never"}
    image = "data:image/png;base64," + "".join(RNG.choice(B62 + "+/") for _ in range(4000))
    content = [{"type": "input_text", "text": "What is in this picture?"}, {"type": "input_image", "image_url": image}]
    with content_policy() as recorded:
        served.client().responses.create(model="gpt-4o", input=[{"role": "user", "content": content}], tools=[mcp])
        (span,) = recorded.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    (request,) = served.requests
    assert request["json"]["tools"] == [mcp] and request["json"]["input"][0]["content"][1]["image_url"] == image


def test_the_estimate_counts_tool_definitions_and_arguments_but_not_images(served):
    """Tool definitions and arguments are billed input tokens; an inline image's base64 is not text."""
    args = json.dumps({"id": "48213377"})
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Where is order 48213377?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 40_000}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": args}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
    ]
    tool = chat_tool()
    texts = ["function", "lookup", "Look an order up by its id.", "object", "string", "The order id.", "id", "Where is order 48213377?", "lookup", args, "shipped"]
    with content_policy(GENOPS_TEAM="search", GENOPS_BUDGETS="team=100/day", GENOPS_LEDGER_URL="memory://") as recorded:
        served.client().chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[tool], max_tokens=20)
        (span,) = recorded.spans()
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=math.ceil(sum(map(len, texts)) / 4), output_tokens=20)).total
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx(estimate)


def _skip_without_responses(client) -> None:
    if not hasattr(client, "responses"):  # the Responses API arrived in openai 1.66
        pytest.skip(f"openai {openai.__version__} has no Responses API")


def _skip_fields_the_sdk_lacks(method, kwargs) -> None:
    import inspect

    missing = [key for key in kwargs if key not in inspect.signature(method).parameters]
    if missing:  # the oldest SDKs of the range have no such request field
        pytest.skip(f"openai {openai.__version__} has no {', '.join(missing)}")
