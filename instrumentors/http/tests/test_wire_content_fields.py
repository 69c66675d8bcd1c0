"""The wire layer gives the content policy and the budget estimate every free-text field a request
body sends, not only its messages' text.

httpx and requests posting each API's JSON to the conftest's local server, the real governor with
``GENOPS_CONTENT_POLICY=block``: a secret or a card placed only in an OpenAI tool call's arguments,
a tool's description or parameter schema, a Responses function call, an Anthropic ``tool_use.input``
(a dict: keys and numbers count), a Gemini ``functionCall.args`` or ``functionResponse.response``,
an Ollama tool call, a Cohere document is answered with the provider's own 403 before anything is
sent; the same body without it is sent unchanged. Media, signatures and ids are never judged; a
large tool definition counts in the budget's reservation.
"""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any, Callable

import httpx
import pytest
import requests

from genops_autoinstrument import semconv
from genops_autoinstrument.api import free_texts
from genops_autoinstrument.api.testing import content_policy

RNG = random.Random(1515)
B62 = string.ascii_letters + string.digits
DB_URL = "postgres://billing:" + "".join(RNG.choice(B62) for _ in range(14)) + "@10.0.4.2:5432/orders"
SLACK_TOKEN = "xoxb-223456789012-2234567890123-" + "".join(RNG.choice(B62) for _ in range(24))
CARD = "4111 1111 1111 1111"  # a Visa test number: passes Luhn
NOT_A_CARD = "4111111111111112"  # the same digits failing Luhn
PASSWORD = "Marlin2024!x"
CLEAN = "order 48213377 for ACME, shipped 2026-03-04"
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
QUESTION = "Check the order database."


def openai_tool(description: str = "Look an order up.", field: str = "The order id.") -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"id": {"type": "string", "description": field}}, "required": ["id"]}
    return {"type": "function", "function": {"name": "lookup", "description": description, "parameters": parameters}}


def openai_chat(arguments: dict[str, Any] | None = None, tool: dict[str, Any] | None = None) -> dict[str, Any]:
    """A chat body: the question, the model's tool call with ``arguments`` (a JSON string), its result."""
    call = {"id": "call_Qx7", "type": "function", "function": {"name": "lookup", "arguments": json.dumps(arguments or {"id": "48213377"})}}
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_Qx7", "content": "shipped"}]
    return {"model": "gpt-4o-mini", "messages": messages, "tools": [tool or openai_tool()], "max_tokens": 20}


def openai_responses(arguments: dict[str, Any]) -> dict[str, Any]:
    items = [
        {"role": "user", "content": QUESTION},
        {"type": "function_call", "call_id": "call_Qx7", "name": "lookup", "arguments": json.dumps(arguments)},
        {"type": "function_call_output", "call_id": "call_Qx7", "output": "shipped"},
    ]
    return {"model": "gpt-4o-mini", "input": items, "max_output_tokens": 20}


def anthropic(tool_input: dict[str, Any], description: str = "Connect to a database.") -> dict[str, Any]:
    """A messages body: the question, the model's ``tool_use`` with ``input`` (a dict), its result."""
    use = {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "connect", "input": tool_input}
    result = {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "connected"}
    tool = {"name": "connect", "description": description, "input_schema": {"type": "object", "properties": {"user": {"type": "string"}}}}
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    return {"model": "claude-haiku-4-5", "max_tokens": 64, "tools": [tool], "messages": messages}


def gemini(args: dict[str, Any], response: dict[str, Any] | None = None) -> dict[str, Any]:
    """A generateContent body: the question, the model's ``functionCall``, the ``functionResponse``."""
    call = {"functionCall": {"name": "connect", "args": args}}
    answer = {"functionResponse": {"name": "connect", "response": response or {"result": "connected"}}}
    contents = [{"role": "user", "parts": [{"text": QUESTION}]}, {"role": "model", "parts": [call]}, {"role": "user", "parts": [answer]}]
    return {"contents": contents, "generationConfig": {"maxOutputTokens": 64}}


def ollama(arguments: dict[str, Any]) -> dict[str, Any]:
    call = {"function": {"name": "connect", "arguments": arguments}}
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "content": "connected"}]
    return {"model": "llama3.2", "messages": messages, "stream": False}


