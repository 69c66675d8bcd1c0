"""How ``Models``/``AsyncModels`` map onto recorded calls: one recorded call per application call.

Each public method is a :class:`RecordedMethod` of the plugin kit. Automatic function calling
(AFC) sends several requests inside one public call, and only the last response's usage reaches
the application, so the SDK's per-request helpers are wrapped too: they add each request's usage
to the active call's :class:`Rounds` (made current by the method's scope, through a context
variable) and change nothing else.
"""

from __future__ import annotations

import contextvars
import inspect
from typing import Any

from genops_autoinstrument.api import (
    NULL_CALL,
    Call,
    Decision,
    PolicyViolation,
    Prepared,
    RecordedAsyncStream,
    RecordedMethod,
    RecordedStream,
    begin_call,
    capture_content,
    get,
    internal_error,
    native_violation,
    semconv,
)

from ._request import build_request
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

# The SDK's continuation-aware stream (3.x): one streamed round of automatic function calling.
CONTINUATION = "_generate_content_stream_with_continuation"

_GENERATE = semconv.OPERATION_GENERATE_CONTENT
_EMBED = semconv.OPERATION_EMBEDDINGS


def block_error(decision: Decision) -> BaseException:
    """The SDK's own ``ClientError`` (429 for budget/rate, 403 for a rule) that is also a PolicyViolation."""
    from google.genai import errors

    code, status = (429, "RESOURCE_EXHAUSTED") if decision.is_budget else (403, "PERMISSION_DENIED")
    body = {
        "error": {
            "code": code,
            "message": decision.explanation,
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


class _CurrentRounds:
    """The method's scope: the call's :class:`Rounds` (``prepared.state``) is current while its SDK
    code runs, so the per-request helpers below add each AFC round to it."""

    __slots__ = ("_value", "_token")

    def __init__(self, call: Call, prepared: Prepared) -> None:
        self._value = prepared.state

    def __enter__(self) -> None:
        self._token = _rounds.set(self._value)

    def __exit__(self, *exc: Any) -> None:
        _rounds.reset(self._token)


# --- requests -------------------------------------------------------------------------------
def _prepare_generate(instance: Any, args: tuple, kwargs: dict) -> Prepared:
    return Prepared(build_request(instance, kwargs, _GENERATE), block=block_error, state=Rounds())


def _prepare_stream(instance: Any, args: tuple, kwargs: dict) -> Prepared:
    return Prepared(build_request(instance, kwargs, _GENERATE, streaming=True), block=block_error, state=Rounds())


def _prepare_embed(instance: Any, args: tuple, kwargs: dict) -> Prepared:
    return Prepared(build_request(instance, kwargs, _EMBED), block=block_error)


# --- responses ------------------------------------------------------------------------------
def _finish_generate(call: Call, response: Any, prepared: Prepared, is_async: bool) -> Any:
    usage = prepared.state.total()
    if usage is None:
        usage = usage_of(get(response, "usage_metadata"))
    raw = raw_body(response) if usage is None else None
    if raw is not None:  # the application asked for the raw HTTP response: read the JSON
        usage = usage_of(raw.get("usageMetadata"))
    call.finish(
        response_model=get(response, "model_version") or (raw or {}).get("modelVersion"),
        response_id=get(response, "response_id") or (raw or {}).get("responseId"),
        finish_reasons=finish_reasons_of(response) or finish_reasons_of(raw),
        usage=usage,
        output_messages=lambda: output_messages_of(candidate_texts(response)),
    )
    return response


def _finish_embed(call: Call, response: Any, prepared: Prepared, is_async: bool) -> Any:
    call.finish(usage=embedding_usage_of(response))
    return response


def _proxy_stream(call: Call, stream: Any, prepared: Prepared, is_async: bool) -> Any:
    return _AsyncGenerateStream(stream, call, GenerateAccumulator(capture_content(), prepared.state))


GENERATE = RecordedMethod("google_genai generate_content", _prepare_generate, _finish_generate, scope=_CurrentRounds)
EMBED = RecordedMethod("google_genai embed_content", _prepare_embed, _finish_embed)
# Async only: the sync stream is a lazy generator, recorded from its first next() (below).
GENERATE_STREAM = RecordedMethod("google_genai generate_content_stream", _prepare_stream, _proxy_stream, scope=_CurrentRounds)


# --- streams --------------------------------------------------------------------------------
class _GenerateStream(RecordedStream):
    """The SDK's stream generator; the call starts at the first ``next()``, when the request is sent.

    Starting there (not when ``generate_content_stream()`` returns the generator) keeps a policy
    block where the SDK raises its own request errors: from the iteration.
    """

    sends_while_pulling = True  # each pull may send a request (the first, and each AFC round)

    def __init__(self, stream: Any, prepared: Prepared) -> None:
        super().__init__(stream, NULL_CALL, GenerateAccumulator(capture_content(), prepared.state))
        self._self_prepared: Prepared | None = prepared

    def __next__(self) -> Any:
        prepared = self._self_prepared
        if prepared is not None:
            self._self_prepared = None
            try:
                self._self_call = begin_call(prepared.request, block=prepared.block)
            except PolicyViolation:
                self.__wrapped__.close()
                raise
        token = _rounds.set(self._self_accumulator.rounds)
        try:
            return super().__next__()
        finally:
            _rounds.reset(token)


class _AsyncGenerateStream(RecordedAsyncStream):
    """The SDK's async stream generator, with the call's Rounds current while a chunk is fetched."""

    sends_while_pulling = True

    async def __anext__(self) -> Any:
        token = _rounds.set(self._self_accumulator.rounds)
        try:
            return await super().__anext__()
        finally:
            _rounds.reset(token)


def generate_content_stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``Models.generate_content_stream`` returns an unstarted generator: it is recorded from its
    first ``next()`` (the kit's :class:`RecordedMethod` begins a call when the method is called)."""
    try:
        prepared: Prepared | None = _prepare_stream(instance, args, kwargs)
    except Exception as error:  # describing failed: the stream runs unrecorded
        internal_error("google_genai generate_content_stream request", error)
        prepared = None
    stream = wrapped(*args, **kwargs)
    return stream if prepared is None else _GenerateStream(stream, prepared)


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
        rounds.add(usage_of(get(response, "usage_metadata")))
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


def mark_stream_request(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``_generate_content_stream``: a new round on SDKs without continuation-aware streams (< 3);
    on 3.x the continuation stream around this request has marked it.

    Before 3.x the SDK's automatic function calling does not yield a round's function-call chunks
    to the application, so the round's usage is read from the request's own chunks here."""
    if hasattr(type(instance), CONTINUATION):
        return wrapped(*args, **kwargs)
    rounds = _rounds.get()
    stream = mark_stream_round(wrapped, instance, args, kwargs)
    if rounds is None:
        return stream
    if inspect.isawaitable(stream):  # AsyncModels: a coroutine that returns the async iterator
        return _await_round_chunks(stream, rounds)
    return _round_chunks(stream, rounds)


def _note(rounds: Rounds, chunk: Any) -> None:
    try:
        rounds.latest(get(chunk, "usage_metadata"))
    except Exception as error:  # pragma: no cover - defensive
        internal_error("google_genai round", error)


def _round_chunks(stream: Any, rounds: Rounds) -> Any:
    """The request's chunks, unchanged, each one's running usage noted for its round."""
    try:
        for chunk in stream:
            _note(rounds, chunk)
            yield chunk
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


async def _await_round_chunks(coroutine: Any, rounds: Rounds) -> Any:
    return _async_round_chunks(await coroutine, rounds)


async def _async_round_chunks(stream: Any, rounds: Rounds) -> Any:
    try:
        async for chunk in stream:
            _note(rounds, chunk)
            yield chunk
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
