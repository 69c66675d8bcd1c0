"""Reading Bedrock model ids and the model-family JSON bodies of InvokeModel.

Bedrock passes each model vendor's own request and response format through InvokeModel, so the
usage, stop reason and parameters live under different keys per family. Everything here is pure
(dicts in, facts out) so it is cheap to test and never touches the SDK.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from genops_autoinstrument.api import Usage, semconv

# Geographic / global prefixes of cross-Region inference-profile ids ("us.anthropic.claude-…").
_VENDORS = frozenset(
    {"anthropic", "amazon", "meta", "mistral", "cohere", "ai21", "deepseek", "openai", "qwen", "writer", "stability", "twelvelabs", "luma", "moonshotai", "zai", "google", "minimax", "nvidia"}
)
# ARN resource types whose id is a readable model or inference-profile id.
_READABLE_ARN_TYPES = ("foundation-model/", "inference-profile/")


def model_id(raw: Any) -> str | None:
    """The model to record for a ``modelId``: ARNs of foundation models and system inference profiles
    become their readable id (``us.anthropic.claude-…``); other ARNs (application inference profiles,
    provisioned or imported models) stay whole because their id says nothing about the model."""
    if not isinstance(raw, str) or not raw:
        return None
    if raw.startswith("arn:"):
        resource = raw.split(":", 5)[-1]
        for kind in _READABLE_ARN_TYPES:
            if resource.startswith(kind):
                return resource[len(kind) :] or raw
    return raw


def vendor(model: str | None) -> str | None:
    """The model family's vendor (``anthropic``, ``amazon``, ``meta``…), skipping inference-profile prefixes."""
    if not model:
        return None
    for part in model.split(".")[:3]:
        if part in _VENDORS:
            return part
    return None


def invoke_operation(model: str | None, body: Mapping[str, Any] | None) -> str:
    """gen_ai.operation.name of an InvokeModel call, from the model id and request body."""
    if model and "embed" in model:
        return semconv.OPERATION_EMBEDDINGS
    if body is not None and ("messages" in body or "message" in body):
        return semconv.OPERATION_CHAT
    return semconv.OPERATION_TEXT_COMPLETION


def parse_json(payload: Any) -> Any:
    """A JSON request/response body as Python data, or None (file-like bodies are never consumed)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        payload = bytes(payload)
    elif not isinstance(payload, str):
        return None
    if payload[:64].lstrip()[:1] not in ("{", "[", b"{", b"["):  # no copy of a large non-JSON body
        return None
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # nested deeper than the parser goes: not readable as data
        return None


# --- request parameters ---------------------------------------------------------------------
_PARAMETER_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (semconv.GEN_AI_REQUEST_MAX_TOKENS, ("max_tokens", "maxTokens", "max_new_tokens", "maxTokenCount", "max_gen_len", "max_completion_tokens")),
    (semconv.GEN_AI_REQUEST_TEMPERATURE, ("temperature",)),
    (semconv.GEN_AI_REQUEST_TOP_P, ("top_p", "topP")),
    (semconv.GEN_AI_REQUEST_TOP_K, ("top_k", "topK")),
    (semconv.GEN_AI_REQUEST_STOP_SEQUENCES, ("stop_sequences", "stopSequences", "stop")),
)
_NESTED_CONFIGS = ("inferenceConfig", "textGenerationConfig")


def _number_or_list(value: Any) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def invoke_parameters(body: Mapping[str, Any], family: str | None) -> dict[str, Any]:
    """gen_ai.request.* attributes from an InvokeModel body of any supported family."""
    scopes = [body] + [body[key] for key in _NESTED_CONFIGS if isinstance(body.get(key), Mapping)]
    found: dict[str, Any] = {}
    for attribute, keys in _PARAMETER_KEYS:
        if family == "cohere" and attribute == semconv.GEN_AI_REQUEST_TOP_P:
            keys = keys + ("p",)
        if family == "cohere" and attribute == semconv.GEN_AI_REQUEST_TOP_K:
            keys = keys + ("k",)
        for scope in scopes:
            value = next((scope[key] for key in keys if key in scope), None)
            value = _number_or_list(value)
            if value is not None:
                found[attribute] = value
                break
    return found


def converse_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """gen_ai.request.* attributes of a Converse request (``inferenceConfig`` + vendor extras)."""
    found = invoke_parameters(params.get("inferenceConfig") or {}, None)
    extra = params.get("additionalModelRequestFields")
    if isinstance(extra, Mapping):
        top_k = _number_or_list(extra.get("top_k", extra.get("topK")))
        if isinstance(top_k, (int, float)):
            found[semconv.GEN_AI_REQUEST_TOP_K] = top_k
    return found


def texts(value: Any, keys: tuple[str, ...] = ("text", "content", "prompt", "inputText", "message", "system", "messages", "texts", "chat_history")) -> Iterator[str]:
    """Every string reachable under text-bearing keys, in order (opt-in message capture, output
    text): no recursion, each container once, so no depth or cycle can raise."""
    pending = [value]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, (Mapping, list, tuple)) and id(item) not in seen:
            seen.add(id(item))
            children = [item[key] for key in keys if key in item] if isinstance(item, Mapping) else item
            pending.extend(reversed(children))


def converse_messages(messages: Any, system: Any = None) -> list[dict[str, Any]]:
    """Converse messages in the GenAI conventions' message format (recorded only on opt-in)."""
    result: list[dict[str, Any]] = []
    if system:
        result.append({"role": "system", "parts": _parts(system)})
    for message in messages or ():
        if isinstance(message, Mapping):
            result.append({"role": message.get("role", "user"), "parts": _parts(message.get("content"))})
    return result


