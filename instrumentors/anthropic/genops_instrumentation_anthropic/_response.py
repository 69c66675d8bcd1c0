"""Reading a Message (model or decoded JSON) and Messages stream events into the engine's terms."""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.api import Call, StreamAccumulator, Usage, get

# Anthropic stop_reason -> GenAI output-message finish_reason (gen_ai.output.messages only;
# gen_ai.response.finish_reasons keeps the provider's own value, as the SDK reports it).
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_of(usage: Any) -> Usage | None:
    """The conventions' usage: input = input + cache read + cache creation; cache figures kept apart."""
    if usage is None:
        return None
    fresh = _int(get(usage, "input_tokens"))
    read = _int(get(usage, "cache_read_input_tokens"))
    write = _int(get(usage, "cache_creation_input_tokens"))
    total = None if fresh is None else fresh + (read or 0) + (write or 0)
    return Usage(
        input_tokens=total,
        output_tokens=_int(get(usage, "output_tokens")),
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=_int(get(get(usage, "output_tokens_details"), "thinking_tokens")),
    )


def _parts(content: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in content or ():
        kind = get(block, "type")
        if kind == "text":
            parts.append({"type": "text", "content": get(block, "text")})
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": get(block, "thinking")})
        elif kind in ("tool_use", "server_tool_use"):
            parts.append({"type": "tool_call", "id": get(block, "id"), "name": get(block, "name"), "arguments": get(block, "input")})
    return parts


def output_messages(content: Any, stop_reason: Any) -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": _parts(content), "finish_reason": _FINISH.get(stop_reason, stop_reason or "stop")}]


def finish_message(call: Call, message: Any) -> None:
    """Report a complete Message (SDK model, ParsedMessage, BetaMessage or decoded JSON body)."""
    stop_reason = get(message, "stop_reason")
    call.finish(
        response_model=get(message, "model"),
        response_id=get(message, "id"),
        finish_reasons=[stop_reason] if isinstance(stop_reason, str) else None,
        usage=usage_of(get(message, "usage")),
        output_messages=lambda: output_messages(get(message, "content"), stop_reason),
    )


class MessageEvents(StreamAccumulator):
    """Collects id, model, usage and stop reason from raw stream events; text only when captured.

    Usage comes from ``message_start`` and is overridden field by field by the cumulative figures of
    ``message_delta`` (its ``output_tokens`` is the final count).
    """

    def __init__(self, capture_content: bool = False) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.capture = capture_content
        self.blocks: dict[int, dict[str, Any]] = {}

    def _merge_usage(self, usage: Any) -> None:
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens_details"):
            value = get(usage, key)
            if value is not None:
                self.usage[key] = value

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "message_start":
            message = get(event, "message")
            self.id = get(message, "id")
            self.model = get(message, "model")
            self._merge_usage(get(message, "usage"))
        elif kind == "message_delta":
            self.stop_reason = get(get(event, "delta"), "stop_reason") or self.stop_reason
            self._merge_usage(get(event, "usage"))
        elif self.capture and kind == "content_block_start":
            block = get(event, "content_block")
            self.blocks[get(event, "index") or 0] = {"type": get(block, "type"), "text": get(block, "text") or "", "thinking": "", "id": get(block, "id"), "name": get(block, "name")}
        elif self.capture and kind == "content_block_delta":
            block = self.blocks.setdefault(get(event, "index") or 0, {"type": "text", "text": "", "thinking": ""})
            delta = get(event, "delta")
            if get(delta, "type") == "text_delta":
                block["text"] += get(delta, "text") or ""
            elif get(delta, "type") == "thinking_delta":
                block["thinking"] += get(delta, "thinking") or ""
        return False

    def finish(self, call: Call) -> None:
        stop_reason = self.stop_reason
        content = [self.blocks[index] for index in sorted(self.blocks)]
        call.finish(
            response_model=self.model,
            response_id=self.id,
            finish_reasons=[stop_reason] if stop_reason else None,
            usage=usage_of(self.usage) if self.usage else None,
            output_messages=lambda: output_messages(content, stop_reason),
        )
