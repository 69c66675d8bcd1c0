"""wrapt wrappers around ``Models``/``AsyncModels``: one recorded call per application call.

The public methods are recorded. Automatic function calling (AFC) sends several requests inside
one public call, and only the last response's usage reaches the application, so the SDK's
per-request helpers are wrapped too: they add each request's usage to the active call's
:class:`Rounds` (found through a context variable) and change nothing else.
"""

from __future__ import annotations

import contextvars
from typing import Any

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import Decision, PolicyViolation, native_violation
from genops_autoinstrument.engine.call import NULL_CALL, Call
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.api.streams import RecordedAsyncStream, RecordedStream

from ._request import build_request, field
from ._response import (
    GenerateAccumulator,
    Rounds,
    candidate_texts,
    embedding_usage_of,
    finish_reasons_of,
    output_messages_of,
    raw_body,
    usage_of,
)

# The Rounds of the call whose SDK code is running right now (None outside a recorded call).
_rounds: contextvars.ContextVar[Rounds | None] = contextvars.ContextVar("genops_google_genai_rounds", default=None)

_GENERATE = semconv.OPERATION_GENERATE_CONTENT
_EMBED = semconv.OPERATION_EMBEDDINGS


def block_error(decision: Decision) -> BaseException:
    """The SDK's own ``ClientError`` (429 for budget/rate, 403 for a rule) that is also a PolicyViolation."""
    from google.genai import errors

    code, status = (429, "RESOURCE_EXHAUSTED") if decision.is_budget else (403, "PERMISSION_DENIED")
    message = decision.message or f"blocked by GenOps policy {decision.policy_name}"
    body = {
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": decision.reason_code or decision.result,
                    "domain": "genops",
                    "metadata": {"policy": decision.policy_name or "", "result": decision.result},
                }
            ],
        }
    }
    return native_violation(errors.ClientError, decision, lambda cls: cls(code, body))


def _capture_content() -> bool:
    try:
        from genops_autoinstrument import config

        return bool(config.current().capture_content)
    except Exception:  # pragma: no cover - defensive
        return False


def _request(instance: Any, kwargs: dict[str, Any], operation: str, streaming: bool = False) -> Any:
    try:
        return build_request(instance, kwargs, operation, streaming=streaming)
    except Exception as error:
        internal_error("google_genai request", error)
        return None


def _finish_generate(call: Call, response: Any, rounds: Rounds) -> None:
    if call.ended:
        return
    try:
        usage = rounds.total()
        if usage is None:
            usage = usage_of(field(response, "usage_metadata"))
        raw = raw_body(response) if usage is None else None
        if raw is not None:  # the application asked for the raw HTTP response: read the JSON
            usage = usage_of(raw.get("usageMetadata"))
        call.finish(
            response_model=field(response, "model_version") or (raw or {}).get("modelVersion"),
            response_id=field(response, "response_id") or (raw or {}).get("responseId"),
            finish_reasons=finish_reasons_of(response) or finish_reasons_of(raw),
            usage=usage,
            output_messages=lambda: output_messages_of(candidate_texts(response)),
        )
    except Exception as error:
        internal_error("google_genai response", error)
        call.finish()


def _finish_embed(call: Call, response: Any) -> None:
    if call.ended:
        return
    try:
        call.finish(usage=embedding_usage_of(response))
    except Exception as error:
        internal_error("google_genai embeddings", error)
        call.finish()