def _parts(blocks: Any) -> list[dict[str, Any]]:
    if isinstance(blocks, str):
        return [{"type": "text", "content": blocks}]
    parts: list[dict[str, Any]] = []
    for block in blocks or ():
        if isinstance(block, Mapping) and isinstance(block.get("text"), str):
            parts.append({"type": "text", "content": block["text"]})
        elif isinstance(block, Mapping) and block:
            parts.append({"type": next(iter(block))})
    return parts


# --- response usage -------------------------------------------------------------------------
_INPUT = ("inputTokens", "input_tokens", "inputTokenCount", "inputTextTokenCount", "prompt_token_count")
_OUTPUT = ("outputTokens", "output_tokens", "outputTokenCount", "generation_token_count", "totalOutputTextTokenCount", "completion_tokens")
_CACHE_READ = ("cacheReadInputTokens", "cache_read_input_tokens", "cacheReadInputTokenCount")
_CACHE_WRITE = ("cacheWriteInputTokens", "cache_creation_input_tokens", "cacheWriteInputTokenCount")
METRICS_KEY = "amazon-bedrock-invocationMetrics"
_HEADERS = (
    ("input", "x-amzn-bedrock-input-token-count"),
    ("output", "x-amzn-bedrock-output-token-count"),
    ("cache_read", "x-amzn-bedrock-cache-read-input-token-count"),
    ("cache_write", "x-amzn-bedrock-cache-write-input-token-count"),
)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _int(mapping.get(key))
        if value is not None:
            return value
    return None


class Tally:
    """Token counts as Bedrock reports them: ``input`` excludes cache reads and writes.

    Later reports of a field replace earlier ones (stream counters are cumulative).
    """

    __slots__ = ("input", "output", "cache_read", "cache_write", "reasoning")

    def __init__(self) -> None:
        self.input: int | None = None
        self.output: int | None = None
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.reasoning: int | None = None

    def take(self, counts: Any) -> None:
        """Read any known token keys of one mapping (Converse, Anthropic, Nova, Titan, Llama, metrics)."""
        if not isinstance(counts, Mapping):
            return
        if "prompt_tokens" in counts:  # OpenAI-compatible bodies: prompt tokens include cached ones
            prompt = _int(counts.get("prompt_tokens"))
            details = counts.get("prompt_tokens_details")
            cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else None
            if prompt is not None:
                self.input = prompt - (cached or 0)
                self.cache_read = cached if cached is not None else self.cache_read
            details = counts.get("completion_tokens_details")
            reasoning = _int(details.get("reasoning_tokens")) if isinstance(details, Mapping) else None
            self.reasoning = reasoning if reasoning is not None else self.reasoning
        for name, keys in (("input", _INPUT), ("output", _OUTPUT), ("cache_read", _CACHE_READ), ("cache_write", _CACHE_WRITE)):
            value = _first(counts, keys)
            if value is not None:
                setattr(self, name, value)

    def take_headers(self, headers: Any) -> None:
        """The x-amzn-bedrock-*-token-count response headers (botocore lower-cases header names)."""
        if not isinstance(headers, Mapping):
            return
        for name, header in _HEADERS:
            value = _int(headers.get(header))
            if value is not None:
                setattr(self, name, value)

    def fill(self, other: "Tally") -> None:
        """Take from ``other`` the fields this tally does not know."""
        for name in self.__slots__:
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))

    def usage(self) -> Usage | None:
        if self.input is None and self.output is None:
            return None
        total_input = None if self.input is None else self.input + (self.cache_read or 0) + (self.cache_write or 0)
        return Usage(
            input_tokens=total_input,
            output_tokens=self.output,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            reasoning_tokens=self.reasoning,
        )


