"""Reading the facts GenOps records (model, id, finish reasons, tokens, output) from OpenAI responses.

Every reader accepts the SDK's objects and the raw JSON dicts alike, so raw responses can be
read from their body without going through the SDK's own parsing.
"""

from __future__ import annotations

from typing import Any, Callable

from genops_autoinstrument.api import Call, Usage, get, is_mapping


def _attribute(obj: Any, key: str) -> Any:
    return getattr(obj, key, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def chat_usage(usage: Any) -> Usage | None:
    """Chat and legacy completions usage: prompt tokens include the cached ones."""
    if usage is None:
        return None
    if not is_mapping(usage):  # the SDK's CompletionUsage: plain attribute reads
        prompt = getattr(usage, "prompt_tokens_details", None)
        completion = getattr(usage, "completion_tokens_details", None)
        return Usage(
            input_tokens=_int(getattr(usage, "prompt_tokens", None)),
            output_tokens=_int(getattr(usage, "completion_tokens", None)),
            cache_read_tokens=_int(get(prompt, "cached_tokens")),
            reasoning_tokens=_int(get(completion, "reasoning_tokens")),
        )
    return Usage(
        input_tokens=_int(get(usage, "prompt_tokens")),
        output_tokens=_int(get(usage, "completion_tokens")),
        cache_read_tokens=_int(get(get(usage, "prompt_tokens_details"), "cached_tokens")),
        reasoning_tokens=_int(get(get(usage, "completion_tokens_details"), "reasoning_tokens")),
    )


def responses_usage(usage: Any) -> Usage | None:
    """Responses API usage: input_tokens include cached, output_tokens include reasoning."""
    if usage is None:
        return None
    return Usage(
        input_tokens=_int(get(usage, "input_tokens")),
        output_tokens=_int(get(usage, "output_tokens")),
        cache_read_tokens=_int(get(get(usage, "input_tokens_details"), "cached_tokens")),
        reasoning_tokens=_int(get(get(usage, "output_tokens_details"), "reasoning_tokens")),
    )


def embeddings_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(input_tokens=_int(get(usage, "prompt_tokens")))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _chat_message_parts(message: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for key in ("content", "refusal"):
        text = get(message, key)
        if isinstance(text, str) and text:
            parts.append({"type": "text", "content": text})
    for tool_call in get(message, "tool_calls") or ():
        function = get(tool_call, "function")
        parts.append({"type": "tool_call", "id": get(tool_call, "id"), "name": get(function, "name"), "arguments": get(function, "arguments")})
    return parts


def finish_chat(call: Call, response: Any) -> None:
    """Report a ChatCompletion (or its JSON) to the call."""
    read = get if response is None or is_mapping(response) else _attribute  # SDK objects: plain reads
    choices = read(response, "choices") or ()
    call.finish(
        response_model=_str(read(response, "model")),
        response_id=_str(read(response, "id")),
        finish_reasons=[r for r in (get(c, "finish_reason") for c in choices) if isinstance(r, str)],
        usage=chat_usage(read(response, "usage")),
        output_messages=lambda: [
            {"role": "assistant", "parts": _chat_message_parts(get(c, "message")), "finish_reason": get(c, "finish_reason")} for c in choices
        ],
    )


def finish_completion(call: Call, response: Any) -> None:
    """Report a legacy Completion (or its JSON) to the call."""
    choices = get(response, "choices") or ()
    call.finish(
        response_model=_str(get(response, "model")),
        response_id=_str(get(response, "id")),
        finish_reasons=[r for r in (get(c, "finish_reason") for c in choices) if isinstance(r, str)],
        usage=chat_usage(get(response, "usage")),
        output_messages=lambda: [
            {"role": "assistant", "parts": [{"type": "text", "content": get(c, "text")}], "finish_reason": get(c, "finish_reason")} for c in choices
        ],
    )


def finish_embeddings(call: Call, response: Any) -> None:
    """Report a CreateEmbeddingResponse (or its JSON) to the call."""
    call.finish(response_model=_str(get(response, "model")), usage=embeddings_usage(get(response, "usage")))


def responses_finish_reasons(response: Any) -> list[str]:
    """``completed``/``failed``/…, or the reason of an incomplete response (``max_output_tokens``)."""
    status = get(response, "status")
    if status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason")
        if isinstance(reason, str):
            return [reason]
    return [status] if isinstance(status, str) else []


def responses_output_messages(response: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            for part in get(item, "content") or ():
                text = get(part, "text") if get(part, "type") == "output_text" else get(part, "refusal")
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
        elif kind == "function_call":
            parts.append({"type": "tool_call", "id": get(item, "call_id"), "name": get(item, "name"), "arguments": get(item, "arguments")})
    reasons = responses_finish_reasons(response)
    return [{"role": "assistant", "parts": parts, "finish_reason": reasons[0] if reasons else None}]


def finish_responses(call: Call, response: Any) -> None:
    """Report a Responses API Response (or its JSON) to the call."""
    call.finish(
        response_model=_str(get(response, "model")),
        response_id=_str(get(response, "id")),
        finish_reasons=responses_finish_reasons(response),
        usage=responses_usage(get(response, "usage")),
        output_messages=lambda: responses_output_messages(response),
    )


Finisher = Callable[[Call, Any], None]
