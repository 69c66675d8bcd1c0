"""The content policy reads every free-text field a Bedrock Runtime request sends, not only messages.

A real botocore client against the conftest's local Bedrock server, the real ``EnforcingGovernor``
with ``GENOPS_CONTENT_POLICY=block``: a secret or a card number placed only in a Converse tool
definition, a tool call's ``input`` (a dict: keys and numbers count), a tool result, reasoning,
guarded content, prompt variables, vendor fields, request metadata, a plain-text document, the
output schema; or, in an InvokeModel body, in an Anthropic tool call or tool, a Cohere document,
preamble or tool, Mistral tool-call arguments, a Nova tool… is refused with the client's own
``AccessDeniedException`` before anything is sent; the same request without it is sent unchanged.
"""

from __future__ import annotations

import json
import math
import random
import string
from typing import Any, Callable

import botocore
import pytest

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api.testing import capture, content_policy, refused_then_sent
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
RNG = random.Random(1415)
B62 = string.ascii_letters + string.digits
DB_URL = "postgresql://etl:" + "".join(RNG.choice(B62) for _ in range(14)) + "@warehouse.corp.example:5432/sales"
GITLAB_TOKEN = "glpat-" + "".join(RNG.choice(B62) for _ in range(20))
CARD = "5555 5555 5555 4444"  # a Mastercard test number: passes Luhn, a card layout
NOT_A_CARD = "5555555555554445"  # the same digits failing Luhn
PASSWORD = "Harbor7788$q"
CLEAN = "order 48213377 for ACME, shipped 2026-03-04"
QUESTION = {"role": "user", "content": [{"text": "Check the order database."}]}

CONVERSE_REPLY = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Done."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 40, "outputTokens": 2, "totalTokens": 42},
    "metrics": {"latencyMs": 212},
}
INVOKE_REPLY = {"id": "msg_bdrk_01", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn", "usage": {"input_tokens": 40, "output_tokens": 2}}


def tool_turns(tool_input: dict[str, Any], result: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The user's question, the model's tool call with ``tool_input``, the tool's result."""
    call = {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "connect", "input": tool_input}}
    answer = {"toolResult": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "content": result or [{"text": "connected"}]}}
    return [QUESTION, {"role": "assistant", "content": [{"text": "Connecting."}, call]}, {"role": "user", "content": [answer]}]


def tool_config(description: str = "Look an order up by its id.", field: str = "The order id.") -> dict[str, Any]:
    schema = {"type": "object", "properties": {"id": {"type": "string", "description": field}}, "required": ["id"]}
    return {"tools": [{"toolSpec": {"name": "lookup", "description": description, "inputSchema": {"json": schema}}}]}


def document(data: bytes) -> dict[str, Any]:
    return {"role": "user", "content": [{"document": {"format": "txt", "name": "runbook", "source": {"bytes": data}}}, {"text": "Summarise it."}]}