# --- public methods, synchronous ------------------------------------------------------------
def generate_content(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = _request(instance, kwargs, _GENERATE)
    if request is None:
        return wrapped(*args, **kwargs)
    call = begin_call(request, block=block_error)
    rounds = Rounds()
    token = _rounds.set(rounds)
    try:
        with call:
            response = wrapped(*args, **kwargs)
    finally:
        _rounds.reset(token)
    _finish_generate(call, response, rounds)
    return response


def embed_content(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = _request(instance, kwargs, _EMBED)
    if request is None:
        return wrapped(*args, **kwargs)
    call = begin_call(request, block=block_error)
    with call:
        response = wrapped(*args, **kwargs)
    _finish_embed(call, response)
    return response


class _GenerateStream(RecordedStream):
    """The SDK's stream generator; the call starts at the first ``next()``, when the request is sent.

    Starting there (not when ``generate_content_stream()`` returns the generator) keeps a policy
    block where the SDK raises its own request errors: from the iteration.
    """

    def __init__(self, stream: Any, request: Any, accumulator: GenerateAccumulator) -> None:
        super().__init__(stream, NULL_CALL, accumulator)
        self._self_request = request

    def __next__(self) -> Any:
        request = self._self_request
        if request is not None:
            self._self_request = None
            try:
                self._self_call = begin_call(request, block=block_error)
            except PolicyViolation:
                self.__wrapped__.close()
                raise
        token = _rounds.set(self._self_accumulator.rounds)
        try:
            return super().__next__()
        finally:
            _rounds.reset(token)


def generate_content_stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = _request(instance, kwargs, _GENERATE, streaming=True)
    stream = wrapped(*args, **kwargs)
    if request is None:
        return stream
    try:
        return _GenerateStream(stream, request, GenerateAccumulator(_capture_content()))
    except Exception as error:  # pragma: no cover - defensive
        internal_error("google_genai stream", error)
        return stream


# --- public methods, asynchronous -----------------------------------------------------------
async def agenerate_content(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = _request(instance, kwargs, _GENERATE)
    if request is None:
        return await wrapped(*args, **kwargs)
    call = begin_call(request, block=block_error)
    rounds = Rounds()
    token = _rounds.set(rounds)
    try:
        with call:
            response = await wrapped(*args, **kwargs)
    finally:
        _rounds.reset(token)
    _finish_generate(call, response, rounds)
    return response


async def aembed_content(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = _request(instance, kwargs, _EMBED)
    if request is None:
        return await wrapped(*args, **kwargs)
    call = begin_call(request, block=block_error)
    with call:
        response = await wrapped(*args, **kwargs)
    _finish_embed(call, response)
    return response


class _AsyncGenerateStream(RecordedAsyncStream):
    """The SDK's async stream generator, with the call's Rounds visible while a chunk is fetched."""

    async def __anext__(self) -> Any:
        token = _rounds.set(self._self_accumulator.rounds)
        try:
            return await super().__anext__()
        finally:
            _rounds.reset(token)


async def agenerate_content_stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = _request(instance, kwargs, _GENERATE, streaming=True)
    if request is None:
        return await wrapped(*args, **kwargs)
    call = begin_call(request, block=block_error)
    with call:
        stream = await wrapped(*args, **kwargs)
    if call.ended:  # nested or suppressed: nothing to record
        return stream
    try:
        return _AsyncGenerateStream(stream, call, GenerateAccumulator(_capture_content()))
    except Exception as error:  # pragma: no cover - defensive
        internal_error("google_genai stream", error)
        call.finish()
        return stream


# --- per-request helpers of the SDK (usage of every AFC round) ------------------------------
def collect_request(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``Models._generate_content``: one request; add its usage to the active call."""
    response = wrapped(*args, **kwargs)
    _add_round(response)
    return response


async def acollect_request(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    response = await wrapped(*args, **kwargs)
    _add_round(response)
    return response


def _add_round(response: Any) -> None:
    rounds = _rounds.get()
    if rounds is None:
        return
    try:
        rounds.add(usage_of(field(response, "usage_metadata")))
    except Exception as error:
        internal_error("google_genai round", error)


def mark_stream_round(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``_generate_content_stream_with_continuation``: a new streamed request round starts."""
    rounds = _rounds.get()
    if rounds is not None:
        try:
            rounds.new_round()
        except Exception as error:  # pragma: no cover - defensive
            internal_error("google_genai round", error)
    return wrapped(*args, **kwargs)
