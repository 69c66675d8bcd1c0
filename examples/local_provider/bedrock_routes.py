"""Amazon Bedrock Runtime routes: Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream.

Point a boto3/botocore client at the server with ``endpoint_url`` (any test credentials sign
the requests; the signature is not checked). Responses follow Bedrock's shapes: Converse's
``usage``/``stopReason``/``metrics``, InvokeModel bodies in each model family's own format
(Anthropic Claude, Amazon Nova, Titan text and embeddings, Meta Llama, Mistral, Cohere) with the
``x-amzn-bedrock-*-token-count`` headers, and streams in AWS event-stream binary framing
(prelude, headers, payload, CRC32s) whose last InvokeModel chunk carries
``amazon-bedrock-invocationMetrics``. Deterministic, as the other route modules: the reply is
"Hello from the local provider. You said: <last user text>", a token is a word or punctuation
mark, output limits truncate with the family's own stop reason, and model id ``fail-<status>``
(e.g. ``fail-429``) answers with Bedrock's error for that status. Stdlib only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import random
import re
import struct
from typing import Any, Iterator
from urllib.parse import unquote

REPLY_PREFIX = "Hello from the local provider. You said:"
MAX_ECHO_WORDS = 400
_TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]")
_TAGS = re.compile(r"<\|start_header_id\|>\w+<\|end_header_id\|>|<\|[^|]*\|>|</?s>|\[/?INST\]|<[^>]{1,40}>")
_counter = itertools.count(1)
_ERRORS = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "An internal server error occurred. Retry your request."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}


# --- helpers -----------------------------------------------------------------------------------
def pieces(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _request_id() -> str:
    digest = hashlib.sha256(str(next(_counter)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _headers(content_type: str = "application/json", **extra: str) -> dict[str, str]:
    return {"content-type": content_type, "x-amzn-requestid": _request_id(), **extra}


def error(status: int, message: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """A Bedrock error: ``{"message": …}`` with the error code in ``x-amzn-ErrorType``."""
    code, default = _ERRORS.get(status, ("ValidationException", "Request failed."))
    headers = _headers(**{"x-amzn-errortype": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"})
    return status, headers, json.dumps({"message": message or default}).encode()


def _check(body: dict[str, Any], headers: dict[str, str], model: str) -> tuple[int, dict[str, str], bytes] | None:
    if not headers.get("authorization", "").startswith(("AWS4-HMAC-SHA256 ", "Bearer ")):
        return error(403, "Missing Authentication Token")
    failing = re.fullmatch(r"fail-(\d{3})", model)
    if failing:
        return error(int(failing.group(1)))
    if "_raw" in body or "_json" in body:
        return error(400)
    return None


def _texts(value: Any) -> list[str]:
    """Every string under text-bearing keys of a request (Converse or any family's body)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, dict):
        keys = ("text", "content", "prompt", "inputText", "message", "system", "messages", "texts")
        return [text for key in keys if key in value for text in _texts(value[key])]
    return []


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return " ".join(_texts(message.get("content")))
    for key in ("message", "inputText", "prompt"):
        if isinstance(body.get(key), str):
            return _TAGS.sub(" ", body[key]).strip() if key == "prompt" else body[key]
    return ""


def _reply(body: dict[str, Any], limit: Any) -> tuple[int, list[str], bool]:
    """(input tokens, reply pieces, truncated)."""
    input_tokens = sum(len(pieces(text)) for text in _texts(body)) or 1
    words = _last_user_text(body).split()
    parts = pieces(f"{REPLY_PREFIX} {' '.join(words[:MAX_ECHO_WORDS]) if words else 'nothing'}")
    if isinstance(limit, int) and 0 <= limit < len(parts):
        return input_tokens, parts[:limit], True
    return input_tokens, parts, False


def _vendor(model: str) -> str:
    for part in model.split("/")[-1].split(".")[:3]:
        if part in ("anthropic", "amazon", "meta", "mistral", "cohere"):
            return part
    return ""


def _vector(text: str, dimensions: int) -> list[float]:
    generator = random.Random(hashlib.sha256(text.encode()).digest())
    values = [generator.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(value * value for value in values) ** 0.5 or 1.0
    return [round(value / norm, 8) for value in values]


# --- AWS event-stream framing -------------------------------------------------------------------
def _frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value
    prelude = struct.pack("!II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def _event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return _frame(headers, json.dumps(payload, separators=(",", ":")).encode())


def _chunk(body: dict[str, Any]) -> bytes:
    return _event("chunk", {"bytes": base64.b64encode(json.dumps(body).encode()).decode(), "p": "abcdefghijklmnopqrstuvwxyzABCDEFGH"[: 1 + next(_counter) % 30]})


def _stream_headers() -> dict[str, str]:
    return _headers("application/vnd.amazon.eventstream", **{"x-amzn-bedrock-content-type": "application/json"})


# --- Converse ---------------------------------------------------------------------------------
def _converse_result(body: dict[str, Any]) -> tuple[int, list[str], str]:
    config = body.get("inferenceConfig") if isinstance(body.get("inferenceConfig"), dict) else {}
    input_tokens, parts, cut = _reply(body, config.get("maxTokens"))
    return input_tokens, parts, "max_tokens" if cut else "end_turn"


def converse(body: dict[str, Any], headers: dict[str, str], model_id: str) -> Any:
    """POST /model/{modelId}/converse"""
    failed = _check(body, headers, unquote(model_id))
    if failed:
        return failed
    input_tokens, parts, stop = _converse_result(body)
    result = {
        "output": {"message": {"role": "assistant", "content": [{"text": "".join(parts).strip()}]}},
        "stopReason": stop,
        "usage": {"inputTokens": input_tokens, "outputTokens": len(parts), "totalTokens": input_tokens + len(parts), "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0},
        "metrics": {"latencyMs": 112},
    }
    return 200, _headers(), json.dumps(result).encode()


def converse_stream(body: dict[str, Any], headers: dict[str, str], model_id: str) -> Any:
    """POST /model/{modelId}/converse-stream"""
    failed = _check(body, headers, unquote(model_id))
    if failed:
        return failed
    input_tokens, parts, stop = _converse_result(body)

    def events() -> Iterator[bytes]:
        yield _event("messageStart", {"role": "assistant"})
        for index, part in enumerate(parts):
            yield _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": part.lstrip() if index == 0 else part}})
        yield _event("contentBlockStop", {"contentBlockIndex": 0})
        yield _event("messageStop", {"stopReason": stop})
        usage = {"inputTokens": input_tokens, "outputTokens": len(parts), "totalTokens": input_tokens + len(parts), "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
        yield _event("metadata", {"usage": usage, "metrics": {"latencyMs": 140}})

    return 200, _stream_headers(), events()


# --- InvokeModel --------------------------------------------------------------------------------
_LIMIT_KEYS = ("max_tokens", "max_gen_len", "max_new_tokens", "maxTokenCount")
_STOPS = {"anthropic": ("end_turn", "max_tokens"), "amazon": ("end_turn", "max_tokens"), "titan": ("FINISH", "LENGTH"), "meta": ("stop", "length"), "mistral": ("stop", "length"), "cohere": ("COMPLETE", "MAX_TOKENS")}


def _limit(body: dict[str, Any]) -> Any:
    for scope in (body, body.get("inferenceConfig"), body.get("textGenerationConfig")):
        if isinstance(scope, dict):
            for key in _LIMIT_KEYS:
                if key in scope:
                    return scope[key]
    return None


def _family(model: str) -> str:
    vendor = _vendor(model)
    return "titan" if vendor == "amazon" and "titan" in model else vendor


def _invoke_body(model: str, family: str, body: dict[str, Any], input_tokens: int, parts: list[str], stop: str) -> dict[str, Any]:
    text = "".join(parts).strip()
    out = len(parts)
    if family == "anthropic":
        name = re.sub(r"-v\d+(:\d+)?$", "", model.split("anthropic.", 1)[-1])
        usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": out}
        return {"id": "msg_bdrk_" + hashlib.sha256(text.encode()).hexdigest()[:24], "type": "message", "role": "assistant", "model": name, "content": [{"type": "text", "text": text}], "stop_reason": stop, "stop_sequence": None, "usage": usage}
    if family == "amazon":
        usage = {"inputTokens": input_tokens, "outputTokens": out, "totalTokens": input_tokens + out, "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 0}
        return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": stop, "usage": usage}
    if family == "titan":
        return {"inputTextTokenCount": input_tokens, "results": [{"tokenCount": out, "outputText": text, "completionReason": stop}]}
    if family == "meta":
        return {"generation": text, "prompt_token_count": input_tokens, "generation_token_count": out, "stop_reason": stop}
    if family == "mistral":
        return {"outputs": [{"text": text, "stop_reason": stop}]}
    if "message" in body:  # Cohere Command R chat
        return {"response_id": _request_id(), "text": text, "generation_id": _request_id(), "chat_history": [{"role": "USER", "message": body["message"]}, {"role": "CHATBOT", "message": text}], "finish_reason": stop}
    return {"id": _request_id(), "generations": [{"id": _request_id(), "text": text, "finish_reason": stop}], "prompt": body.get("prompt", "")}


def _embedding(model: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    texts = [text for text in _texts(body.get("texts") or body.get("inputText") or "") if text]
    tokens = sum(len(pieces(text)) for text in texts)
    if _vendor(model) == "cohere":
        return {"embeddings": [_vector(text, 1024) for text in texts], "id": _request_id(), "response_type": "embeddings_floats", "texts": texts}, tokens
    vector = _vector(" ".join(texts), int(body.get("dimensions") or (1024 if "v2" in model else 1536)))
    return {"embedding": vector, "embeddingsByType": {"float": vector}, "inputTextTokenCount": tokens}, tokens


def invoke(body: dict[str, Any], headers: dict[str, str], model_id: str) -> Any:
    """POST /model/{modelId}/invoke"""
    model = unquote(model_id)
    failed = _check(body, headers, model)
    if failed:
        return failed
    if "embed" in model:
        result, tokens = _embedding(model, body)
        return 200, _headers(**{"x-amzn-bedrock-input-token-count": str(tokens), "x-amzn-bedrock-invocation-latency": "31"}), json.dumps(result).encode()
    family = _family(model)
    if family not in _STOPS:
        return error(400, "The provided model identifier is invalid.")
    input_tokens, parts, cut = _reply(body, _limit(body))
    result = _invoke_body(model, family, body, input_tokens, parts, _STOPS[family][cut])
    counts = {"x-amzn-bedrock-input-token-count": str(input_tokens), "x-amzn-bedrock-output-token-count": str(len(parts)), "x-amzn-bedrock-invocation-latency": "245"}
    return 200, _headers(**counts), json.dumps(result).encode()


def _stream_bodies(model: str, family: str, input_tokens: int, parts: list[str], stop: str) -> Iterator[dict[str, Any]]:
    """The family's own stream chunks (before the invocation metrics are added to the last one)."""
    if family == "anthropic":
        final = _invoke_body(model, family, {}, input_tokens, [], stop)
        yield {"type": "message_start", "message": {**final, "content": [], "stop_reason": None, "usage": {**final["usage"], "output_tokens": 1}}}
        yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        for part in parts:
            yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}}
        yield {"type": "content_block_stop", "index": 0}
        yield {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": len(parts)}}
        yield {"type": "message_stop"}
    elif family == "amazon":
        yield {"messageStart": {"role": "assistant"}}
        for part in parts:
            yield {"contentBlockDelta": {"delta": {"text": part}, "contentBlockIndex": 0}}
        yield {"contentBlockStop": {"contentBlockIndex": 0}}
        yield {"messageStop": {"stopReason": stop}}
        yield {"metadata": {"usage": {"inputTokens": input_tokens, "outputTokens": len(parts)}}}
    else:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            reason = stop if last else None
            if family == "titan":
                yield {"outputText": part, "index": 0, "totalOutputTextTokenCount": index + 1, "completionReason": reason, "inputTextTokenCount": input_tokens if index == 0 else None}
            elif family == "meta":
                yield {"generation": part, "prompt_token_count": input_tokens if index == 0 else None, "generation_token_count": index + 1, "stop_reason": reason}
            elif family == "mistral":
                yield {"outputs": [{"text": part, "stop_reason": reason}]}
            else:
                yield {"is_finished": last, "event_type": "stream-end" if last else "text-generation", "text": part, **({"finish_reason": reason} if last else {})}


def invoke_stream(body: dict[str, Any], headers: dict[str, str], model_id: str) -> Any:
    """POST /model/{modelId}/invoke-with-response-stream"""
    model = unquote(model_id)
    failed = _check(body, headers, model)
    if failed:
        return failed
    family = _family(model)
    if family not in _STOPS:
        return error(400, "The provided model identifier is invalid.")
    input_tokens, parts, cut = _reply(body, _limit(body))
    bodies = list(_stream_bodies(model, family, input_tokens, parts, _STOPS[family][cut]))
    bodies[-1] = {**bodies[-1], "amazon-bedrock-invocationMetrics": {"inputTokenCount": input_tokens, "outputTokenCount": len(parts), "invocationLatency": 388, "firstByteLatency": 127}}
    return 200, _stream_headers(), (_chunk(item) for item in bodies)


_MODEL = r"/model/(?P<model_id>[^/]+)"
ROUTES = [
    ("POST", _MODEL + r"/converse", converse),
    ("POST", _MODEL + r"/converse-stream", converse_stream),
    ("POST", _MODEL + r"/invoke", invoke),
    ("POST", _MODEL + r"/invoke-with-response-stream", invoke_stream),
]
