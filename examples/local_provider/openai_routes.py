"""OpenAI-compatible routes: chat completions, responses, completions and embeddings.

Responses have the shapes api.openai.com returns (ids, ``created``, dated model snapshots,
``usage`` with ``*_tokens_details``), and streams are Server-Sent Events ending in
``data: [DONE]`` (chat/completions) or typed ``event:`` lines (responses). Everything is
deterministic: the reply repeats the prompt after a fixed sentence, tokens are counted as words
and punctuation marks, and ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``
truncate the reply with ``finish_reason="length"`` as the real API does.

Special models: ``fail-<status>`` (e.g. ``fail-429``) answers with that HTTP error; models whose
name starts with ``o1``/``o3``/``o4``/``gpt-5`` report ``REASONING_TOKENS`` reasoning tokens.
Stdlib only; see README.md for the route-module contract.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import re
import struct
import time
from typing import Any, Iterator, Mapping

REPLY_PREFIX = "Hello from the local provider. You said:"
REASONING_TOKENS = 64
MAX_ECHO_WORDS = 400
SYSTEM_FINGERPRINT = "fp_7c3d2a1b9e"

SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
}
EMBEDDING_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
_ERROR_CODES = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 20ms."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]")
_counter = itertools.count(1)


# --- helpers ---------------------------------------------------------------------------------
def pieces(text: str) -> list[str]:
    """The 'tokens' of this fake tokenizer: words and punctuation marks, with leading spaces."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(pieces(text))


def snapshot(model: str) -> str:
    """The dated snapshot the API reports for an alias (other names are echoed)."""
    return SNAPSHOTS.get(model, model)


def is_reasoning(model: str) -> bool:
    return model.startswith(("o1", "o3", "o4", "gpt-5"))