def cohere(document: dict[str, Any]) -> dict[str, Any]:
    return {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "Summarise the order."}], "documents": [{"id": "doc-1", "data": document}]}


Build = Callable[[str], dict[str, Any]]
# case -> (protocol, body built around one value, the value)
CASES: dict[str, tuple[str, Build, str]] = {
    "openai tool_calls arguments": ("openai", lambda v: openai_chat({"dsn": v}), DB_URL),
    "openai tool description": ("openai", lambda v: openai_chat(tool=openai_tool(description=f"Auth {v}")), SLACK_TOKEN),
    "openai tool parameter description": ("openai", lambda v: openai_chat(tool=openai_tool(field=f"Charge card {v}")), CARD),
    "openai responses function_call arguments": ("responses", lambda v: openai_responses({"user": "app", "password": v}), PASSWORD),
    "anthropic tool_use input, password": ("anthropic", lambda v: anthropic({"user": "app", "password": v}), PASSWORD),
    "anthropic tool_use input, card as a number": ("anthropic", lambda v: anthropic({"card_number": int(v.replace(" ", ""))}), CARD),
    "anthropic tool description": ("anthropic", lambda v: anthropic({"user": "app"}, description=f"Connect with {v}"), DB_URL),
    "gemini functionCall args": ("gemini", lambda v: gemini({"user": "app", "password": v}), PASSWORD),
    "gemini functionResponse response": ("gemini", lambda v: gemini({}, {"result": {"log": [f"token {v}"]}}), SLACK_TOKEN),
    "ollama tool call arguments": ("ollama", lambda v: ollama({"dsn": v}), DB_URL),
    "cohere document data": ("cohere", lambda v: cohere({"title": "Runbook", "snippet": f"use {v}"}), SLACK_TOKEN),
}
PATHS = {"openai": "/v1/chat/completions", "responses": "/v1/responses", "anthropic": "/v1/messages", "gemini": GEMINI_PATH, "ollama": "/api/chat", "cohere": "/v2/chat"}
RESPONSES = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "object": "response", "created_at": 1741476542, "status": "completed", "model": "gpt-4o-mini-2024-07-18",
    "output": [{"type": "message", "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "Shipped.", "annotations": []}]}],
    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 39},
}


def _answer(providers: Any, h: Any, protocol: str) -> None:
    if protocol == "responses":
        providers.json(PATHS[protocol], RESPONSES)
    elif protocol != "openai":
        providers.json(PATHS[protocol], h.PROTOCOLS[protocol]["answer"])


def _post(client: str, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = requests.post(url, json=body) if client == "requests" else httpx.post(url, json=body)
    return response.status_code, response.json()


def _refusal_error(h: Any, protocol: str) -> Callable[[Any], bool]:
    if protocol in ("openai", "responses"):
        return lambda body: body["error"]["type"] == "genops_policy_violation" and body["error"]["code"] == "policy_deny_content"
    return h.PROTOCOLS[protocol]["error"]


@pytest.mark.parametrize("client", ["httpx", "requests"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_field_with_a_secret_or_card_is_refused_with_the_providers_403(providers, wire, h, case, client):
    protocol, build, value = CASES[case]
    clean = NOT_A_CARD if value == CARD else CLEAN
    _answer(providers, h, protocol)
    url = providers.url + PATHS[protocol]
    with content_policy() as recorded:
        status, error = _post(client, url, build(value))
        assert status == 403 and _refusal_error(h, protocol)(error), error
        assert providers.requests == [], "nothing reaches the endpoint"
        body = build(clean)
        given = json.loads(json.dumps(body))
        status, _ = _post(client, url, body)
        blocked, allowed = recorded.spans()
    assert status == 200
    assert value not in json.dumps(error) and value not in json.dumps(dict(blocked.attributes), default=str), "the value is not repeated"
    assert blocked.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert blocked.attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_POLICY_DENY_CONTENT
    assert allowed.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    (sent,) = providers.requests
    assert sent["json"] == given == body, "the clean body is sent unchanged"


def test_media_signatures_and_ids_are_not_prompt_text(providers, wire, h):
    """Base64 images (holding runs shaped like keys), data: URLs, thinking signatures, redacted
    thinking, Gemini inline data and thought signatures, tool-call ids: never judged."""
    key_like = "AKIA" + "".join(RNG.choice(string.ascii_uppercase) for _ in range(16)) + "////"  # an AWS key id's shape
    image = key_like + base64.b64encode(bytes(RNG.randrange(256) for _ in range(3000))).decode()
    signature = "sk-proj-" + "".join(RNG.choice(B62) for _ in range(64))
    bodies = {
        "/v1/chat/completions": {"model": "gpt-4o-mini", "user": "user-" + key_like, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What does this show?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}},
            {"type": "input_audio", "input_audio": {"data": image, "format": "wav"}}]}]},
        "/v1/messages": {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}}, {"type": "text", "text": "What is it?"}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "An image.", "signature": signature}, {"type": "redacted_thinking", "data": signature}, {"type": "text", "text": "A chart."}]},
            {"role": "user", "content": "Thanks"}]},
        GEMINI_PATH: {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": image}}, {"text": "What is it?", "thoughtSignature": signature}]}]},
    }
    providers.json("/v1/messages", h.ANTHROPIC_MESSAGE)
    providers.json(GEMINI_PATH, h.GEMINI_RESPONSE)
    with content_policy() as recorded:
        for path, body in bodies.items():
            assert httpx.post(providers.url + path, json=body).status_code == 200
        spans = recorded.spans()
    assert [span.attributes[semconv.GENOPS_POLICY_RESULT] for span in spans] == [semconv.RESULT_ALLOWED] * 3
    assert [request["json"] for request in providers.requests] == list(bodies.values())


