"""The content policy reads every free-text field a google-genai request sends, not only ``text``.

The real SDK and plugin against the conftest's local Gemini server, the real ``EnforcingGovernor``
with ``GENOPS_CONTENT_POLICY=block``: a secret or a card number placed only in a function call's
``args`` (a dict: keys and numbers count), a function's response, executable code or its output, a
function declaration (also one the SDK builds from a Python function's docstring), a response
schema, labels, a camelCase ``systemInstruction``, an embedding's title… is refused with the SDK's
own 403 ``ClientError`` before anything is sent; the same request without it is sent unchanged.
"""

from __future__ import annotations

import json
import math
import random
import string
from typing import Any, Callable

import pydantic
import pytest
from google.genai import errors, types

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api.testing import capture, content_policy, refused_then_sent
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

MODEL = "gemini-2.5-flash"
RNG = random.Random(1414)
B62 = string.ascii_letters + string.digits
DB_URL = "mysql://reporting:" + "".join(RNG.choice(B62) for _ in range(14)) + "@10.20.0.7:3306/billing"
SLACK_TOKEN = "xoxb-223456789012-2234567890123-" + "".join(RNG.choice(B62) for _ in range(24))
CARD = "4111 1111 1111 1111"  # a Visa test number: passes Luhn, a card layout
NOT_A_CARD = "4111111111111112"  # the same digits failing Luhn
PASSWORD = "Marlin2024!x"
CLEAN = "order 48213377 for ACME, shipped 2026-03-04"


def call_turns(args: dict[str, Any], response: dict[str, Any] | None = None) -> list[types.Content]:
    """The user's question, the model's function call with ``args``, the function's response."""
    call = types.Part(function_call=types.FunctionCall(name="connect", args=args))
    answer = types.Part(function_response=types.FunctionResponse(name="connect", response=response or {"result": "connected"}))
    return [
        types.Content(role="user", parts=[types.Part(text="Check the order database.")]),
        types.Content(role="model", parts=[call]),
        types.Content(role="user", parts=[answer]),
    ]


def declared(description: str = "Look an order up by its id.", field: str = "The order id.") -> types.Tool:
    schema = types.Schema(type="OBJECT", properties={"id": types.Schema(type="STRING", description=field)}, required=["id"])
    return types.Tool(function_declarations=[types.FunctionDeclaration(name="lookup", description=description, parameters=schema)])


def documented(docstring: str) -> Callable[..., str]:
    """A Python function given as a tool: the SDK declares it with its docstring as description."""

    def lookup(order_id: str) -> str:
        return "shipped"

    lookup.__doc__ = docstring
    return lookup


def answer_model(description: str) -> type[pydantic.BaseModel]:
    return pydantic.create_model("Answer", status=(str, pydantic.Field(description=description)))


def code_turns(code: str = "print(sum([1, 2]))", output: str = "3\n") -> list[dict[str, Any]]:
    parts = [{"executable_code": {"language": "PYTHON", "code": code}}, {"code_execution_result": {"outcome": "OUTCOME_OK", "output": output}}]
    return [{"role": "user", "parts": [{"text": "Add 1 and 2 with code."}]}, {"role": "model", "parts": parts}, {"role": "user", "parts": [{"text": "Thanks"}]}]