def _id(prefix: str, body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(f"{next(_counter)}:{json.dumps(body, sort_keys=True, default=str)}".encode()).hexdigest()
    return prefix + digest[:24]


def _headers(content_type: str = "application/json") -> dict[str, str]:
    return {
        "content-type": content_type,
        "x-request-id": "req_" + hashlib.sha256(str(next(_counter)).encode()).hexdigest()[:32],
        "openai-version": "2020-10-01",
        "openai-processing-ms": "12",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-limit-tokens": "10000000",
        "x-ratelimit-remaining-tokens": "9999000",
    }


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, _headers(), json.dumps(body).encode()


def error(status: int, message: str | None = None, param: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """An error response shaped like OpenAI's."""
    kind, code, default = _ERROR_CODES.get(status, ("invalid_request_error", None, "Request failed."))
    return _json(status, {"error": {"message": message or default, "type": kind, "param": param, "code": code}})


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def _check(body: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes] | None:
    """Auth, the model parameter and the ``fail-<status>`` models."""
    if not headers.get("authorization", "").startswith("Bearer ") and "api-key" not in headers:
        return error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.")
    if "_raw" in body or "_json" in body:
        return error(400, "We could not parse the JSON body of your request.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error(400, "you must provide a model parameter", "model")
    failing = re.fullmatch(r"fail-(\d{3})", model)
    if failing:
        return error(int(failing.group(1)))
    return None


def _text_of(content: Any) -> str:
    """Text of a message content: a string or a list of parts (text parts only)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _image_parts(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for part in content if isinstance(part, dict) and part.get("type") in ("image_url", "input_image"))


def reply_for(prompt: str) -> str:
    """The deterministic reply to a prompt."""
    words = prompt.split()
    echoed = " ".join(words[:MAX_ECHO_WORDS]) if words else "nothing"
    return f"{REPLY_PREFIX} {echoed}"


def _limit(text: str, limit: Any) -> tuple[list[str], bool]:
    """The reply's pieces, cut at ``limit`` tokens; True when cut."""
    parts = pieces(text)
    if isinstance(limit, int) and limit >= 0 and len(parts) > limit:
        return parts[:limit], True
    return parts, False


def _stream_options(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# --- chat completions ------------------------------------------------------------------------
def _chat_prompt(messages: Any) -> tuple[int, str]:
    """(prompt_tokens, last user text) with OpenAI's per-message overhead of 3 (+1 for the role)."""
    tokens = 3
    last_user = ""
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        text = _text_of(message.get("content"))
        tokens += 4 + count_tokens(text) + 85 * _image_parts(message.get("content"))
        if message.get("name"):
            tokens += 1
        if message.get("role") == "user":
            last_user = text
    return tokens, last_user


def _chat_usage(prompt_tokens: int, visible: int, model: str) -> dict[str, Any]:
    reasoning = REASONING_TOKENS if is_reasoning(model) else 0
    completion = visible + reasoning
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completions(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST /v1/chat/completions, streaming or not."""
    failed = _check(body, headers)
    if failed:
        return failed
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return error(400, "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    requested = body["model"]
    model = snapshot(requested)
    prompt_tokens, last_user = _chat_prompt(body["messages"])
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    parts, cut = _limit(reply_for(last_user), limit)
    finish = "length" if cut else "stop"
    usage = _chat_usage(prompt_tokens, len(parts), requested)
    completion_id = _id("chatcmpl-", body)
    created = int(time.time())
    if body.get("stream"):
        return 200, _headers("text/event-stream; charset=utf-8"), _chat_stream(completion_id, created, model, parts, finish, usage, _stream_options(body))
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": "".join(parts), "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": finish,
        }
        for index in range(max(1, int(body.get("n") or 1)))
    ]
    if len(choices) > 1:  # every choice is billed
        usage = _chat_usage(prompt_tokens, len(parts) * len(choices), requested)
    return _json(
        200,
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        },
    )


def _chat_stream(completion_id: str, created: int, model: str, parts: list[str], finish: str, usage: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None
        return _sse(data)

    yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
    for part in parts:
        yield chunk({"content": part}, None)
    yield chunk({}, finish)
    if include_usage:
        yield _sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [],
                "usage": usage,
            }
        )
    yield _sse("[DONE]")


# --- legacy completions ----------------------------------------------------------------------
def completions(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST /v1/completions (legacy text completions; ``max_tokens`` defaults to 16 as upstream)."""
    failed = _check(body, headers)
    if failed:
        return failed
    prompt = body.get("prompt", "")
    prompts = prompt if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else [prompt if isinstance(prompt, str) else ""]
    model = body["model"]
    limit = body.get("max_tokens", 16)
    results = [_limit(reply_for(text), limit) for text in prompts]
    prompt_tokens = sum(count_tokens(text) for text in prompts)
    completion_tokens = sum(len(parts) for parts, _ in results)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    completion_id = _id("cmpl-", body)
    created = int(time.time())
    if body.get("stream"):
        return 200, _headers("text/event-stream; charset=utf-8"), _completion_stream(completion_id, created, model, results, usage, _stream_options(body))
    choices = [
        {"text": "".join(parts), "index": index, "logprobs": None, "finish_reason": "length" if cut else "stop"}
        for index, (parts, cut) in enumerate(results)
    ]
    return _json(200, {"id": completion_id, "object": "text_completion", "created": created, "model": model, "choices": choices, "usage": usage})


def _completion_stream(completion_id: str, created: int, model: str, results: list[tuple[list[str], bool]], usage: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    def chunk(index: int, text: str, finish_reason: str | None) -> bytes:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None
        return _sse(data)

    for index, (parts, cut) in enumerate(results):
        for part in parts:
            yield chunk(index, part, None)
        yield chunk(index, "", "length" if cut else "stop")
    if include_usage:
        yield _sse({"id": completion_id, "object": "text_completion", "created": created, "model": model, "choices": [], "usage": usage})
    yield _sse("[DONE]")


# --- embeddings ------------------------------------------------------------------------------
def _vector(text: str, dimensions: int) -> list[float]:
    generator = random.Random(hashlib.sha256(text.encode()).digest())
    values = [generator.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(value * value for value in values) ** 0.5 or 1.0
    return [round(value / norm, 8) for value in values]


def embeddings(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST /v1/embeddings: unit vectors seeded by the input text; float or base64 encoding."""
    failed = _check(body, headers)
    if failed:
        return failed
    raw = body.get("input")
    if isinstance(raw, str):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, int) for item in raw):
        inputs = [raw]  # one pre-tokenised input
    elif isinstance(raw, list) and raw:
        inputs = raw
    else:
        return error(400, "'input' is a required property", "input")
    model = body["model"]
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS.get(model, 1536)
    base64_format = body.get("encoding_format") == "base64"
    data = []
    prompt_tokens = 0
    for index, item in enumerate(inputs):
        if isinstance(item, list):
            prompt_tokens += len(item)
            text = " ".join(str(token) for token in item)
        else:
            text = str(item)
            prompt_tokens += count_tokens(text)
        vector = _vector(text, int(dimensions))
        embedding: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if base64_format else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return _json(200, {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}})


# --- responses -------------------------------------------------------------------------------
def _responses_prompt(body: Mapping[str, Any]) -> tuple[int, str]:
    tokens = count_tokens(body["instructions"]) + 4 if isinstance(body.get("instructions"), str) else 0
    raw = body.get("input")
    if isinstance(raw, str):
        return tokens + 4 + count_tokens(raw), raw
    last_user = ""
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        text = _text_of(item.get("content")) or str(item.get("output", ""))
        tokens += 4 + count_tokens(text) + 85 * _image_parts(item.get("content"))
        if item.get("role") == "user":
            last_user = text
    return tokens, last_user


def _response_object(body: Mapping[str, Any], response_id: str, created: int, model: str, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": None,
        "reasoning": {"effort": "medium" if is_reasoning(body["model"]) else None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def responses(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST /v1/responses, streaming (typed events) or not."""
    failed = _check(body, headers)
    if failed:
        return failed
    if body.get("input") in (None, "", []):
        return error(400, "Missing required parameter: 'input'.", "input")
    requested = body["model"]
    model = snapshot(requested)
    input_tokens, last_user = _responses_prompt(body)
    parts, cut = _limit(reply_for(last_user), body.get("max_output_tokens"))
    reasoning = REASONING_TOKENS if is_reasoning(requested) else 0
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": len(parts) + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + len(parts) + reasoning,
    }
    response_id = _id("resp_", body)
    status = "incomplete" if cut else "completed"
    reasoning_item = {"id": _id("rs_", body), "type": "reasoning", "summary": []} if reasoning else None
    text = "".join(parts)
    message = {
        "id": _id("msg_", body),
        "type": "message",
        "status": status,
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        "role": "assistant",
    }
    output = ([reasoning_item] if reasoning_item else []) + [message]
    created = int(time.time())
    final = _response_object(body, response_id, created, model, status, output, usage)
    if not body.get("stream"):
        return _json(200, final)
    started = _response_object(body, response_id, created, model, "in_progress", [], None)
    return 200, _headers("text/event-stream; charset=utf-8"), _responses_stream(started, final, reasoning_item, message, parts)


def _responses_stream(started: dict[str, Any], final: dict[str, Any], reasoning_item: Any, message: dict[str, Any], parts: list[str]) -> Iterator[bytes]:
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, event=kind)

    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    index = 0
    if reasoning_item is not None:
        yield event("response.output_item.added", output_index=0, item=reasoning_item)
        yield event("response.output_item.done", output_index=0, item=reasoning_item)
        index = 1
    item_id = message["id"]
    yield event("response.output_item.added", output_index=index, item={**message, "status": "in_progress", "content": []})
    empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    yield event("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=empty_part)
    for part in parts:
        yield event("response.output_text.delta", item_id=item_id, output_index=index, content_index=0, delta=part, logprobs=[])
    text = "".join(parts)
    yield event("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=text, logprobs=[])
    yield event("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part={**empty_part, "text": text})
    yield event("response.output_item.done", output_index=index, item=message)
    kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield event(kind, response=final)


def models(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """GET /v1/models: the aliases this endpoint knows."""
    data = [{"id": name, "object": "model", "created": 1715367049, "owned_by": "system"} for name in sorted(SNAPSHOTS)]
    return _json(200, {"object": "list", "data": data})


ROUTES = [
    ("POST", r"(?:/v1)?/chat/completions", chat_completions),
    ("POST", r"(?:/v1)?/completions", completions),
    ("POST", r"(?:/v1)?/embeddings", embeddings),
    ("POST", r"(?:/v1)?/responses", responses),
    ("GET", r"(?:/v1)?/models", models),
]
