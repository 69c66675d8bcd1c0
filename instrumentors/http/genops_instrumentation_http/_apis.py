"""The model APIs the wire layer recognises: request shapes, response facts, error bodies.

OpenAI-compatible chat completions, completions, embeddings and responses (OpenAI, Mistral, Groq,
Together, DeepSeek, vLLM, LM Studio, Ollama's ``/v1``, most gateways); Anthropic messages; Gemini
``generateContent`` / ``streamGenerateContent``; Ollama's native ``/api/chat``, ``/api/generate``,
``/api/embed``; Cohere v2 ``/v2/chat`` and ``/v2/embed``.
"""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.api import Decision, Usage, semconv

from ._endpoints import OPAQUE, Api, Described, Endpoint, Reader, body_texts, integer, messages_of, number, str_model

CHAT, COMPLETION, EMBED, GENERATE = semconv.OPERATION_CHAT, semconv.OPERATION_TEXT_COMPLETION, semconv.OPERATION_EMBEDDINGS, semconv.OPERATION_GENERATE_CONTENT


# --- error bodies, as each provider words them -----------------------------------------------------
def _openai_error(status: int, message: str, decision: Decision) -> Any:
    code = "insufficient_quota" if status == 429 else (decision.reason_code or "policy_violation").lower()
    kind = "insufficient_quota" if status == 429 else "genops_policy_violation"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _anthropic_error(status: int, message: str, decision: Decision) -> Any:
    return {"type": "error", "error": {"type": "rate_limit_error" if status == 429 else "permission_error", "message": message}}


def _gemini_error(status: int, message: str, decision: Decision) -> Any:
    return {"error": {"code": status, "message": message, "status": "RESOURCE_EXHAUSTED" if status == 429 else "PERMISSION_DENIED"}}


def _ollama_error(status: int, message: str, decision: Decision) -> Any:
    return {"error": message}


def _cohere_error(status: int, message: str, decision: Decision) -> Any:
    return {"message": message}


OPENAI = Api("OpenAI-compatible", "openai", _openai_error)
ANTHROPIC = Api("Anthropic", "anthropic", _anthropic_error)
GEMINI = Api("Gemini", "gcp.gemini", _gemini_error)
OLLAMA = Api("Ollama", "ollama", _ollama_error)
# Cohere's clients retry every 429 (twice, sleeping up to a minute each): a budget block is a 402,
# which they raise at once as their own ``ApiError``.
COHERE = Api("Cohere v2", "cohere", _cohere_error, budget_status=402)


def _parameters(body: dict, **names: str) -> dict[str, Any]:
    """semconv attribute -> value, for the body fields named (numbers only)."""
    return {attribute: value for attribute, key in names.items() if (value := number(body.get(key))) is not None}


def _first_int(body: Any, *keys: str) -> int | None:
    for key in keys:
        value = integer(body.get(key)) if isinstance(body, dict) else None
        if value is not None:
            return value
    return None


def _stream_flag(body: dict) -> bool:
    return body.get("stream") is True


# --- OpenAI-compatible --------------------------------------------------------------------------------
# Besides OPAQUE: tool-call and response ids, log-probs, generated images, cache and safety ids, the
# settings of built-in and MCP tools that carry credentials. ``metadata`` holds the application's keys.
_OPENAI_OPAQUE = OPAQUE | {
    "call_id", "tool_call_id", "logprobs", "top_logprobs", "logit_bias", "result", "prompt_cache_key", "safety_identifier",
    "previous_response_id", "conversation", "service_tier", "include", "authorization", "headers", "server_url", "modalities",
}
_OPENAI_ARGUMENTS = frozenset({"metadata"})
_OPENAI_PARAMETERS = {"gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "top_p", "gen_ai.request.seed": "seed"}


def _openai_describe(prompt_key: str, max_keys: tuple[str, ...]) -> Any:
    def describe(body: dict, path: str) -> Described:
        value = body.get(prompt_key)
        messages = (lambda: messages_of(value)) if prompt_key == "messages" else None
        return Described(
            str_model(body.get("model")),
            _parameters(body, **_OPENAI_PARAMETERS),
            _first_int(body, *max_keys),
            body_texts(body, _OPENAI_OPAQUE, _OPENAI_ARGUMENTS),
            messages,
        )

    return describe


def openai_usage(usage: Any) -> Usage | None:
    """Chat/completions (``prompt_tokens``) and Responses/Embeddings (``input_tokens``) usage."""
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    output_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=_first_int(usage, "prompt_tokens", "input_tokens"),
        output_tokens=_first_int(usage, "completion_tokens", "output_tokens"),
        cache_read_tokens=_first_int(prompt_details, "cached_tokens"),
        reasoning_tokens=_first_int(output_details, "reasoning_tokens"),
    )


