"""Reading google-genai responses: usage, model, id, finish reasons, and stream accumulation.

Usage mapping (``usage_metadata`` -> GenOps :class:`Usage`):

* ``prompt_token_count`` already includes ``cached_content_token_count`` (the SDK documents it:
  "When cached_content is set, this also includes the number of tokens in the cached content"),
  so ``input_tokens = prompt_token_count + tool_use_prompt_token_count`` and
  ``cache_read_tokens = cached_content_token_count``. Tool-use prompt tokens (results of built-in
  tools fed back to the model) are billed as input and are not part of ``prompt_token_count``.
* ``candidates_token_count`` excludes thinking, so ``output_tokens = candidates_token_count +
  thoughts_token_count`` and ``reasoning_tokens = thoughts_token_count``.

So ``input_tokens + output_tokens == total_token_count``. The API omits zero counts, so a usage
block with some counts reads the missing ones as 0; no usage block at all means unknown.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from genops_autoinstrument.api import Call, StreamAccumulator, Usage, get, is_mapping

from ._request import iter_texts


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _count(meta: Any, name: str) -> int | None:
    """A token count from the SDK's model (snake_case) or the API's raw JSON (camelCase)."""
    value = get(meta, name)
    if value is None and is_mapping(meta):
        value = meta.get(_camel(name))
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def usage_of(meta: Any) -> Usage | None:
    """GenOps usage of one ``GenerateContentResponseUsageMetadata`` (``None`` when absent/empty)."""
    if meta is None:
        return None
    prompt = _count(meta, "prompt_token_count")
    tool_prompt = _count(meta, "tool_use_prompt_token_count")
    cached = _count(meta, "cached_content_token_count")
    candidates = _count(meta, "candidates_token_count")
    thoughts = _count(meta, "thoughts_token_count")
    if prompt is None and tool_prompt is None and candidates is None and thoughts is None:
        return None
    return Usage(
        input_tokens=(prompt or 0) + (tool_prompt or 0),
        output_tokens=(candidates or 0) + (thoughts or 0),
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def embedding_usage_of(response: Any) -> Usage | None:
    """Input tokens of an ``EmbedContentResponse``: ``usage_metadata`` or Vertex per-embedding statistics."""
    meta = get(response, "usage_metadata")
    prompt = _count(meta, "prompt_token_count")
    if prompt is not None:
        return Usage(input_tokens=prompt, cache_read_tokens=_count(meta, "cached_content_token_count"))
    total = None
    for embedding in get(response, "embeddings") or ():
        tokens = _count(get(embedding, "statistics"), "token_count")
        if tokens is not None:
            total = (total or 0) + tokens
    return Usage(input_tokens=total) if total is not None else None


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def add_usage(usages: Iterable[Usage | None]) -> Usage | None:
    """Sum the usage of several requests (continuation hops, automatic function-calling rounds)."""
    total: Usage | None = None
    for usage in usages:
        if usage is None:
            continue
        if total is None:
            total = usage
            continue
        total = Usage(
            input_tokens=_add(total.input_tokens, usage.input_tokens),
            output_tokens=_add(total.output_tokens, usage.output_tokens),
            cache_read_tokens=_add(total.cache_read_tokens, usage.cache_read_tokens),
            cache_write_tokens=_add(total.cache_write_tokens, usage.cache_write_tokens),
            reasoning_tokens=_add(total.reasoning_tokens, usage.reasoning_tokens),
        )
    return total


def raw_body(response: Any) -> dict[str, Any] | None:
    """The API's JSON when the application asked for the raw HTTP response (``should_return_http_response``)."""
    body = get(get(response, "sdk_http_response"), "body")
    if not isinstance(body, str) or not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def finish_reason_text(reason: Any) -> str | None:
    """``FinishReason.MAX_TOKENS`` -> ``"max_tokens"`` (the provider's value, lower-cased)."""
    if reason is None:
        return None
    value = getattr(reason, "value", reason)
    return str(value).lower() if value else None


