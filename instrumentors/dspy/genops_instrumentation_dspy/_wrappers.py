"""One recorded call per ``execute``/``aexecute`` that reaches DSPy's engine.

``execute(lm, call)`` first answers from DSPy's cache, then selects an engine (``_engine``), then
sends (with DSPy's own retries and ``n`` candidates). The execute wrapper opens a slot; the
``_engine`` wrapper, reached only on a cache miss and before anything is sent, begins the call in
it (policy, budget, span current, lower layers told the call is recorded); the execute wrapper
ends it with the result's usage, or with the error.
"""

from __future__ import annotations

import contextvars
from typing import Any, Callable

from genops_autoinstrument.api import Call, Usage, begin_call, get, in_recorded_call, internal_error

from ._request import block_factory, describe


class _Slot:
    __slots__ = ("lm", "prepared", "call")

    def __init__(self, lm: Any, prepared: Any) -> None:
        self.lm = lm
        self.prepared = prepared
        self.call: Call | None = None


_slot: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("genops_dspy_slot", default=None)


def _open(args: tuple, kwargs: dict) -> _Slot | None:
    """A slot for this execute, or None when it is not ours to record."""
    try:
        if in_recorded_call() or _slot.get() is not None:
            return None  # recorded by an outer layer (a framework plugin, the code API…)
        lm = args[0] if args else kwargs.get("lm")
        prepared = args[1] if len(args) > 1 else kwargs.get("call")
        if lm is None or prepared is None or type(lm).__name__ == "DummyLM":
            return None
        return _Slot(lm, prepared)
    except Exception as error:
        internal_error("dspy execute", error)
        return None


def _close(slot: _Slot, result: Any, error: BaseException | None) -> None:
    call = slot.call
    if call is None:
        return
    call.__exit__(type(error) if error is not None else None, error, None)
    if error is not None or call.ended:
        return
    try:
        responses = tuple(get(result, "responses") or ())
        call.finish(
            response_model=get(result, "response_model"),
            response_id=get(responses[0], "id") if len(responses) == 1 else None,
            finish_reasons=[str(reason) for reason in (get(r, "finish_reason") for r in responses) if reason],
            usage=usage_of(get(result, "usage")),
        )
    except Exception as error_reading:
        internal_error("dspy response", error_reading)
        call.finish()


def usage_of(usage: Any) -> Usage | None:
    """Usage from DSPy's OpenAI-shaped usage dict (input includes cached tokens, output reasoning)."""
    if not usage:
        return None
    prompt = get(usage, "prompt_tokens")
    completion = get(usage, "completion_tokens")
    prompt_details = get(usage, "prompt_tokens_details")
    completion_details = get(usage, "completion_tokens_details")
    return Usage(
        input_tokens=_count(prompt),
        output_tokens=_count(completion),
        cache_read_tokens=_count(get(prompt_details, "cached_tokens")),
        cache_write_tokens=_count(get(prompt_details, "cache_creation_tokens")),
        reasoning_tokens=_count(get(completion_details, "reasoning_tokens")),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def execute(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    slot = _open(args, kwargs)
    if slot is None:
        return wrapped(*args, **kwargs)
    token = _slot.set(slot)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _close(slot, None, error)
        raise
    finally:
        _slot.reset(token)
    _close(slot, result, None)
    return result


async def aexecute(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    slot = _open(args, kwargs)
    if slot is None:
        return await wrapped(*args, **kwargs)
    token = _slot.set(slot)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        _close(slot, None, error)
        raise
    finally:
        _slot.reset(token)
    _close(slot, result, None)
    return result


def engine(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """Begin the slot's call: no cached answer, nothing sent yet. A policy block raises here."""
    slot = _slot.get()
    if slot is not None and slot.call is None:
        try:
            request = describe(slot.lm, slot.prepared)
            block = block_factory(str(slot.lm.model), request.provider)
        except Exception as error:
            internal_error("dspy request", error)
        else:
            call = begin_call(request, block=block)  # the deliberate policy block, as a DSPy error
            if not call.ended:
                call.__enter__()
                slot.call = call
    return wrapped(*args, **kwargs)