def _chat_body(reader: Reader, data: Any) -> None:
    if not isinstance(data, dict):
        return
    reader.first(data.get("model"), data.get("id"))
    for choice in data.get("choices") or ():
        if isinstance(choice, dict):
            reader.reason(choice.get("finish_reason"))
    if data.get("usage") is not None:
        reader.usage = openai_usage(data.get("usage"))


def _chat_event(reader: Reader, name: str | None, data: Any) -> bool:
    _chat_body(reader, data)
    return reader.hide and isinstance(data, dict) and data.get("usage") is not None and not data.get("choices")


def _responses_body(reader: Reader, data: Any) -> None:
    if not isinstance(data, dict):
        return
    reader.first(data.get("model"), data.get("id"))
    status = data.get("status")
    if status == "incomplete":
        status = (data.get("incomplete_details") or {}).get("reason") or status
    if status not in (None, "in_progress", "queued"):
        reader.reasons = [status]
    if data.get("usage") is not None:
        reader.usage = openai_usage(data.get("usage"))


def _responses_event(reader: Reader, name: str | None, data: Any) -> bool:
    if isinstance(data, dict) and isinstance(data.get("response"), dict):
        _responses_body(reader, data["response"])
    return False


# --- Anthropic --------------------------------------------------------------------------------------
# Besides OPAQUE: tool-use ids, the end user's id (``metadata``), MCP servers' credentials, vendor
# version tags (bodies sent to Bedrock or Vertex). A tool call's ``input`` holds the application's keys.
_ANTHROPIC_OPAQUE = OPAQUE | {"tool_use_id", "metadata", "mcp_servers", "container", "service_tier", "anthropic_version", "anthropic_beta"}
_ANTHROPIC_ARGUMENTS = frozenset({"input"})