QUESTION = "Where is my order?"
Build = Callable[[str], dict[str, Any]]
# case -> (request keywords built around one value, the value, the call: generate / embed / vertex)
CASES: dict[str, tuple[Build, str, str]] = {
    "function_call args, password key": (lambda v: {"contents": call_turns({"user": "app", "password": v})}, PASSWORD, "generate"),
    "function_call args, card as a number": (lambda v: {"contents": call_turns({"card_number": int(v.replace(" ", ""))})}, CARD, "generate"),
    "function_call args, camelCase dict": (
        lambda v: {"contents": [{"role": "user", "parts": [{"text": "Connect."}]}, {"role": "model", "parts": [{"functionCall": {"name": "connect", "args": {"targets": [{"uri": v}]}}}]}]},
        DB_URL,
        "generate",
    ),
    "function_response response": (lambda v: {"contents": call_turns({}, {"result": {"log": [f"token {v}"]}})}, SLACK_TOKEN, "generate"),
    "executable_code code": (lambda v: {"contents": code_turns(code=f"connect('{v}')")}, DB_URL, "generate"),
    "code_execution_result output": (lambda v: {"contents": code_turns(output=f"token={v}\n")}, SLACK_TOKEN, "generate"),
    "function declaration description": (lambda v: {"contents": QUESTION, "config": types.GenerateContentConfig(tools=[declared(description=f"Look an order up. Auth {v}")])}, SLACK_TOKEN, "generate"),
    "function parameters description": (lambda v: {"contents": QUESTION, "config": types.GenerateContentConfig(tools=[declared(field=f"Charge card {v}")])}, CARD, "generate"),
    "parameters_json_schema description": (
        lambda v: {
            "contents": QUESTION,
            "config": {"tools": [{"function_declarations": [{"name": "lookup", "description": "Look an order up.", "parameters_json_schema": {"type": "object", "properties": {"id": {"type": "string", "description": f"from {v}"}}}}]}]},
        },
        DB_URL,
        "generate",
    ),
    "python function docstring": (lambda v: {"contents": QUESTION, "config": types.GenerateContentConfig(tools=[documented(f"Look an order up.\n\nAuth header: {v}")])}, SLACK_TOKEN, "generate"),
    "response_schema description": (
        lambda v: {"contents": QUESTION, "config": types.GenerateContentConfig(response_mime_type="application/json", response_schema=types.Schema(type="OBJECT", description=f"for card {v}", properties={"status": types.Schema(type="STRING")}))},
        CARD,
        "generate",
    ),
    "response_schema pydantic class": (lambda v: {"contents": QUESTION, "config": types.GenerateContentConfig(response_mime_type="application/json", response_schema=answer_model(f"status of {v}"))}, DB_URL, "generate"),
    "response_json_schema description": (
        lambda v: {"contents": QUESTION, "config": {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "description": f"token {v}", "properties": {}}}},
        SLACK_TOKEN,
        "generate",
    ),
    "camelCase systemInstruction": (lambda v: {"contents": QUESTION, "config": {"systemInstruction": {"parts": [{"text": f"Use {v} for lookups."}]}}}, DB_URL, "generate"),
    "labels": (lambda v: {"contents": QUESTION, "config": types.GenerateContentConfig(labels={"team": "ops", "db_password": v})}, PASSWORD, "vertex"),
    "embedding title": (lambda v: {"contents": "A runbook.", "config": types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", title=f"Runbook {v}")}, SLACK_TOKEN, "embed"),
}


def _send(clients: dict[str, Any], kind: str, kwargs: dict[str, Any]) -> Any:
    models = clients["vertex" if kind == "vertex" else "gemini"].models
    if kind == "embed":
        return models.embed_content(model="gemini-embedding-001", **kwargs)
    return models.generate_content(model=MODEL, **kwargs)


@pytest.fixture
def clients(client: Any, vertex_client: Any, server: Any, gemini: Any) -> dict[str, Any]:
    """Both clients; embedding requests are answered as the Gemini API does."""
    default = server.default

    def reply(path: str, body: dict[str, Any]) -> Any:
        if ":batchEmbedContents" in path or ":embedContent" in path:
            return gemini.Reply(body={"embeddings": [{"values": [0.1, 0.2, 0.3]}]})
        return default(path, body)

    server.default = reply
    yield {"gemini": client, "vertex": vertex_client}
    server.default = default


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_field_with_a_secret_or_card_is_refused_before_sending(clients, server, case):
    build, value, kind = CASES[case]
    clean_value = NOT_A_CARD if value == CARD else CLEAN
    with capture(config.load({})):  # the reference: what the SDK sends with no content policy
        _send(clients, kind, build(clean_value))
    (reference,) = server.requests
    server.requests.clear()
    refusal = refused_then_sent(lambda kwargs: _send(clients, kind, kwargs), build, value, clean_value, errors.ClientError, server.requests)
    error = refusal.error
    assert error.code == 403 and value not in json.dumps(error.details)
    (sent,) = server.requests
    assert sent["path"] == reference["path"] and sent["body"] == reference["body"], "sent as without the policy"


def test_a_function_call_from_the_previous_response_is_checked(clients, server, gemini):
    """``contents.append(response.candidates[0].content)``: the SDK's own Content, args included."""
    server.script(gemini.Reply(body=gemini.generate_body(parts=[{"functionCall": {"name": "connect", "args": {"uri": DB_URL}}}], usage=gemini.USAGE)))
    models = clients["gemini"].models
    with content_policy():
        response = models.generate_content(model=MODEL, contents=QUESTION)
        followup = [QUESTION, response.candidates[0].content, types.Part.from_function_response(name="connect", response={"result": "ok"})]
        with pytest.raises(errors.ClientError):
            models.generate_content(model=MODEL, contents=followup)
    assert len(server.requests) == 1


def test_a_secret_deep_in_a_parameter_schema_is_found(clients, server):
    """Nested past Python's recursion limit: read without recursion, so no error lets the call through."""
    schema: dict[str, Any] = {"type": "string", "description": f"default {DB_URL}"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"inner": schema}}
    declaration = {"name": "deep", "description": "Deep.", "parameters_json_schema": schema}
    with content_policy():
        with pytest.raises(errors.ClientError):
            clients["gemini"].models.generate_content(model=MODEL, contents=QUESTION, config={"tools": [{"function_declarations": [declaration]}]})
    assert server.requests == []