def test_a_plain_text_document_is_prompt_text(providers, wire, h):
    """An Anthropic plain-text document's ``data`` is the document itself: judged."""
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": f"Runbook: connect with {DB_URL}"}}
    providers.json("/v1/messages", h.ANTHROPIC_MESSAGE)
    with content_policy():
        response = httpx.post(providers.url + "/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": [document, {"type": "text", "text": "Summarise."}]}]})
    assert response.status_code == 403 and providers.requests == []


def test_a_deeply_nested_schema_is_read_to_the_bottom(providers, wire):
    """A parameter schema 300 levels deep: the secret at the bottom is found."""
    schema: dict[str, Any] = {"type": "string", "description": f"default {DB_URL}"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"inner": schema}}
    body = openai_chat(tool={"type": "function", "function": {"name": "deep", "description": "Deep.", "parameters": schema}})
    with content_policy():
        response = requests.post(providers.url + "/v1/chat/completions", json=body)
    assert response.status_code == 403 and providers.requests == []


def test_the_kits_walk_needs_no_recursion_and_ends_on_a_cycle():
    """Past Python's recursion limit and around a cycle (a dict a client has not serialised yet),
    every string is read once."""
    deep: list[Any] = []
    bottom = deep
    for _ in range(100_000):
        bottom.append({"inner": []})
        bottom = bottom[0]["inner"]
    bottom.append(DB_URL)
    looped: dict[str, Any] = {"role": "user", "content": "hello"}
    looped["self"] = looped
    assert free_texts([deep, looped], frozenset({"role"})) == [DB_URL, "hello"]


def test_a_large_tool_definition_counts_in_the_budget_reservation(providers, governed):
    """The estimate reads the whole body: 30,000 tokens of tool schema put a call over a budget that
    its short messages alone would fit in; the call is refused (429) and nothing is sent."""
    properties = {f"field_{i}": {"type": "string", "description": "A field of the order record, kept as given by the warehouse system. " * 4} for i in range(400)}
    tool = {"type": "function", "function": {"name": "update_order", "description": "Update an order.", "parameters": {"type": "object", "properties": properties}}}
    body = openai_chat(tool=tool)
    assert len(json.dumps(tool)) > 100_000
    with governed({"GENOPS_BUDGETS": "team=0.004/day"}) as recorded:
        refused = httpx.post(providers.url + "/v1/chat/completions", json=body)
        assert providers.requests == []
        allowed = httpx.post(providers.url + "/v1/chat/completions", json=openai_chat())
        spans = recorded.spans()
    assert refused.status_code == 429 and allowed.status_code == 200
    assert [span.attributes[semconv.GENOPS_POLICY_RESULT] for span in spans] == [semconv.RESULT_BLOCKED, semconv.RESULT_ALLOWED]
    assert len(providers.requests) == 1