def _anthropic_describe(body: dict, path: str) -> Described:
    messages = body.get("messages")
    return Described(
        str_model(body.get("model")),
        _parameters(body, **{"gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "top_p", "gen_ai.request.top_k": "top_k"}),
        _first_int(body, "max_tokens"),
        body_texts(body, _ANTHROPIC_OPAQUE, _ANTHROPIC_ARGUMENTS),
        lambda: messages_of(messages),
    )


def anthropic_usage(usage: Any, previous: Usage | None = None) -> Usage | None:
    """Input tokens include cache reads and writes; a later event's counts replace earlier ones."""
    if not isinstance(usage, dict):
        return previous
    before = previous or Usage()
    read = _first_int(usage, "cache_read_input_tokens")
    write = _first_int(usage, "cache_creation_input_tokens")
    base = _first_int(usage, "input_tokens")
    read = before.cache_read_tokens if read is None else read
    write = before.cache_write_tokens if write is None else write
    if base is None:
        total = before.input_tokens
    else:
        total = base + (read or 0) + (write or 0)
    output = _first_int(usage, "output_tokens")
    return Usage(total, before.output_tokens if output is None else output, read, write)


def _anthropic_body(reader: Reader, data: Any) -> None:
    if isinstance(data, dict):
        reader.first(data.get("model"), data.get("id"))
        reader.reason(data.get("stop_reason"))
        reader.usage = anthropic_usage(data.get("usage"), reader.usage)


def _anthropic_event(reader: Reader, name: str | None, data: Any) -> bool:
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "message_start":
        _anthropic_body(reader, data.get("message"))
    elif kind == "message_delta":
        reader.reason((data.get("delta") or {}).get("stop_reason"))
        reader.usage = anthropic_usage(data.get("usage"), reader.usage)
    return False


# --- Gemini -----------------------------------------------------------------------------------------
# Besides OPAQUE (snake_case and camelCase alike): inline media, file URIs (signed URLs carry tokens),
# thought signatures, cached-content names, safety settings, retrieval tools' settings and
# credentials. A function call's ``args``, a function's ``response`` and ``labels`` hold the
# application's keys.
_GEMINI_OPAQUE = OPAQUE | {
    "inline_data", "inlineData", "file_uri", "fileUri", "uri", "thought_signature", "thoughtSignature", "video_metadata", "videoMetadata",
    "cachedContent", "cached_content", "safetySettings", "safety_settings", "retrieval", "apiAuth", "api_auth", "authConfig", "auth_config",
}
_GEMINI_ARGUMENTS = frozenset({"args", "response", "labels"})


def _gemini_model(path: str) -> str | None:
    tail = path.rpartition("/models/")[2] if "/models/" in path else path.rpartition("/")[2]
    return str_model(tail.partition(":")[0])


def _gemini_describe(body: dict, path: str) -> Described:
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    contents = body.get("contents")
    return Described(
        _gemini_model(path),
        _parameters(config, **{"gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "topP", "gen_ai.request.top_k": "topK"}),
        _first_int(config, "maxOutputTokens"),
        body_texts(body, _GEMINI_OPAQUE, _GEMINI_ARGUMENTS),
        lambda: messages_of(contents),
    )


def gemini_usage(meta: Any) -> Usage | None:
    if not isinstance(meta, dict):
        return None
    prompt, tools = _first_int(meta, "promptTokenCount"), _first_int(meta, "toolUsePromptTokenCount")
    candidates, thoughts = _first_int(meta, "candidatesTokenCount"), _first_int(meta, "thoughtsTokenCount")
    return Usage(
        input_tokens=None if prompt is None else prompt + (tools or 0),
        output_tokens=None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0),
        cache_read_tokens=_first_int(meta, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _gemini_body(reader: Reader, data: Any) -> None:
    if isinstance(data, list):  # streamGenerateContent without alt=sse: one JSON array
        for item in data:
            _gemini_body(reader, item)
        return
    if not isinstance(data, dict):
        return
    reader.first(data.get("modelVersion"), data.get("responseId"))
    for candidate in data.get("candidates") or ():
        if isinstance(candidate, dict) and candidate.get("finishReason"):
            reader.reasons = [candidate["finishReason"]]
    if data.get("usageMetadata") is not None:
        reader.usage = gemini_usage(data.get("usageMetadata"))


def _gemini_event(reader: Reader, name: str | None, data: Any) -> bool:
    _gemini_body(reader, data)
    return False


# --- Ollama -----------------------------------------------------------------------------------------
# Besides OPAQUE: base64 images, the context of a previous generation (token ids), load settings.
# A tool call's ``arguments`` is a dict with the application's keys.
_OLLAMA_OPAQUE = OPAQUE | {"images", "context", "keep_alive", "think"}
_OLLAMA_ARGUMENTS = frozenset({"arguments"})


def _ollama_describe(prompt_key: str) -> Any:
    def describe(body: dict, path: str) -> Described:
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        value = body.get(prompt_key)
        return Described(
            str_model(body.get("model")),
            _parameters(options, **{"gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "top_p", "gen_ai.request.top_k": "top_k"}),
            _first_int(options, "num_predict"),
            body_texts(body, _OLLAMA_OPAQUE, _OLLAMA_ARGUMENTS),
            (lambda: messages_of(value)) if prompt_key == "messages" else None,
        )

    return describe


def _ollama_body(reader: Reader, data: Any) -> None:
    if not isinstance(data, dict):
        return
    reader.first(data.get("model"))
    if data.get("done") is True or "embeddings" in data:
        reader.reason(data.get("done_reason"))
        prompt, output = _first_int(data, "prompt_eval_count"), _first_int(data, "eval_count")
        if prompt is not None or output is not None:
            reader.usage = Usage(prompt, output)


def _ollama_event(reader: Reader, name: str | None, data: Any) -> bool:
    _ollama_body(reader, data)
    return False


def _ollama_streams(body: dict) -> bool:
    return body.get("stream") is not False  # Ollama streams unless told not to


# --- Cohere v2 --------------------------------------------------------------------------------------
# Besides OPAQUE: tool-call ids and request settings. A document's ``data`` is not media here but a
# dict of the application's fields (title, snippet…): read as ``key: value``.
_COHERE_OPAQUE = (OPAQUE - {"data"}) | {"tool_call_id", "safety_mode", "citation_options", "input_type", "embedding_types", "truncate", "priority"}
_COHERE_ARGUMENTS = frozenset({"data"})


def _cohere_describe(prompt_key: str) -> Any:
    def describe(body: dict, path: str) -> Described:
        value = body.get(prompt_key) if prompt_key in body else body.get("inputs")
        return Described(
            str_model(body.get("model")),
            _parameters(body, **{"gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "p", "gen_ai.request.top_k": "k"}),
            _first_int(body, "max_tokens"),
            body_texts(body, _COHERE_OPAQUE, _COHERE_ARGUMENTS),
            (lambda: messages_of(value)) if prompt_key == "messages" else None,
        )

    return describe


def cohere_usage(usage: Any) -> Usage | None:
    """Billed units where given (what Cohere charges), else the token counts."""
    if not isinstance(usage, dict):
        return None
    units = usage.get("billed_units") if isinstance(usage.get("billed_units"), dict) else usage.get("tokens")
    if not isinstance(units, dict):
        return None
    return Usage(_first_int(units, "input_tokens"), _first_int(units, "output_tokens"))


def _cohere_body(reader: Reader, data: Any) -> None:
    if not isinstance(data, dict):
        return
    reader.first(None, data.get("id"))
    reader.reason(data.get("finish_reason"))
    usage = data.get("usage") if "usage" in data else data.get("meta")
    if usage is not None:
        reader.usage = cohere_usage(usage)


def _cohere_event(reader: Reader, name: str | None, data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if data.get("type") == "message-start":
        reader.first(None, data.get("id"))
    elif data.get("type") == "message-end":
        _cohere_body(reader, data.get("delta"))
    return False


# Longer suffixes first: "/chat/completions" before "/completions".
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/chat/completions", OPENAI, CHAT, _openai_describe("messages", ("max_completion_tokens", "max_tokens")), _stream_flag, _chat_event, _chat_body, usage_option=True),
    Endpoint("/completions", OPENAI, COMPLETION, _openai_describe("prompt", ("max_tokens",)), _stream_flag, _chat_event, _chat_body, usage_option=True),
    Endpoint("/embeddings", OPENAI, EMBED, _openai_describe("input", ()), lambda body: False, _chat_event, _chat_body),
    Endpoint("/responses", OPENAI, CHAT, _openai_describe("input", ("max_output_tokens",)), _stream_flag, _responses_event, _responses_body),
    Endpoint("/v1/messages", ANTHROPIC, CHAT, _anthropic_describe, _stream_flag, _anthropic_event, _anthropic_body),
    Endpoint(":streamGenerateContent", GEMINI, GENERATE, _gemini_describe, lambda body: True, _gemini_event, _gemini_body, always_streams=True),
    Endpoint(":generateContent", GEMINI, GENERATE, _gemini_describe, lambda body: False, _gemini_event, _gemini_body),
    Endpoint("/api/chat", OLLAMA, CHAT, _ollama_describe("messages"), _ollama_streams, _ollama_event, _ollama_body, framing="ndjson"),
    Endpoint("/api/generate", OLLAMA, COMPLETION, _ollama_describe("prompt"), _ollama_streams, _ollama_event, _ollama_body, framing="ndjson"),
    Endpoint("/api/embed", OLLAMA, EMBED, _ollama_describe("input"), lambda body: False, _ollama_event, _ollama_body),
    Endpoint("/v2/chat", COHERE, CHAT, _cohere_describe("messages"), _stream_flag, _cohere_event, _cohere_body),
    Endpoint("/v2/embed", COHERE, EMBED, _cohere_describe("texts"), lambda body: False, _cohere_event, _cohere_body),
)

# The body fields that make a request to one of these paths a model call (besides "model").
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "/chat/completions": ("messages",),
    "/completions": ("prompt",),
    "/embeddings": ("input",),
    "/responses": (),
    "/v1/messages": ("messages",),
    ":streamGenerateContent": ("contents",),
    ":generateContent": ("contents",),
    "/api/chat": ("messages",),
    "/api/generate": ("prompt",),
    "/api/embed": ("input",),
    "/v2/chat": ("messages",),
    "/v2/embed": (),
}
