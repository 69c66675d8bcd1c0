"""Gemini routes: the Gemini Developer API and Vertex AI paths that ``google-genai`` calls.

``generateContent``, ``streamGenerateContent?alt=sse`` (``data:`` lines), ``embedContent``,
``batchEmbedContents`` and ``countTokens`` under ``/v1beta/models/…`` (Gemini API), plus
``generateContent``/``streamGenerateContent``/``predict`` under ``/v1beta1/…/publishers/google/
models/…`` (Vertex AI, with or without ``projects/P/locations/L``). Responses use the API's
camelCase JSON: ``responseId``, ``modelVersion``, ``usageMetadata`` with ``promptTokenCount``,
``candidatesTokenCount``, ``thoughtsTokenCount`` and ``*TokensDetails``.

Conventions shared with ``openai_routes.py``: the reply is ``"Hello from the local provider. You
said: <last user text>"``, a token is a word or punctuation mark, ``maxOutputTokens`` truncates
with ``finishReason: MAX_TOKENS``, model ``fail-<status>`` answers with that error in Google's
error shape, and thinking models (``gemini-2.5-*``, ``gemini-3*``) report 64 thought tokens
unless ``thinkingConfig.thinkingBudget`` is 0. Stdlib only; see README.md for the contract.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import re
from typing import Any, Iterator, Mapping

REPLY_PREFIX = "Hello from the local provider. You said:"
THOUGHT_TOKENS = 64
MAX_ECHO_WORDS = 400
EMBEDDING_DIMENSIONS = {"gemini-embedding-001": 3072, "text-embedding-004": 768, "text-embedding-005": 768, "text-multilingual-embedding-002": 768}
_STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}
_TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]")
_counter = itertools.count(1)

_GEMINI = r"/(?P<version>v1|v1beta|v1alpha)/(?:models|tunedModels)/(?P<model>[^/:]+)"
_VERTEX = r"/(?P<version>v1|v1beta1)/(?:projects/[^/]+/locations/[^/]+/)?publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+)"


# --- helpers ---------------------------------------------------------------------------------
def pieces(text: str) -> list[str]:
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(pieces(text))


def _headers(content_type: str = "application/json; charset=UTF-8") -> dict[str, str]:
    return {"content-type": content_type, "vary": "Origin, X-Origin, Referer", "server": "scaffolding on HTTPServer2", "server-timing": "gfet4t7; dur=412"}


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, _headers(), json.dumps(body).encode()


def error(status: int, message: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """An error in Google's shape: ``{"error": {"code", "message", "status"}}``."""
    grpc, default = _STATUS.get(status, ("UNKNOWN", "Request failed."))
    return _json(status, {"error": {"code": status, "message": message or default, "status": grpc}})


