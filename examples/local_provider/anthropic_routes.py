"""Anthropic Messages API routes: /v1/messages (JSON or SSE), /v1/messages/count_tokens, and the
Vertex AI publisher endpoints (:rawPredict / :streamRawPredict) the SDK's AnthropicVertex calls.

Responses have api.anthropic.com's shapes: ``msg_…`` ids, dated model snapshots, ``usage`` with
cache figures, and the SSE sequence ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta``…, ``content_block_stop``, ``message_delta`` (final ``output_tokens``),
``message_stop``. Deterministic: the reply repeats the last user message after a fixed sentence,
a token is a word or punctuation mark, ``max_tokens`` truncates with ``stop_reason="max_tokens"``.

Conventions shared with openai_routes.py: model ``fail-<status>`` answers with that error in
Anthropic's error shape. A ``cache_control`` marker anywhere in the request makes the system
prompt's tokens count as cache reads (``cache_read_input_tokens``), so cached pricing can be shown.
Stdlib only; see README.md for the route-module contract.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import Any, Iterator, Mapping

REPLY_PREFIX = "Hello from the local provider. You said:"
MAX_ECHO_WORDS = 400

SNAPSHOTS = {
    "claude-sonnet-4-6": "claude-sonnet-4-6",
    "claude-opus-4-6": "claude-opus-4-6",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    529: ("overloaded_error", "Overloaded"),
}
_TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]")
_counter = itertools.count(1)


def pieces(text: str) -> list[str]:
    """The 'tokens' of this fake tokenizer: words and punctuation marks, with leading spaces."""
    return _TOKEN.findall(text)


def _id(prefix: str, body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(f"{next(_counter)}:{json.dumps(body, sort_keys=True, default=str)}".encode()).hexdigest()
    return prefix + digest[:24]


def _headers(content_type: str = "application/json") -> dict[str, str]:
    return {
        "content-type": content_type,
        "request-id": "req_" + hashlib.sha256(str(next(_counter)).encode()).hexdigest()[:24],
        "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
    }


def error(status: int, message: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """An error response shaped like Anthropic's."""
    kind, default = _ERRORS.get(status, ("api_error", "Request failed."))
    body = {"type": "error", "error": {"type": kind, "message": message or default}, "request_id": "req_local"}
    return status, _headers(), json.dumps(body).encode()


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(block.get("text", "")) for block in content if isinstance(block, dict) and "text" in block]
    return []


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(item) for item in value)
    return False


def _usage_in(body: Mapping[str, Any]) -> tuple[int, int]:
    """(fresh input tokens, cache-read tokens) of a request."""
    system = sum(len(pieces(text)) for text in _texts(body.get("system")))
    messages = sum(len(pieces(text)) + 3 for message in body.get("messages") or [] if isinstance(message, dict) for text in _texts(message.get("content")))
    fresh = system + messages + 8
    if _has_cache_control(body) and system:
        return fresh - system, system
    return fresh, 0


def _check(body: Mapping[str, Any], headers: Mapping[str, str], vertex: bool) -> tuple[int, dict[str, str], bytes] | None:
    if not vertex and "x-api-key" not in headers and not headers.get("authorization", "").startswith("Bearer "):
        return error(401)
    if "_raw" in body or "_json" in body:
        return error(400, "There was an issue with the request body: invalid JSON.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error(400, "model: Field required")
    failing = re.fullmatch(r"fail-(\d{3})", model)
    if failing:
        return error(int(failing.group(1)))
    if not isinstance(body.get("max_tokens"), int):
        return error(400, "max_tokens: Field required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return error(400, "messages: Field required")
    return None


def _reply(body: Mapping[str, Any]) -> tuple[list[str], str]:
    """(reply tokens, stop_reason) honouring max_tokens."""
    last = ""
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            last = " ".join(_texts(message.get("content")))
    words = " ".join(last.split()[:MAX_ECHO_WORDS])
    tokens = pieces(f"{REPLY_PREFIX} {words}".strip())
    limit = body["max_tokens"]
    return (tokens[:limit], "max_tokens") if len(tokens) > limit else (tokens, "end_turn")


def _usage(fresh: int, cached: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": fresh,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
        "service_tier": "standard",
    }


def _sse(event: Mapping[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _stream(body: Mapping[str, Any], model: str) -> Iterator[bytes]:
    tokens, stop_reason = _reply(body)
    fresh, cached = _usage_in(body)
    message = {"id": _id("msg_01", body), "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None, "stop_sequence": None, "usage": _usage(fresh, cached, 1)}
    yield _sse({"type": "message_start", "message": message})
    yield _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    yield _sse({"type": "ping"})
    for token in tokens:
        yield _sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}})
    yield _sse({"type": "content_block_stop", "index": 0})
    yield _sse({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": len(tokens)}})
    yield _sse({"type": "message_stop"})


def _messages(body: dict[str, Any], headers: Mapping[str, str], *, vertex: bool = False, model: str | None = None, stream: bool | None = None) -> tuple[int, dict[str, str], Any]:
    if model is not None:
        body = {**body, "model": model}
    problem = _check(body, headers, vertex)
    if problem is not None:
        return problem
    # Vertex names a snapshot `claude-haiku-4-5@20251001` and reports `claude-haiku-4-5-20251001`.
    snapshot = SNAPSHOTS.get(body["model"], body["model"].replace("@", "-"))
    if stream if stream is not None else body.get("stream") is True:
        return 200, _headers("text/event-stream"), _stream(body, snapshot)
    tokens, stop_reason = _reply(body)
    fresh, cached = _usage_in(body)
    response = {
        "id": _id("msg_01", body),
        "type": "message",
        "role": "assistant",
        "model": snapshot,
        "content": [{"type": "text", "text": "".join(tokens).strip()}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(fresh, cached, len(tokens)),
    }
    return 200, _headers(), json.dumps(response).encode()


def messages(body: dict[str, Any], headers: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST /v1/messages (JSON, or SSE with ``"stream": true``)."""
    return _messages(body, headers)


def count_tokens(body: dict[str, Any], headers: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST /v1/messages/count_tokens."""
    if not isinstance(body.get("messages"), list):
        return error(400, "messages: Field required")
    fresh, cached = _usage_in(body)
    return 200, _headers(), json.dumps({"input_tokens": fresh + cached}).encode()


def vertex_raw_predict(body: dict[str, Any], headers: Mapping[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST …/publishers/anthropic/models/{model}:rawPredict (AnthropicVertex, non-streaming)."""
    return _messages(body, headers, vertex=True, model=model, stream=False)


def vertex_stream_raw_predict(body: dict[str, Any], headers: Mapping[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST …/publishers/anthropic/models/{model}:streamRawPredict (AnthropicVertex, SSE)."""
    return _messages(body, headers, vertex=True, model=model, stream=True)


_VERTEX = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/anthropic/models/(?P<model>[^/:]+)"

ROUTES = [
    ("POST", r"/v1/messages", messages),
    ("POST", r"/v1/messages/count_tokens", count_tokens),
    ("POST", _VERTEX + r":rawPredict", vertex_raw_predict),
    ("POST", _VERTEX + r":streamRawPredict", vertex_stream_raw_predict),
]
