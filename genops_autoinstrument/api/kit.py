"""The per-call skeleton every plugin shares: one :class:`RecordedMethod` per SDK method.

A plugin says how to *prepare* a call (describe the request, pick its native block error, and
optionally change what is sent) and how to *read* the result (finish the call, or hand back a
stream proxy); the kit does the rest, the same way for every provider, sync and async:

1. prepare; if that fails (an odd argument, a new SDK shape), call through unrecorded;
2. :func:`~genops_autoinstrument.engine.runtime.begin_call` with the plugin's native block error
   (the policy block is the only exception the application can get from GenOps);
3. run the SDK call as a recorded call (:func:`~genops_autoinstrument.engine.call.in_recorded_call`
   is true inside it, in GenOps' own context; the call's span is never made OpenTelemetry's
   current span, so the SDK sends and traces what it does bare); an SDK error ends the call and
   is re-raised unchanged;
4. read the result; if reading fails, finish the call without facts and give the application
   its result untouched.

Example::

    def prepare(instance, args, kwargs):
        return Prepared(CallRequest("acme", "chat", kwargs.get("model")), block=acme_block_error)

    def read(call, result, prepared, is_async):
        call.finish(response_model=result.model, usage=Usage(result.usage.input, result.usage.output))
        return result

    CHAT = RecordedMethod("acme chat", prepare, read)
    self.wrap("acme.resources", "Chat.create", CHAT.sync)
    self.wrap("acme.resources", "AsyncChat.create", CHAT.async_)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.call import Call, CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.governance.decisions import Decision

BlockFactory = Callable[[Decision], BaseException]
Wrapper = Callable[[Callable[..., Any], Any, tuple, dict], Any]

__all__ = ["Prepared", "RecordedMethod", "BlockFactory"]


@dataclass(slots=True)
class Prepared:
    """One call, described before it is sent."""

    request: CallRequest
    block: BlockFactory | None = None  # the SDK's native error for a blocked call (else PolicyViolation)
    kwargs: dict[str, Any] | None = None  # what is sent instead of the application's kwargs, if anything
    state: Any = None  # the plugin's own facts for its reader (a plan, an accumulator…)


_NO_SCOPE = contextlib.nullcontext()


class _GuardedScope:
    """A plugin's scope whose own failures never reach the application: an error entering it
    skips it, an error leaving it is logged; the application's exception passes unchanged."""

    __slots__ = ("_inner", "_name", "_entered")

    def __init__(self, inner: ContextManager[Any], name: str) -> None:
        self._inner = inner
        self._name = name
        self._entered = False

    def __enter__(self) -> None:
        try:
            self._inner.__enter__()
            self._entered = True
        except Exception as error:
            internal_error(f"{self._name} scope", error)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if not self._entered:
            return
        try:
            self._inner.__exit__(exc_type, exc, tb)
        except Exception as error:
            internal_error(f"{self._name} scope", error)


@dataclass(frozen=True)
class RecordedMethod:
    """How one SDK method maps onto a recorded call; ``sync`` and ``async_`` are its wrapt wrappers.

    ``prepare(instance, args, kwargs)`` returns a :class:`Prepared` or ``None`` (not a model call:
    call through). ``read(call, result, prepared, is_async)`` finishes the call (or hands the result
    to a stream proxy that will) and returns what the application gets. ``scope(call, prepared)``,
    if given, is a context manager entered around the SDK call, also when the call is not recorded.
    """

    name: str
    prepare: Callable[[Any, tuple, dict], Prepared | None]
    read: Callable[[Call, Any, Prepared, bool], Any]
    scope: Callable[[Call, Prepared], ContextManager[Any]] | None = None

    def _prepare(self, instance: Any, args: tuple, kwargs: dict) -> Prepared | None:
        try:
            return self.prepare(instance, args, kwargs)
        except Exception as error:
            internal_error(f"{self.name} request", error)
            return None

    def _read(self, call: Call, result: Any, prepared: Prepared, is_async: bool) -> Any:
        if call.ended:
            return result
        try:
            return self.read(call, result, prepared, is_async)
        except Exception as error:
            internal_error(f"{self.name} response", error)
            call.finish()
            return result

    def _scope(self, call: Call, prepared: Prepared) -> ContextManager[Any]:
        if self.scope is None:
            return _NO_SCOPE
        try:
            return _GuardedScope(self.scope(call, prepared), self.name)
        except Exception as error:
            internal_error(f"{self.name} scope", error)
            return _NO_SCOPE

    @property
    def sync(self) -> Wrapper:
        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            prepared = self._prepare(instance, args, kwargs)
            if prepared is None:
                return wrapped(*args, **kwargs)
            call = begin_call(prepared.request, block=prepared.block)
            if call.ended:  # not recorded here (nested in another recorded call): send as the app asked
                with self._scope(call, prepared):
                    return wrapped(*args, **kwargs)
            send = kwargs if prepared.kwargs is None else prepared.kwargs
            if self.scope is None:
                with call:
                    result = wrapped(*args, **send)
            else:
                with call, self._scope(call, prepared):
                    result = wrapped(*args, **send)
            return self._read(call, result, prepared, False)

        return wrapper

    @property
    def async_(self) -> Wrapper:
        async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            prepared = self._prepare(instance, args, kwargs)
            if prepared is None:
                return await wrapped(*args, **kwargs)
            call = begin_call(prepared.request, block=prepared.block)
            if call.ended:
                with self._scope(call, prepared):
                    return await wrapped(*args, **kwargs)
            send = kwargs if prepared.kwargs is None else prepared.kwargs
            if self.scope is None:
                with call:
                    result = await wrapped(*args, **send)
            else:
                with call, self._scope(call, prepared):
                    result = await wrapped(*args, **send)
            return self._read(call, result, prepared, True)

        return wrapper
