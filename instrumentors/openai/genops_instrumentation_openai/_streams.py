"""Stream accumulators: what GenOps reads from OpenAI chunks and events while the app iterates.

The chat and legacy-completions accumulators hide a usage-only chunk (``choices == []``) only when
GenOps itself asked for it and the server answered that request, so the application sees exactly
the chunks it would see unpatched. A server answers ``include_usage`` (OpenAI's documented format)
with ``"usage": null`` on every other chunk; a usage chunk without that mark may be one the server
sends unasked (some servers and gateways do), so it reaches the application, and that server is
not asked again: a chunk GenOps cannot tell apart is never taken from the application.
"""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.api import Call, StreamAccumulator, get, is_mapping

from ._response import _int, _str, chat_usage, finish_responses


class _Choices:
    """Per-choice text and tool calls, collected only when content capture is on."""

    def __init__(self) -> None:
        self.text: dict[int, list[str]] = {}
        self.tools: dict[int, dict[int, dict[str, Any]]] = {}

    def add(self, index: int, delta: Any, text_key: str) -> None:
        if delta is None:
            return
        for key in (text_key, "refusal"):
            piece = get(delta, key)
            if isinstance(piece, str) and piece:
                self.text.setdefault(index, []).append(piece)
        for tool in get(delta, "tool_calls") or ():
            slot = self.tools.setdefault(index, {}).setdefault(_int(get(tool, "index")) or 0, {"type": "tool_call", "id": None, "name": None, "arguments": ""})
            function = get(tool, "function")
            slot["id"] = get(tool, "id") or slot["id"]
            slot["name"] = get(function, "name") or slot["name"]
            slot["arguments"] += get(function, "arguments") or ""

    def messages(self, reasons: dict[int, str]) -> list[dict[str, Any]]:
        indexes = sorted(set(self.text) | set(self.tools) | set(reasons))
        return [
            {
                "role": "assistant",
                "parts": ([{"type": "text", "content": "".join(self.text[i])}] if i in self.text else []) + list(self.tools.get(i, {}).values()),
                "finish_reason": reasons.get(i),
            }
            for i in indexes
        ]


# Base URLs of servers that answered GenOps' request with an unmarked usage chunk (bounded).
_UNMARKED: set[str] = set()
_UNMARKED_LIMIT = 256


def answers_unmarked(base_url: str | None) -> bool:
    """Whether this server sent a usage chunk that could not be told from one it sends unasked."""
    return bool(_UNMARKED) and (base_url or "") in _UNMARKED


def _remember_unmarked(base_url: str) -> None:
    if len(_UNMARKED) >= _UNMARKED_LIMIT:
        _UNMARKED.clear()
    _UNMARKED.add(base_url)


def _null_usage_set(chunk: Any) -> set | None:
    """The chunk's set fields when the server sent ``"usage": null`` (pydantic 2 or 1), else None."""
    fields_set = getattr(chunk, "__pydantic_fields_set__", None)
    if fields_set is None:
        fields_set = getattr(chunk, "__fields_set__", None)
    return fields_set if isinstance(fields_set, set) and "usage" in fields_set else None


class ChatStreamAccumulator(StreamAccumulator):
    """Chat completion chunks (``text_key="text"`` for legacy completions)."""

    def __init__(self, asked: str | None, capture: bool, text_key: str = "content") -> None:
        self._asked = asked  # the base URL GenOps asked for the usage chunk, None when it did not
        self._marked = False  # the server marked its chunks with "usage": null: it answered the ask
        self._text_key = text_key
        self._choices = _Choices() if capture else None
        self._model: str | None = None
        self._id: str | None = None
        self._reasons: dict[int, str] = {}
        self._usage: Any = None
        self._mapping: bool | None = None

    def add(self, chunk: Any) -> bool:
        mapping = self._mapping
        if mapping is None:  # chunks of one stream are all SDK objects (or all dicts): decide once
            mapping = self._mapping = is_mapping(chunk)
        if mapping:
            return self._add_mapping(chunk)
        if self._model is None:
            self._model = _str(getattr(chunk, "model", None))
        if self._id is None:
            self._id = _str(getattr(chunk, "id", None))
        choices = getattr(chunk, "choices", None)
        if choices:
            collect = self._choices
            for choice in choices:
                reason = getattr(choice, "finish_reason", None)
                if collect is not None or reason is not None:
                    index = _int(getattr(choice, "index", None)) or 0
                    if isinstance(reason, str):
                        self._reasons[index] = reason
                    if collect is not None:
                        collect.add(index, getattr(choice, "delta", None) if self._text_key == "content" else choice, self._text_key)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
            return self._answered(choices)
        if self._asked is not None:
            fields_set = _null_usage_set(chunk)
            if fields_set is not None:  # the mark of GenOps' request: unset, as the key is unpatched
                self._marked = True
                fields_set.discard("usage")
        return False

    def _answered(self, choices: Any) -> bool:
        """Whether a chunk with usage is the answer to GenOps' own request (then it is hidden)."""
        if self._asked is None or choices:
            return False
        if self._marked:
            return True
        _remember_unmarked(self._asked)
        return False

    def _add_mapping(self, chunk: Any) -> bool:
        """The same reading for chunks given as dicts (raw JSON); a dict is never changed."""
        self._model = self._model or _str(get(chunk, "model"))
        self._id = self._id or _str(get(chunk, "id"))
        choices = get(chunk, "choices") or ()
        for choice in choices:
            index = _int(get(choice, "index")) or 0
            reason = get(choice, "finish_reason")
            if isinstance(reason, str):
                self._reasons[index] = reason
            if self._choices is not None:
                delta = get(choice, "delta") if self._text_key == "content" else choice
                self._choices.add(index, delta, self._text_key)
        usage = get(chunk, "usage")
        if usage is not None:
            self._usage = usage
            return self._answered(choices)
        if self._asked is not None and "usage" in chunk:
            self._marked = True
        return False

    def finish(self, call: Call) -> None:
        choices = self._choices
        reasons = self._reasons
        call.finish(
            response_model=self._model,
            response_id=self._id,
            finish_reasons=[reasons[i] for i in sorted(reasons)],
            usage=chat_usage(self._usage),
            output_messages=(lambda: choices.messages(reasons)) if choices is not None else None,
        )


class ResponsesStreamAccumulator(StreamAccumulator):
    """Responses API events: the final ``response.completed``/``incomplete``/``failed`` carries usage."""

    _FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self) -> None:
        self._latest: Any = None
        self._final: Any = None

    def add(self, event: Any) -> bool:
        response = get(event, "response")
        if response is not None:
            self._latest = response
            if get(event, "type") in self._FINAL:
                self._final = response
        return False

    def finish(self, call: Call) -> None:
        if self._final is not None:
            finish_responses(call, self._final)
            return
        call.finish(response_model=_str(get(self._latest, "model")), response_id=_str(get(self._latest, "id")))