Build = Callable[[str], dict[str, Any]]
CONVERSE: dict[str, tuple[Build, str]] = {
    "tool description": (lambda v: {"messages": [QUESTION], "toolConfig": tool_config(description=f"Look an order up. Auth {v}")}, GITLAB_TOKEN),
    "tool input schema": (lambda v: {"messages": [QUESTION], "toolConfig": tool_config(field=f"Charge card {v}")}, CARD),
    "toolUse input, password key": (lambda v: {"messages": tool_turns({"user": "app", "password": v})}, PASSWORD),
    "toolUse input, card as a number": (lambda v: {"messages": tool_turns({"card_number": int(v.replace(" ", ""))})}, CARD),
    "toolResult text": (lambda v: {"messages": tool_turns({}, [{"text": f"token {v}"}])}, GITLAB_TOKEN),
    "toolResult json": (lambda v: {"messages": tool_turns({}, [{"json": {"targets": [{"name": "primary", "uri": v}]}}])}, DB_URL),
    "reasoning text": (
        lambda v: {"messages": [QUESTION, {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": f"The user gave {v}", "signature": "ErcBCkgIAxABGAIiQ"}}}, {"text": "Done."}]}, {"role": "user", "content": [{"text": "Thanks"}]}]},
        GITLAB_TOKEN,
    ),
    "guardContent": (lambda v: {"messages": [{"role": "user", "content": [{"guardContent": {"text": {"text": f"Card {v}", "qualifiers": ["guard_content"]}}}]}]}, CARD),
    "system guardContent": (lambda v: {"system": [{"text": "Be brief."}, {"guardContent": {"text": {"text": f"DB {v}"}}}], "messages": [QUESTION]}, DB_URL),
    "promptVariables": (lambda v: {"promptVariables": {"customer": {"text": f"token {v}"}}}, GITLAB_TOKEN),
    "additionalModelRequestFields": (lambda v: {"messages": [QUESTION], "additionalModelRequestFields": {"metadata": {"user_id": v}}}, DB_URL),
    "requestMetadata": (lambda v: {"messages": [QUESTION], "requestMetadata": {"team": "ops", "db_password": v}}, PASSWORD),
    "plain-text document bytes": (lambda v: {"messages": [document(f"Runbook: connect to {v}".encode())]}, DB_URL),
    "document source text": (
        lambda v: {"messages": [{"role": "user", "content": [{"document": {"name": "runbook", "source": {"text": f"connect to {v}"}}}, {"text": "Summarise."}]}]},
        DB_URL,
    ),
    "output json schema": (
        lambda v: {"messages": [QUESTION], "outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"name": "answer", "schema": json.dumps({"type": "object", "description": f"for card {v}"})}}}}},
        CARD,
    ),
}

COHERE = "cohere.command-r-plus-v1:0"
MISTRAL = "mistral.mistral-large-2407-v1:0"
NOVA = "us.amazon.nova-pro-v1:0"
INVOKE: dict[str, tuple[str, Build, str]] = {
    "anthropic tool_use input": (
        CLAUDE,
        lambda v: {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [
            {"role": "user", "content": "Connect."},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_bdrk_01", "name": "connect", "input": {"user": "app", "password": v}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_bdrk_01", "content": "ok"}]},
        ]},
        PASSWORD,
    ),
    "anthropic tool description": (
        CLAUDE,
        lambda v: {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], "tools": [{"name": "lookup", "description": f"Auth {v}", "input_schema": {"type": "object", "properties": {}}}]},
        GITLAB_TOKEN,
    ),
    "cohere documents": (COHERE, lambda v: {"message": "Summarise.", "documents": [{"title": "Runbook", "snippet": f"connect to {v}"}]}, DB_URL),
    "cohere preamble": (COHERE, lambda v: {"message": "Hi", "preamble": f"Use token {v}."}, GITLAB_TOKEN),
    "cohere tool parameter": (
        COHERE,
        lambda v: {"message": "Pay.", "tools": [{"name": "pay", "description": "Pay an invoice.", "parameter_definitions": {"card": {"description": f"default card {v}", "type": "str", "required": True}}}]},
        CARD,
    ),
    "cohere tool results": (
        COHERE,
        lambda v: {"message": "Summarise.", "tool_results": [{"call": {"name": "lookup", "parameters": {"id": "48213377"}}, "outputs": [{"card_number": int(v.replace(" ", ""))}]}]},
        CARD,
    ),
    "mistral tool_calls arguments": (
        MISTRAL,
        lambda v: {"messages": [
            {"role": "user", "content": "Connect."},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call0001", "function": {"name": "connect", "arguments": json.dumps({"password": v})}}]},
            {"role": "tool", "tool_call_id": "call0001", "content": "ok"},
        ]},
        PASSWORD,
    ),
    "mistral tools": (
        MISTRAL,
        lambda v: {"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {"name": "lookup", "description": f"uses {v}", "parameters": {"type": "object", "properties": {}}}}]},
        DB_URL,
    ),
    "nova toolConfig": (
        NOVA,
        lambda v: {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "description": f"Auth {v}", "inputSchema": {"json": {"type": "object"}}}}]}},
        GITLAB_TOKEN,
    ),
    "nova toolUse input": (
        NOVA,
        lambda v: {"messages": [{"role": "user", "content": [{"text": "Hi"}]}, {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "connect", "input": {"uri": v}}}]}]},
        DB_URL,
    ),
}


def _clean(value: str) -> str:
    return NOT_A_CARD if value == CARD else CLEAN


def _refused(refusal: Any, value: str) -> None:
    """Beyond ``refused_then_sent``'s checks: botocore's own AccessDeniedException, the value nowhere in it."""
    error = refusal.error
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert value not in str(error) and value not in json.dumps(error.response, default=str)


@pytest.mark.parametrize("case", sorted(CONVERSE))
def test_a_converse_field_with_a_secret_or_card_is_refused_before_sending(bedrock, server, case):
    build, value = CONVERSE[case]
    from botocore.validate import validate_parameters

    try:  # the oldest botocore of the range knows no outputConfig nor text document sources
        validate_parameters({"modelId": CLAUDE, **build(_clean(value))}, bedrock.meta.service_model.operation_model("Converse").input_shape)
    except Exception as error:
        pytest.skip(f"botocore {botocore.__version__} does not accept this request: {str(error).splitlines()[-1]}")
    server.reply_json(CONVERSE_REPLY)
    with capture(config.load({})):  # the reference: what botocore sends with no content policy
        bedrock.converse(modelId=CLAUDE, **build(_clean(value)))
    (reference,) = server.received
    server.received.clear()

    def send_clean(kwargs: dict[str, Any]) -> None:
        server.reply_json(CONVERSE_REPLY)
        bedrock.converse(modelId=CLAUDE, **kwargs)

    refusal = refused_then_sent(lambda kwargs: bedrock.converse(modelId=CLAUDE, **kwargs), build, value, _clean(value), bedrock.exceptions.AccessDeniedException, server.received, send_clean)
    _refused(refusal, value)
    (sent,) = server.received
    assert sent.path == reference.path and json.loads(sent.body) == json.loads(reference.body), "sent as without the policy"


