"""The content policy reads every free-text field a DSPy call sends, not only the messages' text.

A real ``dspy.LM`` against the conftest's local OpenAI-compatible server, the real governor with
``GENOPS_CONTENT_POLICY=block``: a secret or a card placed only in a tool call's arguments (a
legacy OpenAI-shaped message or a typed ``lm15`` ``ToolCallPart.input``: keys and numbers count), a
tool's result or a tool definition is refused with DSPy's own ``LMProviderError`` (403) before
anything is sent; the same call without it is sent unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any, Callable

import pytest
from dspy._vendor.lm15 import types as lm15
from dspy.utils.exceptions import LMProviderError

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import content_policy, refused_then_sent

RNG = random.Random(1616)
B62 = string.ascii_letters + string.digits
DB_URL = "postgres://billing:" + "".join(RNG.choice(B62) for _ in range(14)) + "@10.0.4.2:5432/orders"
SLACK_TOKEN = "xoxb-223456789012-2234567890123-" + "".join(RNG.choice(B62) for _ in range(24))
CARD = "4111 1111 1111 1111"  # a Visa test number: passes Luhn
NOT_A_CARD = "4111111111111112"  # the same digits failing Luhn
PASSWORD = "Marlin2024!x"
CLEAN = "order 48213377 for ACME, shipped 2026-03-04"
MODEL = "openai/gpt-4o-mini"


def legacy_turns(arguments: dict[str, Any], result: str = "connected") -> list[dict[str, Any]]:
    """OpenAI-shaped messages: the question, the model's tool call, the tool's result."""
    call = {"id": "call_1", "type": "function", "function": {"name": "connect", "arguments": json.dumps(arguments)}}
    return [{"role": "user", "content": "Check the order database."}, {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": result}]


def typed(arguments: dict[str, Any], result: str = "connected", description: str = "Connect to a database.") -> lm15.Request:
    """A typed lm15 request: a tool call whose ``input`` is a dict, its result, the tool's definition."""
    messages = (
        lm15.Message(role="user", parts=(lm15.TextPart(text="Check the order database."),)),
        lm15.Message(role="assistant", parts=(lm15.ToolCallPart(id="call_1", name="connect", input=arguments),)),
        lm15.Message(role="tool", parts=(lm15.ToolResultPart(id="call_1", content=(lm15.TextPart(text=result),)),)),
    )
    tool = lm15.FunctionTool(name="connect", description=description, parameters={"type": "object", "properties": {"user": {"type": "string"}}})
    return lm15.Request(model=MODEL, messages=messages, tools=(tool,))


TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look an order up.", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}
# case -> (what is sent, built around one value: {"messages": …} / {"request": …} / with "tools"; the value)
CASES: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "legacy tool-call arguments, password": (lambda v: {"messages": legacy_turns({"user": "app", "password": v})}, PASSWORD),
    "legacy tool-call arguments, url": (lambda v: {"messages": legacy_turns({"dsn": v})}, DB_URL),
    "legacy tool result": (lambda v: {"messages": legacy_turns({"user": "app"}, result=f"token {v}")}, SLACK_TOKEN),
    "legacy tool description": (lambda v: {"messages": [{"role": "user", "content": "Where is my order?"}], "tools": [{**TOOL, "function": {**TOOL["function"], "description": f"Charge card {v}"}}]}, CARD),
    "typed tool-call input, password": (lambda v: {"request": typed({"user": "app", "password": v})}, PASSWORD),
    "typed tool-call input, card as a number": (lambda v: {"request": typed({"card_number": int(v.replace(" ", ""))})}, CARD),
    "typed tool result": (lambda v: {"request": typed({"user": "app"}, result=f"token {v}")}, SLACK_TOKEN),
    "typed tool description": (lambda v: {"request": typed({"user": "app"}, description=f"Connect with {v}")}, DB_URL),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_field_with_a_secret_or_card_is_refused_before_sending(instrumentor, make_lm, server, case):
    build, value = CASES[case]
    clean = NOT_A_CARD if value == CARD else CLEAN
    lm = make_lm(MODEL, num_retries=3)
    lm(**build(clean))  # the reference: what DSPy sends with no content policy
    (reference,) = server.requests
    server.requests.clear()
    refusal = refused_then_sent(lambda kwargs: lm(**kwargs), build, value, clean, LMProviderError, server.requests)
    assert (refusal.error.status, refusal.error.provider_code) == (403, "policy_deny_content")
    (sent,) = server.requests
    assert sent["json"] == reference["json"], "sent as without the policy"


def test_media_and_ids_are_not_prompt_text(instrumentor, make_lm, server):
    """An inline image (base64 holding key-like runs), tool-call ids and provider continuation state
    (signatures) are never judged."""
    noise = "".join(RNG.choice(B62) for _ in range(64))
    key_like = "AKIA" + "".join(RNG.choice(string.ascii_uppercase) for _ in range(16)) + "////"  # an AWS key id's shape, in base64
    image = lm15.ImagePart(data=key_like + base64.b64encode(bytes(RNG.randrange(256) for _ in range(3000))).decode(), media_type="image/png")
    state = lm15.ContinuationState(provider="openai", kind="reasoning", data={"signature": f"sk-proj-{noise}"})
    question = lm15.Message(role="user", parts=(lm15.TextPart(text="What does this show?"), image), continuation=(state,))
    with content_policy() as recorded:
        make_lm(MODEL)(request=lm15.Request(model=MODEL, messages=(question,)))
        (span,) = recorded.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert len(server.requests) == 1