def test_a_self_referencing_argument_is_read_once(clients, server):
    """A cycle in ``args`` ends the walk (each container once): the secret beside it is still found."""
    args: dict[str, Any] = {"password": PASSWORD}
    args["self"] = args
    with content_policy():
        with pytest.raises(errors.ClientError) as caught:
            clients["gemini"].models.generate_content(model=MODEL, contents=call_turns(args))
    assert caught.value.reason_code == semconv.REASON_POLICY_DENY_CONTENT
    assert server.requests == []


def test_media_signatures_and_file_uris_are_not_prompt_text(clients, server):
    """Inline bytes, thought signatures and file URIs (signed URLs carry tokens) are never judged."""
    signed = "https://storage.googleapis.com/uploads/chart.png?X-Goog-Credential=svc&token=" + "".join(RNG.choice(B62) for _ in range(40))
    parts = [
        types.Part.from_bytes(data=b"\x89PNG\r\n" + bytes(RNG.randrange(256) for _ in range(4000)), mime_type="image/png"),
        types.Part.from_uri(file_uri=signed, mime_type="image/png"),
        types.Part(text="What do these show?", thought_signature=b"sk-" + "".join(RNG.choice(B62) for _ in range(48)).encode()),
    ]
    with content_policy() as recorded:
        clients["gemini"].models.generate_content(model=MODEL, contents=[types.Content(role="user", parts=parts)])
        (span,) = recorded.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert len(server.requests) == 1


def test_the_estimate_counts_declarations_and_calls_but_not_media(clients, server):
    """Function declarations, calls and responses are billed input tokens; inline bytes are not text."""
    image = types.Part.from_bytes(data=b"A" * 40_000, mime_type="image/png")
    contents = call_turns({"id": "48213377"}, {"status": "shipped"})
    contents[0].parts.append(image)
    tool = declared()
    texts = ["lookup", "Look an order up by its id.", "OBJECT", "STRING", "The order id.", "id", "Check the order database.", "connect", "id: 48213377", "connect", "status: shipped"]
    with content_policy(GENOPS_TEAM="search", GENOPS_BUDGETS="team=100/day", GENOPS_LEDGER_URL="memory://") as recorded:
        clients["gemini"].models.generate_content(model=MODEL, contents=contents, config=types.GenerateContentConfig(tools=[tool], max_output_tokens=20))
        (span,) = recorded.spans()
    estimate = price_call("gcp.gen_ai", MODEL, Usage(input_tokens=math.ceil(sum(map(len, texts)) / 4), output_tokens=20)).total
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx(estimate)


def test_streams_are_checked_the_same_way(clients, server):
    """``generate_content_stream``: refused at the first ``next()``, where the SDK raises its errors."""
    stream = clients["gemini"].models.generate_content_stream(model=MODEL, contents=call_turns({"password": PASSWORD}))
    with content_policy():
        with pytest.raises(errors.ClientError) as caught:
            next(iter(stream))
    assert caught.value.reason_code == semconv.REASON_POLICY_DENY_CONTENT
    assert server.requests == []