@pytest.mark.parametrize("case", sorted(INVOKE))
def test_an_invoke_body_field_with_a_secret_or_card_is_refused_before_sending(bedrock, server, case):
    model, build, value = INVOKE[case]

    def send_clean(body: dict[str, Any]) -> None:
        server.reply_json(INVOKE_REPLY)
        bedrock.invoke_model(modelId=model, body=json.dumps(body).encode())["body"].read()

    refusal = refused_then_sent(lambda body: bedrock.invoke_model(modelId=model, body=json.dumps(body)), build, value, _clean(value), bedrock.exceptions.AccessDeniedException, server.received, send_clean)
    _refused(refusal, value)
    (sent,) = server.received
    assert sent.body == json.dumps(refusal.given).encode(), "the body is sent byte for byte"


def test_converse_stream_is_checked_the_same_way(bedrock, server):
    with content_policy():
        with pytest.raises(bedrock.exceptions.AccessDeniedException):
            bedrock.converse_stream(modelId=CLAUDE, messages=tool_turns({"password": PASSWORD}))
    assert server.received == []


def test_a_secret_deep_in_a_tool_schema_is_found(bedrock, server):
    """Nested past Python's recursion limit: read without recursion, so no error lets the call through."""
    schema: dict[str, Any] = {"type": "string", "description": f"default {DB_URL}"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"inner": schema}}
    nested = '{"type": "object", "properties": {"inner": ' * 3000 + json.dumps({"type": "string", "description": f"default {DB_URL}"}) + "}}" * 3000
    raw = '{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], "tools": [{"name": "deep", "input_schema": ' + nested + "}]}"
    with content_policy():
        with pytest.raises(bedrock.exceptions.AccessDeniedException):
            bedrock.invoke_model(modelId=CLAUDE, body=raw)
        with pytest.raises(bedrock.exceptions.AccessDeniedException):
            bedrock.converse(modelId=CLAUDE, messages=[QUESTION], toolConfig={"tools": [{"toolSpec": {"name": "deep", "description": "Deep.", "inputSchema": {"json": schema}}}]})
    assert server.received == []


def test_a_self_referencing_tool_input_is_read_once(bedrock, server):
    """A cycle in ``toolUse.input`` ends the walk (each container once): the secret beside it is found."""
    tool_input: dict[str, Any] = {"password": PASSWORD}
    tool_input["self"] = tool_input
    with content_policy():
        with pytest.raises(bedrock.exceptions.AccessDeniedException):
            bedrock.converse(modelId=CLAUDE, messages=tool_turns(tool_input))
    assert server.received == []


def test_images_signatures_and_ids_are_not_prompt_text(bedrock, server):
    """Image bytes (raw in Converse, base64 in a body), reasoning signatures and ids are never judged."""
    signature = "sk-" + "".join(RNG.choice(B62) for _ in range(48))
    png = b"\x89PNG\r\n" + bytes(RNG.randrange(256) for _ in range(4000))
    messages = [
        {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": png}}}, {"text": "What does it show?"}]},
        {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "A chart.", "signature": signature}}}, {"text": "A chart."}]},
        {"role": "user", "content": [{"text": "More?"}]},
    ]
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "".join(RNG.choice(B62 + "+/") for _ in range(8000))}}
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}]}
    with content_policy() as recorded:
        server.reply_json(CONVERSE_REPLY)
        bedrock.converse(modelId=CLAUDE, messages=messages)
        server.reply_json(INVOKE_REPLY)
        bedrock.invoke_model(modelId=CLAUDE, body=json.dumps(body))["body"].read()
        spans = recorded.spans()
    assert [span.attributes[semconv.GENOPS_POLICY_RESULT] for span in spans] == [semconv.RESULT_ALLOWED] * 2
    assert len(server.received) == 2


def test_the_estimate_counts_tool_definitions_and_calls_but_not_images(bedrock, server):
    """Tool definitions and tool calls are billed input tokens; image bytes are not text."""
    messages = tool_turns({"id": "48213377"}, [{"json": {"status": "shipped"}}])
    messages[0] = {"role": "user", "content": [{"text": "Where is order 48213377?"}, {"image": {"format": "png", "source": {"bytes": b"A" * 40_000}}}]}
    schema = ["type: object", "type: string", "description: The order id.", "required: id"]  # inputSchema.json, read as key: value
    texts = ["lookup", "Look an order up by its id.", *schema, "Where is order 48213377?", "Connecting.", "connect", "id: 48213377", "status: shipped"]
    with content_policy(GENOPS_TEAM="search", GENOPS_BUDGETS="team=100/day", GENOPS_LEDGER_URL="memory://") as recorded:
        server.reply_json(CONVERSE_REPLY)
        bedrock.converse(modelId=CLAUDE, messages=messages, toolConfig=tool_config(), inferenceConfig={"maxTokens": 20})
        (span,) = recorded.spans()
    estimate = price_call("aws.bedrock", CLAUDE, Usage(input_tokens=math.ceil(sum(map(len, texts)) / 4), output_tokens=20), "https://bedrock-runtime.us-east-1.amazonaws.com").total
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx(estimate)
