"""The content policy reads every free-text field a Messages request sends, not only message text.

The real SDK and plugin against the conftest's mock transport, the real ``EnforcingGovernor`` with
``GENOPS_CONTENT_POLICY=block``: a secret or a card number placed only in a tool call's ``input``
(a dict: keys and numbers count), a tool description or input schema, ``system`` blocks, a
plain-text document, a thinking block… is refused with the SDK's native 403 before anything is
sent; the same request without it is sent, exactly as given. The reservation estimate reads the
same texts (tool definitions and tool calls are billed input tokens).
"""

from __future__ import annotations

import inspect
import math
import random
import string
from typing import Any, Callable

import anthropic

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import content_policy, refused_then_sent
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

MODEL = "claude-sonnet-4-6"
RNG = random.Random(1413)
B62 = string.ascii_letters + string.digits
DB_URL = "mongodb+srv://admin:" + "".join(RNG.choice(B62) for _ in range(14)) + "@cluster0.ab1cd.mongodb.net/orders"
SLACK_TOKEN = "xoxb-123456789012-1234567890123-" + "".join(RNG.choice(B62) for _ in range(24))
CARD = "4012 8888 8888 1881"  # a Visa test number: passes Luhn, a card layout
PASSWORD = "Velvet1999#"
CLEAN = "order 48213377 for ACME, shipped 2026-03-04"
QUESTION = {"role": "user", "content": "Check the order database."}


def tool_turns(tool_input: dict[str, Any], result: Any = "connected") -> list[dict[str, Any]]:
    """The user's question, the model's tool call with ``tool_input``, the tool's result."""
    call = {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "connect", "input": tool_input}
    answer = {"type": "tool_result", "tool_use_id": call["id"], "content": result}
    return [QUESTION, {"role": "assistant", "content": [{"type": "text", "text": "Connecting."}, call]}, {"role": "user", "content": [answer]}]


def lookup_tool(description: str = "Look an order up by its id.", field: str = "The order id.") -> dict[str, Any]:
    schema = {"type": "object", "properties": {"id": {"type": "string", "description": field}}, "required": ["id"]}
    return {"name": "lookup", "description": description, "input_schema": schema}


Build = Callable[[str], dict[str, Any]]
CASES: dict[str, tuple[Build, str]] = {
    "tool_use input, password key": (lambda v: {"messages": tool_turns({"user": "app", "password": v})}, PASSWORD),
    "tool_use input, card as a number": (lambda v: {"messages": tool_turns({"card_number": int(v.replace(" ", "")) if v[0].isdigit() else v})}, CARD),
    "tool_use input, nested url": (lambda v: {"messages": tool_turns({"targets": [{"name": "primary", "uri": v}]})}, DB_URL),
    "tool_result blocks": (lambda v: {"messages": tool_turns({}, [{"type": "text", "text": f"token {v}"}])}, SLACK_TOKEN),
    "tool description": (lambda v: {"messages": [QUESTION], "tools": [lookup_tool(description=f"Look an order up. Auth {v}")]}, SLACK_TOKEN),
    "input_schema description": (lambda v: {"messages": [QUESTION], "tools": [lookup_tool(field=f"Charge card {v}")]}, CARD),
    "system blocks": (lambda v: {"system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": f"DB: {v}", "cache_control": {"type": "ephemeral"}}], "messages": [QUESTION]}, DB_URL),
    "plain-text document": (
        lambda v: {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": f"Runbook: connect to {v}"}}, {"type": "text", "text": "Summarise."}]}]},
        DB_URL,
    ),
    "document title and context": (
        lambda v: {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Runbook."}, "title": "Runbook", "context": f"card {v}"}]}]},
        CARD,
    ),
    "thinking block": (
        lambda v: {"messages": [QUESTION, {"role": "assistant", "content": [{"type": "thinking", "thinking": f"The user gave {v}", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}, {"type": "text", "text": "Done."}]}, {"role": "user", "content": "Thanks"}]},
        SLACK_TOKEN,
    ),
    "output schema": (
        lambda v: {"messages": [QUESTION], "output_config": {"format": {"type": "json_schema", "schema": {"type": "object", "description": f"for card {v}", "properties": {}}}}},
        CARD,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_field_with_a_secret_or_card_is_refused_before_sending(make_client, json_server, case):
    build, value = CASES[case]
    parameters = inspect.signature(anthropic.resources.Messages.create).parameters
    missing = [key for key in build(value) if key not in parameters]
    if missing:  # the oldest SDKs of the range have no such request field
        pytest.skip(f"anthropic {anthropic.__version__} has no {', '.join(missing)}")
    server = json_server()
    client = make_client(server)
    clean = CLEAN if "number" not in case else "4012888888881882"  # the same digits failing Luhn
    given = refused_then_sent(lambda kwargs: client.messages.create(model=MODEL, max_tokens=256, **kwargs), build, value, clean, anthropic.PermissionDeniedError, server.requests).given
    (sent,) = server.sent
    for key, expected in given.items():
        assert sent[key] == expected, key


def test_a_tool_call_from_the_previous_response_object_is_checked(make_client, json_server):
    """``messages.append({"role": "assistant", "content": message.content})``: the SDK's own blocks."""
    server = json_server()
    body = server.body
    body["content"] = [{"type": "text", "text": "Connecting."}, {"type": "tool_use", "id": "toolu_01", "name": "connect", "input": {"uri": DB_URL}}]
    body["stop_reason"] = "tool_use"
    client = make_client(server)
    with content_policy():
        message = client.messages.create(model=MODEL, max_tokens=256, messages=[QUESTION])
        assert not isinstance(message.content[1], dict)
        followup = [QUESTION, {"role": "assistant", "content": message.content}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "ok"}]}]
        with pytest.raises(anthropic.PermissionDeniedError):
            client.messages.create(model=MODEL, max_tokens=256, messages=followup)
    assert len(server.requests) == 1