class BodyFacts:
    """What one InvokeModel response body, or the chunks of a streamed one, says about the call."""

    def __init__(self, collect_text: bool = False) -> None:
        self.tally = Tally()
        self.metrics = Tally()  # amazon-bedrock-invocationMetrics: Bedrock's own count on streams
        self.finish_reasons: list[str] = []
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.collect_text = collect_text
        self.text: list[str] = []

    def add(self, body: Any) -> None:
        """Read one response body or one decoded stream chunk of any supported family."""
        if not isinstance(body, Mapping):
            return
        tally = self.tally
        tally.take(body)  # Titan, Llama and embeddings keep counts at the top level
        tally.take(body.get("usage"))  # Anthropic, Nova, OpenAI-compatible, message_delta
        message = body.get("message")
        if isinstance(message, Mapping):  # Anthropic stream message_start
            tally.take(message.get("usage"))
            self._identify(message)
        metadata = body.get("metadata")
        if isinstance(metadata, Mapping):  # Nova stream
            tally.take(metadata.get("usage"))
        results = body.get("results")
        if isinstance(results, list) and tally.output is None:  # Titan text, non-streamed
            counts = [_int(item.get("tokenCount")) for item in results if isinstance(item, Mapping)]
            if counts and None not in counts:
                tally.output = sum(counts)  # type: ignore[arg-type]
        self.metrics.take(body.get(METRICS_KEY))
        self._identify(body)
        self._reasons(body)
        if self.collect_text:
            self.text.extend(_output_texts(body))

    def _identify(self, body: Mapping[str, Any]) -> None:
        identifier = body.get("id") or body.get("response_id")
        if isinstance(identifier, str) and self.response_id is None:
            self.response_id = identifier
        model = body.get("model")
        if isinstance(model, str) and self.response_model is None:
            self.response_model = model

    def _reasons(self, body: Mapping[str, Any]) -> None:
        candidates: list[Any] = [body.get("stop_reason"), body.get("stopReason"), body.get("completionReason"), body.get("finish_reason")]
        for key in ("delta", "messageStop"):
            nested = body.get(key)
            if isinstance(nested, Mapping):
                candidates += [nested.get("stop_reason"), nested.get("stopReason")]
        for key in ("results", "outputs", "choices", "generations"):
            items = body.get(key)
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, Mapping):
                        candidates += [item.get("completionReason"), item.get("stop_reason"), item.get("finish_reason")]
        for reason in candidates:
            if isinstance(reason, str) and reason and reason not in self.finish_reasons:
                self.finish_reasons.append(reason)

    def usage(self) -> Usage | None:
        self.tally.fill(self.metrics)
        return self.tally.usage()

    def attributes(self) -> dict[str, Any]:
        """The vendor's own model name (``claude-…``) as gen_ai.response.model.

        It is given as an attribute, not as ``response_model``, so that pricing keeps using the
        Bedrock model id, whose inference-profile prefix decides the price.
        """
        return {semconv.GEN_AI_RESPONSE_MODEL: self.response_model} if self.response_model else {}


def _output_texts(body: Mapping[str, Any]) -> Iterator[str]:
    for key in ("generation", "outputText", "completion", "text"):
        if isinstance(body.get(key), str):
            yield body[key]
    for key in ("content", "results", "outputs", "generations"):
        items = body.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping):
                    for field in ("text", "outputText"):
                        if isinstance(item.get(field), str):
                            yield item[field]
    for key in ("delta", "contentBlockDelta"):  # Anthropic / Nova stream deltas
        delta = body.get(key)
        if isinstance(delta, Mapping):
            inner = delta.get("delta", delta)
            if isinstance(inner, Mapping) and isinstance(inner.get("text"), str):
                yield inner["text"]
    output = body.get("output")
    if isinstance(output, Mapping):  # Nova non-streamed
        yield from texts(output.get("message"), ("content", "text"))
    choices = body.get("choices")
    if isinstance(choices, list):  # OpenAI-compatible
        for choice in choices:
            if isinstance(choice, Mapping):
                for key in ("message", "delta"):
                    part = choice.get(key)
                    if isinstance(part, Mapping) and isinstance(part.get("content"), str):
                        yield part["content"]