def finish_reasons_of(response: Any) -> list[str]:
    reasons = []
    for candidate in get(response, "candidates") or ():
        reason = finish_reason_text(get(candidate, "finish_reason") or get(candidate, "finishReason"))
        if reason:
            reasons.append(reason)
    return reasons


def output_messages_of(candidates: Iterable[tuple[list[str], str | None]]) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "parts": [{"type": "text", "content": "".join(texts)}], "finish_reason": reason or ""}
        for texts, reason in candidates
    ]


def candidate_texts(response: Any) -> list[tuple[list[str], str | None]]:
    return [
        (list(iter_texts(get(candidate, "content"))), finish_reason_text(get(candidate, "finish_reason")))
        for candidate in get(response, "candidates") or ()
    ]


class Rounds:
    """Usage per request of one recorded call: each automatic function-calling round is a request.

    Non-streaming: the SDK wrapper of ``_generate_content`` adds each hop's usage. Streaming: a new
    round starts when the SDK starts a new (continuation-aware) stream request; within a round the
    chunks carry running totals, so the latest one counts.
    """

    def __init__(self) -> None:
        # Per round: a Usage, the latest raw usage metadata of a streamed round (converted by
        # total(): a stream's chunks each carry a running total, and only the last one counts), or None.
        self.usages: list[Any] = [None]

    def new_round(self) -> None:
        if self.usages[-1] is not None:
            self.usages.append(None)

    def add(self, usage: Usage | None) -> None:
        """A completed request (non-streaming hop)."""
        if usage is not None:
            self.usages.append(usage)

    def latest(self, metadata: Any) -> None:
        """A streamed chunk's usage metadata: the running total of the current round, when it
        carries any count (read only when the call ends, not per chunk)."""
        if metadata is not None and _carries_counts(metadata):
            self.usages[-1] = metadata

    def total(self) -> Usage | None:
        return add_usage(usage if usage is None or isinstance(usage, Usage) else usage_of(usage) for usage in self.usages)


_COUNT_FIELDS = ("prompt_token_count", "tool_use_prompt_token_count", "candidates_token_count", "thoughts_token_count")


def _carries_counts(metadata: Any) -> bool:
    """``usage_of(metadata) is not None``, without building the Usage (this runs per chunk)."""
    if is_mapping(metadata):
        return usage_of(metadata) is not None
    for name in _COUNT_FIELDS:
        value = getattr(metadata, name, None)
        if value is not None and value.__class__ is not bool and isinstance(value, (int, float)):
            return True
    return False


class GenerateAccumulator(StreamAccumulator):
    """Collects model, id, finish reasons, usage (and text on opt-in) from streamed chunks."""

    def __init__(self, capture_content: bool = False, rounds: Rounds | None = None) -> None:
        self.rounds = Rounds() if rounds is None else rounds
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.reasons: dict[int, str] = {}
        self.texts: dict[int, list[str]] | None = {} if capture_content else None

    def add(self, chunk: Any) -> bool:
        self.rounds.latest(get(chunk, "usage_metadata"))
        self.response_model = get(chunk, "model_version") or self.response_model
        self.response_id = get(chunk, "response_id") or self.response_id
        for position, candidate in enumerate(get(chunk, "candidates") or ()):
            index = get(candidate, "index")
            index = index if isinstance(index, int) else position
            reason = finish_reason_text(get(candidate, "finish_reason"))
            if reason:
                self.reasons[index] = reason
            if self.texts is not None:
                self.texts.setdefault(index, []).extend(iter_texts(get(candidate, "content")))
        return False

    def finish(self, call: Call) -> None:
        texts = self.texts
        call.finish(
            response_model=self.response_model,
            response_id=self.response_id,
            finish_reasons=[self.reasons[index] for index in sorted(self.reasons)],
            usage=self.rounds.total(),
            output_messages=(
                (lambda: output_messages_of((texts[i], self.reasons.get(i)) for i in sorted(texts))) if texts is not None else None
            ),
        )