def _response_id(body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(f"{next(_counter)}:{json.dumps(body, sort_keys=True, default=str)}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:17]).decode().rstrip("=")


def _check(body: Mapping[str, Any], headers: Mapping[str, str], model: str) -> tuple[int, dict[str, str], bytes] | None:
    if not headers.get("x-goog-api-key") and not headers.get("authorization"):
        return error(401, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
    if "_raw" in body or "_json" in body:
        return error(400, "Invalid JSON payload received.")
    failing = re.fullmatch(r"fail-(\d{3})", model)
    if failing:
        return error(int(failing.group(1)))
    return None


def _texts(content: Any) -> str:
    if isinstance(content, dict):
        return " ".join(str(part.get("text", "")) for part in content.get("parts") or [] if isinstance(part, dict) and "text" in part)
    return ""


def _prompt(body: Mapping[str, Any]) -> tuple[int, str]:
    """(prompt tokens, last user text) of a generateContent body."""
    tokens = count_tokens(_texts(body.get("systemInstruction") or body.get("system_instruction")))
    last_user = ""
    for content in body.get("contents") or []:
        text = _texts(content)
        tokens += count_tokens(text)
        if isinstance(content, dict) and content.get("role", "user") == "user" and text:
            last_user = text
    return max(tokens, 1), last_user


def reply_for(prompt: str) -> str:
    words = prompt.split()
    return f"{REPLY_PREFIX} {' '.join(words[:MAX_ECHO_WORDS]) if words else 'nothing'}"


def is_thinking(model: str) -> bool:
    return model.startswith(("gemini-2.5", "gemini-3"))


def _generation(body: Mapping[str, Any], model: str) -> tuple[int, list[str], bool, int]:
    """(prompt tokens, reply pieces, truncated, thought tokens)."""
    config = body.get("generationConfig") or {}
    prompt_tokens, last_user = _prompt(body)
    parts = pieces(reply_for(last_user))
    limit = config.get("maxOutputTokens")
    truncated = isinstance(limit, int) and 0 <= limit < len(parts)
    if truncated:
        parts = parts[:limit]
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
    thoughts = THOUGHT_TOKENS if is_thinking(model) and budget != 0 else 0
    return prompt_tokens, parts, truncated, thoughts


def _usage(prompt_tokens: int, candidates: int | None, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    total = prompt_tokens
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
        total += candidates
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
            total += thoughts
    usage["totalTokenCount"] = total
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    if candidates:
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": candidates}]
    return usage


def _candidate(text: str, finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return candidate


# --- generateContent -------------------------------------------------------------------------
def generate_content(body: dict[str, Any], headers: dict[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST …/models/{model}:generateContent."""
    failed = _check(body, headers, model)
    if failed:
        return failed
    prompt_tokens, parts, truncated, thoughts = _generation(body, model)
    return _json(
        200,
        {
            "candidates": [_candidate("".join(parts).strip(), "MAX_TOKENS" if truncated else "STOP")],
            "usageMetadata": _usage(prompt_tokens, len(parts), thoughts),
            "modelVersion": model,
            "responseId": _response_id(body),
        },
    )


def stream_generate_content(body: dict[str, Any], headers: dict[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST …/models/{model}:streamGenerateContent?alt=sse: one ``data:`` event per few tokens."""
    failed = _check(body, headers, model)
    if failed:
        return failed
    prompt_tokens, parts, truncated, thoughts = _generation(body, model)
    response_id = _response_id(body)
    sse = "alt=sse" in headers.get(":path", "")

    def events() -> Iterator[bytes]:
        groups = [parts[i : i + 4] for i in range(0, len(parts), 4)] or [[]]
        chunks = []
        for index, group in enumerate(groups):
            last = index == len(groups) - 1
            chunk = {
                "candidates": [_candidate("".join(group).lstrip() if index == 0 else "".join(group), ("MAX_TOKENS" if truncated else "STOP") if last else None)],
                "usageMetadata": _usage(prompt_tokens, len(parts) if last else None, thoughts),
                "modelVersion": model,
                "responseId": response_id,
            }
            if sse:
                yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()
            else:
                chunks.append(chunk)
        if not sse:  # without alt=sse the API streams one JSON array
            yield json.dumps(chunks).encode()

    return 200, _headers("text/event-stream" if sse else "application/json; charset=UTF-8"), events()


# --- embeddings ------------------------------------------------------------------------------
def _vector(text: str, dimensions: int) -> list[float]:
    seeded = random.Random(hashlib.sha256(text.encode()).digest())
    return [round(seeded.uniform(-0.1, 0.1), 6) for _ in range(dimensions)]


def _dimensions(model: str, requested: Any) -> int:
    return requested if isinstance(requested, int) and requested > 0 else EMBEDDING_DIMENSIONS.get(model, 768)


def embed_content(body: dict[str, Any], headers: dict[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST /v1beta/models/{model}:embedContent (one content)."""
    failed = _check(body, headers, model)
    if failed:
        return failed
    text = _texts(body.get("content"))
    tokens = count_tokens(text)
    return _json(
        200,
        {
            "embedding": {"values": _vector(text, _dimensions(model, body.get("outputDimensionality")))},
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
        },
    )


def batch_embed_contents(body: dict[str, Any], headers: dict[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST /v1beta/models/{model}:batchEmbedContents (what ``embed_content`` sends to the Gemini API)."""
    failed = _check(body, headers, model)
    if failed:
        return failed
    embeddings, tokens = [], 0
    for request in body.get("requests") or []:
        text = _texts(request.get("content"))
        tokens += count_tokens(text)
        embeddings.append({"values": _vector(text, _dimensions(model, request.get("outputDimensionality")))})
    return _json(200, {"embeddings": embeddings, "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}})


def predict(body: dict[str, Any], headers: dict[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST /v1beta1/…/models/{model}:predict (Vertex AI text embeddings)."""
    failed = _check(body, headers, model)
    if failed:
        return failed
    dimensions = _dimensions(model, (body.get("parameters") or {}).get("outputDimensionality"))
    predictions, characters = [], 0
    for instance in body.get("instances") or []:
        text = str(instance.get("content", ""))
        characters += len(text.replace(" ", ""))
        predictions.append({"embeddings": {"values": _vector(text, dimensions), "statistics": {"token_count": count_tokens(text), "truncated": False}}})
    return _json(200, {"predictions": predictions, "metadata": {"billableCharacterCount": characters}})


def count_tokens_route(body: dict[str, Any], headers: dict[str, str], model: str, **_: str) -> tuple[int, dict[str, str], Any]:
    """POST …/models/{model}:countTokens."""
    failed = _check(body, headers, model)
    if failed:
        return failed
    tokens, _last = _prompt(body)
    return _json(200, {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})


ROUTES = [
    ("POST", _GEMINI + r":generateContent", generate_content),
    ("POST", _GEMINI + r":streamGenerateContent", stream_generate_content),
    ("POST", _GEMINI + r":embedContent", embed_content),
    ("POST", _GEMINI + r":batchEmbedContents", batch_embed_contents),
    ("POST", _GEMINI + r":countTokens", count_tokens_route),
    ("POST", _VERTEX + r":generateContent", generate_content),
    ("POST", _VERTEX + r":streamGenerateContent", stream_generate_content),
    ("POST", _VERTEX + r":embedContent", embed_content),
    ("POST", _VERTEX + r":predict", predict),
    ("POST", _VERTEX + r":countTokens", count_tokens_route),
]