def test_a_secret_deep_in_an_input_schema_is_found(make_client, json_server):
    """Nested past Python's recursion limit: read without recursion, so no error lets the call through."""
    schema: dict[str, Any] = {"type": "string", "description": f"default {DB_URL}"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"inner": schema}}
    server = json_server()
    with content_policy():
        with pytest.raises(anthropic.PermissionDeniedError):
            make_client(server).messages.create(model=MODEL, max_tokens=64, messages=[QUESTION], tools=[{"name": "deep", "description": "Deep.", "input_schema": schema}])
    assert server.requests == []


def test_images_signatures_and_ids_are_not_prompt_text(make_client, json_server):
    """Base64 image data, thinking signatures and tool ids are opaque: never judged as text."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "".join(RNG.choice(B62 + "+/") for _ in range(8000))}}
    thinking = {"type": "thinking", "thinking": "Look at the chart.", "signature": "sk-" + "".join(RNG.choice(B62) for _ in range(48))}
    messages = [{"role": "user", "content": [image, {"type": "text", "text": "What does it show?"}]}, {"role": "assistant", "content": [thinking, {"type": "text", "text": "A chart."}]}, {"role": "user", "content": "More?"}]
    server = json_server()
    with content_policy() as recorded:
        make_client(server).messages.create(model=MODEL, max_tokens=64, messages=messages)
        (span,) = recorded.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert server.sent[0]["messages"] == messages


def test_the_estimate_counts_tool_definitions_and_calls_but_not_images(make_client, json_server):
    """Tool definitions and tool calls are billed input tokens; an image's base64 is not text."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 40_000}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Where is order 48213377?"}, image]}] + tool_turns({"id": "48213377"}, "shipped")[1:]
    texts = ["lookup", "Look an order up by its id.", "object", "string", "The order id.", "id", "Where is order 48213377?", "Connecting.", "connect", "id: 48213377", "shipped"]
    server = json_server()
    with content_policy(GENOPS_TEAM="search", GENOPS_BUDGETS="team=100/day", GENOPS_LEDGER_URL="memory://") as recorded:
        make_client(server).messages.create(model=MODEL, max_tokens=20, messages=messages, tools=[lookup_tool()])
        (span,) = recorded.spans()
    estimate = price_call("anthropic", MODEL, Usage(input_tokens=math.ceil(sum(map(len, texts)) / 4), output_tokens=20)).total
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx(estimate)
